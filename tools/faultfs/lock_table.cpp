#include "tools/faultfs/lock_table.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

namespace tandem::faultfs {
namespace {

bool overlaps(const range_lock& a, const range_lock& b) { return a.start <= b.end && b.start <= a.end; }

bool conflicting(const range_lock& held, const range_lock& wanted) {
  return held.owner != wanted.owner && overlaps(held, wanted) && (held.type == F_WRLCK || wanted.type == F_WRLCK);
}

}  // namespace

lock_table::lock_table(std::chrono::milliseconds lease) : lease_(lease) {}

void lock_table::set_lease(std::chrono::milliseconds lease) {
  std::lock_guard g(mutex_);
  lease_ = lease;
}

std::chrono::milliseconds lock_table::lease() const {
  std::lock_guard g(mutex_);
  return lease_;
}

bool lock_table::expired(const range_lock& l, clock::time_point now) const {
  if (lease_.count() <= 0) return false;
  auto it = renewed_.find(l.handle);
  if (it == renewed_.end()) return false;
  return now - it->second > lease_;
}

std::vector<range_lock*> lock_table::conflicts(const file_key& file, const range_lock& r, clock::time_point now,
                                               bool revoke) {
  std::vector<range_lock*> out;
  auto it = locks_.find(file);
  if (it == locks_.end()) return out;
  auto& held = it->second;
  if (revoke) {
    // Revoke only when every conflict has expired: a live holder keeps the whole lock.
    bool all_expired = true;
    bool any = false;
    for (auto& l : held) {
      if (!conflicting(l, r)) continue;
      any = true;
      if (!expired(l, now)) all_expired = false;
    }
    if (any && all_expired) {
      std::set<std::uint64_t> handles;
      for (auto& l : held) {
        if (conflicting(l, r)) handles.insert(l.handle);
      }
      // The whole state of those handles goes, as an NFS server drops a client's state.
      for (auto& [key, list] : locks_) {
        std::erase_if(list, [&](const range_lock& l) { return handles.contains(l.handle); });
      }
      for (auto h : handles) {
        revoked_.insert(h);
        renewed_.erase(h);
        ++revocations_;
      }
      return out;
    }
  }
  for (auto& l : held) {
    if (conflicting(l, r)) out.push_back(&l);
  }
  return out;
}

void lock_table::apply(const file_key& file, const range_lock& r) {
  auto& held = locks_[file];
  // Cut the owner's existing locks out of [r.start, r.end], keeping the parts outside.
  std::vector<range_lock> kept;
  for (const auto& l : held) {
    if (l.owner != r.owner || !overlaps(l, r)) {
      kept.push_back(l);
      continue;
    }
    if (l.start < r.start) {
      range_lock left = l;
      left.end = r.start - 1;
      kept.push_back(left);
    }
    if (l.end > r.end) {
      range_lock right = l;
      right.start = r.end + 1;
      kept.push_back(right);
    }
  }
  if (r.type != F_UNLCK) kept.push_back(r);
  held = std::move(kept);
  if (held.empty()) locks_.erase(file);
}

std::optional<range_lock> lock_table::test(const file_key& file, const range_lock& probe, clock::time_point now) {
  ready r;
  std::optional<range_lock> found;
  {
    std::lock_guard g(mutex_);
    auto c = conflicts(file, probe, now, true);
    if (!c.empty()) found = *c.front();
    grant_waiters(now, r);
  }
  run(r);
  return found;
}

void lock_table::set(const file_key& file, const range_lock& request, bool wait, const void* waiter, answer done,
                     clock::time_point now, const std::function<bool()>& interrupted) {
  ready r;
  {
    std::lock_guard g(mutex_);
    if (request.type == F_UNLCK) {
      apply(file, request);
      r.emplace_back(std::move(done), 0);
      grant_waiters(now, r);
    } else if (conflicts(file, request, now, true).empty()) {
      apply(file, request);
      renewed_[request.handle] = now;
      r.emplace_back(std::move(done), 0);
      grant_waiters(now, r);  // a revocation above may free others too
    } else if (!wait) {
      r.emplace_back(std::move(done), EAGAIN);
    } else if (interrupted && interrupted()) {
      r.emplace_back(std::move(done), EINTR);
    } else {
      waiters_.push_back(waiting{file, request, waiter, std::move(done)});
    }
  }
  run(r);
}

void lock_table::cancel(const void* waiter) {
  ready r;
  {
    std::lock_guard g(mutex_);
    auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](const waiting& w) { return w.id == waiter; });
    if (it == waiters_.end()) return;
    r.emplace_back(std::move(it->done), EINTR);
    waiters_.erase(it);
  }
  run(r);
}

void lock_table::renew(std::uint64_t handle, clock::time_point now) {
  std::lock_guard g(mutex_);
  auto it = renewed_.find(handle);
  if (it != renewed_.end()) it->second = now;
}

bool lock_table::revoked(std::uint64_t handle) const {
  std::lock_guard g(mutex_);
  return revoked_.contains(handle);
}

void lock_table::release_handle(std::uint64_t handle, clock::time_point now) {
  ready r;
  {
    std::lock_guard g(mutex_);
    for (auto it = locks_.begin(); it != locks_.end();) {
      std::erase_if(it->second, [&](const range_lock& l) { return l.handle == handle; });
      it = it->second.empty() ? locks_.erase(it) : std::next(it);
    }
    renewed_.erase(handle);
    revoked_.erase(handle);
    grant_waiters(now, r);
  }
  run(r);
}

void lock_table::release_owner(const file_key& file, std::uint64_t owner, clock::time_point now) {
  ready r;
  {
    std::lock_guard g(mutex_);
    auto it = locks_.find(file);
    if (it == locks_.end()) return;
    std::erase_if(it->second, [&](const range_lock& l) { return l.owner == owner; });
    if (it->second.empty()) locks_.erase(it);
    grant_waiters(now, r);
  }
  run(r);
}

void lock_table::tick(clock::time_point now) {
  ready r;
  {
    std::lock_guard g(mutex_);
    grant_waiters(now, r);
  }
  run(r);
}

void lock_table::grant_waiters(clock::time_point now, ready& out) {
  // First come, first served, but a waiter blocked by one lock does not hold up a waiter
  // on another file.
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (conflicts(it->file, it->request, now, true).empty()) {
      apply(it->file, it->request);
      renewed_[it->request.handle] = now;
      out.emplace_back(std::move(it->done), 0);
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

void lock_table::clear(int error) {
  ready r;
  {
    std::lock_guard g(mutex_);
    for (auto& w : waiters_) r.emplace_back(std::move(w.done), error);
    waiters_.clear();
    locks_.clear();
    renewed_.clear();
    revoked_.clear();
  }
  run(r);
}

void lock_table::restart_leases(clock::time_point now) {
  std::lock_guard g(mutex_);
  for (auto& [handle, at] : renewed_) at = now;
}

std::vector<lock_table::status_line> lock_table::status(clock::time_point now) const {
  std::lock_guard g(mutex_);
  std::vector<status_line> out;
  for (const auto& [file, list] : locks_) {
    for (const auto& l : list) out.push_back({file, l, expired(l, now)});
  }
  return out;
}

std::uint64_t lock_table::revocations() const {
  std::lock_guard g(mutex_);
  return revocations_;
}

void lock_table::run(ready& r) {
  for (auto& [done, error] : r) {
    if (done) done(error);
  }
}

}  // namespace tandem::faultfs
