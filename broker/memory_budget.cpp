#include "broker/memory_budget.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace tandem::broker {

memory_budget::memory_budget(std::uint64_t limit, std::function<std::uint64_t()> message_bytes)
    : limit_(limit), message_bytes_(std::move(message_bytes)) {}

void memory_budget::share_across_threads() {
  if (shared_) return;
  owner_ = std::this_thread::get_id();
  message_seen_.store(message_bytes_(), std::memory_order_relaxed);
  shared_ = true;
}

std::uint64_t memory_budget::message_bytes() const {
  if (!shared_) return message_bytes_();
  if (!on_owner_thread()) return message_seen_.load(std::memory_order_relaxed);
  auto bytes = message_bytes_();
  message_seen_.store(bytes, std::memory_order_relaxed);
  return bytes;
}

void memory_budget::add(std::atomic<std::uint64_t>& counter, std::uint64_t before, std::uint64_t after) {
  if (shared_) {
    // Each caller takes back only what it added, so the sum never goes below zero.
    counter.fetch_add(after - before, std::memory_order_relaxed);
    return;
  }
  auto value = counter.load(std::memory_order_relaxed);
  value -= std::min(value, before);
  counter.store(value + after, std::memory_order_relaxed);
}

std::uint64_t memory_budget::reading(std::uint64_t before, std::uint64_t after) {
  add(read_bytes_, before, after);
  if (after < before) wake_if_room();
  return after;
}

std::uint64_t memory_budget::buffering(std::uint64_t before, std::uint64_t after) {
  add(buffer_bytes_, before, after);
  if (after < before) wake_if_room();
  return after;
}

std::uint64_t memory_budget::transport_buffering(std::uint64_t before, std::uint64_t after) {
  add(transport_bytes_, before, after);
  if (after < before) wake_if_room();
  return after;
}

void memory_budget::written(std::uint64_t bytes) {
  add(write_bytes_, bytes, 0);
  if (bytes > 0) wake_if_room();
}

memory_budget::waiter_id memory_budget::wait(std::function<void()> wake) {
  waiter_id id;
  {
    auto lock = lock_waiters();
    waits_total_.fetch_add(1, std::memory_order_relaxed);
    id = next_waiter_++;
    waiters_.emplace(id, std::move(wake));
    waiter_count_.store(waiters_.size(), std::memory_order_relaxed);
  }
  // Shared: another thread may have freed the room between the caller's full() and this
  // registration, and found no waiter to wake. Look again (a wake only posts).
  if (shared_) wake_if_room();
  return id;
}

void memory_budget::cancel(waiter_id id) {
  auto lock = lock_waiters();
  waiters_.erase(id);
  waiter_count_.store(waiters_.size(), std::memory_order_relaxed);
}

std::size_t memory_budget::waiting() const {
  auto lock = lock_waiters();
  return waiters_.size();
}

void memory_budget::wake_if_room() {
  if (!shared_) {
    // A woken connection only schedules its reader (it does not read inside this call), but
    // guard anyway: a wake that released bytes must not re-enter and walk a changing map.
    if (waking_ || waiters_.empty() || full()) return;
    waking_ = true;
    auto woken = std::exchange(waiters_, {});
    waiter_count_.store(0, std::memory_order_relaxed);
    for (auto& [id, wake] : woken) wake();
    waking_ = false;
    return;
  }
  // Shared: each wake only posts to its connection's executor, so no re-entry.
  if (on_owner_thread()) message_bytes();  // refresh what the other threads see
  if (waiter_count_.load(std::memory_order_relaxed) == 0 || full()) return;
  std::map<waiter_id, std::function<void()>> woken;
  {
    auto lock = lock_waiters();
    woken = std::exchange(waiters_, {});
    waiter_count_.store(0, std::memory_order_relaxed);
  }
  for (auto& [id, wake] : woken) wake();
}

}  // namespace tandem::broker
