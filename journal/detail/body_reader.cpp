// The reader thread: the preads of read_async() run here, so a slow or hung disk (a stuck
// NFS or CephFS mount, a dying device) stalls the consumers waiting for those bodies and
// nothing else; the owner thread (the broker's io thread) only looks up locations and,
// once the bytes are decoded, files them in the body cache. A job reads the message asked
// for and a run of later live messages of the same target (store.h, read_ahead_count), so
// a consumer draining a backlog that no longer fits in the cache costs one round trip per
// run, not per message.
//
// Files: the reader opens segments on its own (reader_files, at most 16 at a time) and
// never shares a descriptor with the owner's read() or the writer. GC deletes only a
// prefix of the log, so each job carries the first segment still present and the reader
// closes every file below it: an unlinked segment's space is freed once its last
// descriptor goes.
//
// A message compaction moved after its location was taken may be gone with its segment
// (ENOENT, or not_found in a reused offset is impossible: segments are never reused); the
// completion then reads it once more where the index says it is now.
#include <tuple>

#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

namespace {
constexpr std::size_t max_reader_files = 16;
using read_results = std::vector<result<std::shared_ptr<const message>>>;
}  // namespace

void store::impl::queue_read_locked(detail::read_job job) {
  {
    std::lock_guard lk(read_mu);
    if (!read_stopping) {
      read_jobs.push_back(std::move(job));
      read_cv.notify_one();
      return;
    }
  }
  read_results closed_results(job.items.size(), make_error_code(errc::closed));
  post([done = std::move(job.done), out = std::move(closed_results)]() mutable { done(std::move(out)); });
}

void store::impl::run_reader() {
  for (;;) {
    detail::read_job job;
    {
      std::unique_lock lk(read_mu);
      read_cv.wait(lk, [&] { return read_stopping || !read_jobs.empty(); });
      if (read_stopping) break;
      job = std::move(read_jobs.front());
      read_jobs.pop_front();
    }
    reader_files.erase(reader_files.begin(), reader_files.lower_bound(job.first_segment));
    read_results out;
    out.reserve(job.items.size());
    for (const auto& item : job.items) {
      auto fit = reader_files.find(item.where.segment);
      if (fit == reader_files.end()) {
        if (reader_files.size() >= max_reader_files) reader_files.erase(reader_files.begin());
        auto f = fs.open(detail::segment_path(jdir, item.where.segment), fs::open_mode::read_only);
        if (!f) {
          out.emplace_back(f.error());
          continue;
        }
        fit = reader_files.emplace(item.where.segment, std::move(f.value())).first;
      }
      out.push_back(detail::read_message_at(*fit->second, item.where, item.msg_seq));
    }
    post([done = std::move(job.done), out = std::move(out)]() mutable { done(std::move(out)); });
  }
  reader_files.clear();
  // Closed: what is still queued fails without being read.
  std::deque<detail::read_job> left;
  {
    std::lock_guard lk(read_mu);
    left.swap(read_jobs);
  }
  for (auto& job : left) {
    read_results closed_results(job.items.size(), make_error_code(errc::closed));
    post([done = std::move(job.done), out = std::move(closed_results)]() mutable { done(std::move(out)); });
  }
}

void store::impl::stop_reader() {
  {
    std::lock_guard lk(read_mu);
    read_stopping = true;
  }
  read_cv.notify_one();
  if (reader.joinable()) reader.join();
}

// Owner thread.
void store::impl::read_async(std::string target, std::uint64_t msg_seq, read_completion done) {
  std::unique_lock lk(state_mu);
  auto answer_now = [&](result<std::shared_ptr<const message>> r) {
    lk.unlock();
    post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  };
  if (closed) return answer_now(make_error_code(errc::closed));
  const auto* live = idx.messages(target);
  if (!live) return answer_now(make_error_code(errc::not_found));
  auto it = live->find(msg_seq);
  if (it == live->end()) return answer_now(make_error_code(errc::not_found));
  if (auto m = cached_locked(msg_seq)) return answer_now(std::move(m));
  if (auto w = reads_in_flight.find(msg_seq); w != reads_in_flight.end()) {
    w->second.emplace_back(std::move(target), std::move(done));  // that job answers it
    return;
  }
  detail::read_job job;
  job.items.push_back({msg_seq, it->second.where});
  std::uint64_t bytes = it->second.where.size;
  for (auto next = std::next(it); next != live->end() && job.items.size() <= store::read_ahead_count &&
                                  bytes < store::read_ahead_bytes;
       ++next) {
    if (cache.contains(next->first) || reads_in_flight.contains(next->first)) continue;
    job.items.push_back({next->first, next->second.where});
    bytes += next->second.where.size;
  }
  for (const auto& item : job.items) reads_in_flight.try_emplace(item.msg_seq);
  job.first_segment = segments.empty() ? 0 : *segments.begin();
  const location asked_at = it->second.where;
  job.done = [self = shared_from_this(), target = std::move(target), items = job.items, asked_at,
              done = std::move(done)](read_results out) mutable {
    bool moved = false;
    std::vector<std::tuple<std::size_t, std::string, read_completion>> waiters;
    {
      std::lock_guard lk(self->state_mu);
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i]) self->cache_insert_locked(items[i].msg_seq, out[i].value());
        if (auto w = self->reads_in_flight.find(items[i].msg_seq); w != self->reads_in_flight.end()) {
          for (auto& [t, d] : w->second) waiters.emplace_back(i, std::move(t), std::move(d));
          self->reads_in_flight.erase(w);
        }
      }
      if (!out[0] && out[0].error() != make_error_code(errc::closed)) {
        if (const auto* live = self->idx.messages(target)) {
          auto at = live->find(items[0].msg_seq);
          moved = at != live->end() && at->second.where != asked_at;
        }
      }
    }
    // A waiter whose message this job could not read asks again: a read of its own, which
    // follows a move by compaction and reports its own error (or errc::closed).
    for (auto& [i, t, d] : waiters) {
      if (out[i])
        d(out[i]);
      else
        self->read_async(std::move(t), items[i].msg_seq, std::move(d));
    }
    // Moved by compaction meanwhile (its old segment may be deleted): read it where it is now.
    if (moved) return self->read_async(std::move(target), items[0].msg_seq, std::move(done));
    done(std::move(out[0]));
  };
  queue_read_locked(std::move(job));
}

}  // namespace tandem::journal
