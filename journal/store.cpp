// The store's public API, its life cycle (close) and its failed state. The rest lives in
// journal/detail/ beside the private header store_impl.h, which lists the files and what
// each does.
#include "journal/store.h"

#include <fmt/format.h>

#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

std::string_view to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::torn_tail_truncated: return "torn_tail_truncated";
    case event_kind::corruption_skipped: return "corruption_skipped";
    case event_kind::corruption_found: return "corruption_found";
    case event_kind::fenced_records: return "fenced_records";
    case event_kind::checkpoint_loaded: return "checkpoint_loaded";
    case event_kind::checkpoint_fallback: return "checkpoint_fallback";
    case event_kind::checkpoint_written: return "checkpoint_written";
    case event_kind::slow_fsync: return "slow_fsync";
    case event_kind::segment_created: return "segment_created";
    case event_kind::segment_deleted: return "segment_deleted";
    case event_kind::compaction_done: return "compaction_done";
    case event_kind::temp_file_removed: return "temp_file_removed";
    case event_kind::journal_failed: return "journal_failed";
    case event_kind::tail_made_durable: return "tail_made_durable";
    case event_kind::unsynced_records_lost: return "unsynced_records_lost";
  }
  return "unknown";
}

std::error_code store::impl::failed() const {
  std::lock_guard lk(fail_mu);
  return failed_ec;
}

void store::impl::fail(std::error_code ec, const std::filesystem::path& file, std::string_view what) {
  {
    std::lock_guard lk(fail_mu);
    if (failed_ec) return;
    failed_ec = ec;
  }
  failed_flag = true;
  event e{event_kind::journal_failed, file};
  e.reason = fmt::format("{}: {}; the journal accepts no further appends", what, ec.message());
  emit(e);
}

bool store::impl::close_wants_checkpoint() {
  std::lock_guard lk(state_mu);
  return replay_records_since_checkpoint >= opts.close_checkpoint_min_records ||
         replay_bytes_since_checkpoint >= opts.close_checkpoint_min_bytes;
}

std::error_code store::impl::close() {
  {
    std::lock_guard lk(state_mu);
    if (closed) return close_error;
  }
  // The final checkpoint makes the next open fast; the writer drains it before exiting.
  // Skipped when the tail since the last one is short (options::close_checkpoint_min_*):
  // the writer's last fdatasync below still makes everything durable.
  if (!failed_flag && close_wants_checkpoint()) request_checkpoint({});
  {
    std::lock_guard lk(state_mu);
    closed = true;
  }
  {
    std::lock_guard lk(queue_mu);
    stopping = true;
  }
  queue_cv.notify_one();
  if (writer.joinable()) writer.join();
  stop_reader();
  close_error = failed();
  return close_error;
}

store::store(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

store::~store() { impl_->close(); }

void store::append(change c, completion done) {
  impl_->stats.appends.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(impl_->state_mu);
  impl_->append_locked(std::visit([](auto&& v) { return record(std::move(v)); }, std::move(c)), std::move(done),
                       detail::append_kind::user);
}

void store::append(record r, completion done) {
  auto t = type_of(r);
  if (t == record_type::epoch_start || t == record_type::checkpoint || t == record_type::index_state)
    return impl_->reject(std::move(done), errc::invalid_argument);
  impl_->stats.appends.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(impl_->state_mu);
  impl_->append_locked(std::move(r), std::move(done), detail::append_kind::user);
}

result<std::shared_ptr<const message>> store::read(std::string_view target, std::uint64_t msg_seq) {
  std::lock_guard lk(impl_->state_mu);
  const auto* m = impl_->idx.messages(target);
  if (!m) return make_error_code(errc::not_found);
  auto it = m->find(msg_seq);
  if (it == m->end()) return make_error_code(errc::not_found);
  return impl_->read_locked(it->second.where, msg_seq);
}

result<std::shared_ptr<const message>> store::read(const location& where, std::uint64_t msg_seq) {
  std::lock_guard lk(impl_->state_mu);
  return impl_->read_locked(where, msg_seq);
}

std::shared_ptr<const message> store::cached(std::string_view, std::uint64_t msg_seq) {
  std::lock_guard lk(impl_->state_mu);
  return impl_->cached_locked(msg_seq);
}

void store::remember(std::uint64_t msg_seq, std::shared_ptr<const message> msg) {
  if (!msg || msg->msg_seq != msg_seq) return;
  std::lock_guard lk(impl_->state_mu);
  impl_->cache_insert_locked(msg_seq, msg);
}

void store::read_async(std::string_view target, std::uint64_t msg_seq, read_completion done) {
  impl_->read_async(std::string(target), msg_seq, std::move(done));
}

const journal::index& store::index() const { return impl_->idx; }

const io_stats& store::stats() const { return impl_->stats; }

std::uint64_t store::allocate_msg_seq() {
  std::lock_guard lk(impl_->state_mu);
  auto n = impl_->idx.next_msg_seq();
  impl_->idx.set_next_msg_seq(n + 1);
  return n;
}

bool store::compact_step(std::uint64_t max_bytes) { return impl_->compact_step(max_bytes); }

void store::checkpoint(completion done) { impl_->request_checkpoint(std::move(done)); }
void store::fence_barrier(completion done) { impl_->request_barrier(std::move(done)); }

std::error_code store::failed() const { return impl_->failed(); }

const store_id& store::id() const { return impl_->id; }

const recovery_report& store::recovery() const { return impl_->report; }

std::error_code store::close() { return impl_->close(); }

}  // namespace tandem::journal
