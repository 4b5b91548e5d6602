// The owner thread's side of an append: encoding the record, what the index learns at
// once (removes, deletes, definitions), queueing it for the writer, and the completion
// that applies the rest when it is durable.
#include <algorithm>

#include "journal/apply.h"
#include "journal/detail/checkpoint.h"
#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

using detail::hdr;

// The store's bookkeeping while apply_record runs its stages (apply.h): which removes and
// drops a completing add must respect, and the producer seqs still in flight.
class store::impl::append_observer final : public apply_observer {
 public:
  append_observer(impl& s, std::uint64_t append_no) : s_(s), append_no_(append_no) {}

  // Remembered until every append before it has completed (late_adds.h); a remove
  // of a message that never existed lands here too and is forgotten as fast.
  void remove_missed(std::string_view target, std::uint64_t msg_seq, std::uint32_t item) override {
    s_.late.remove_missed(append_no_, target, msg_seq, item);
  }
  void target_dropped(std::string_view target) override {
    if (s_.in_flight > 0) s_.late.target_dropped(append_no_, target);
  }
  void send_appended(std::string_view producer_id, std::uint64_t producer_seq) override {
    if (!producer_id.empty() && s_.idx.producer_window() != 0)
      s_.pending_producers.push_back({append_no_, std::string(producer_id), producer_seq});
  }
  bool keep_target(std::uint64_t msg_seq, std::uint32_t item, std::string_view target) override {
    return s_.late.keep_target(append_no_, msg_seq, item, target);
  }

 private:
  impl& s_;
  std::uint64_t append_no_;
};

namespace {

std::span<const std::byte> payload_of(const detail::entry& e) {
  return std::span<const std::byte>(e.buf).subspan(detail::hdr, e.payload_bytes);
}

}  // namespace

// The record is durable: the rest of its effects (apply_record's durable stage), so the
// index a checkpoint captures equals the one a full replay rebuilds.
void store::impl::apply_durable(entry& e) {
  append_observer observer(*this, e.append_no);
  (void)apply_record(idx, e.type, payload_of(e), e.where, apply_stage::durable, late.empty() ? nullptr : &observer);
  if (e.type == record_type::index_state)
    state_first_segment = state_first_segment == 0 ? e.where.segment : std::min(state_first_segment, e.where.segment);
  idx.set_last_lsn(e.lsn);
  durable_lsn = e.lsn;
  durable_end = {e.where.segment, std::uint64_t{e.where.offset} + e.where.size};
  bytes_since_checkpoint += e.buf.size();
  ++replay_records_since_checkpoint;
  replay_bytes_since_checkpoint += e.buf.size();
  if (e.relocation) ++copies_since_checkpoint;
}

void store::impl::complete(std::vector<std::unique_ptr<entry>>& done, const std::map<std::uint64_t, std::uint64_t>& kept) {
  bool want_checkpoint = false;
  bool checkpoint_done = false;      // written or failed
  bool checkpoint_finished = false;  // written
  bool state_completed = false;  // GC was waiting for it
  bool copies_done = false;      // the last compaction copies in flight are durable
  bool continue_compaction = false;
  {
    std::lock_guard lk(state_mu);
    checkpoints = kept;
    for (auto& e : done) {
      if (e->kind == entry_kind::record && in_flight > 0) --in_flight;
      if (e->kind == entry_kind::checkpoint) {
        checkpoint_in_flight = false;
        checkpoint_done = true;
        checkpoint_finished = !e->ec;
        // Back to the owner for the next checkpoint (capacity kept, contents dropped).
        checkpoint_buffer = std::move(e->buf);
        checkpoint_buffer.clear();
        continue;
      }
      if (e->kind == entry_kind::delete_segment && e->ec) {
        // The file may still be there: it stays the log's first segment (the store is
        // failed, so nothing after it is deleted either).
        segments.insert(e->segment);
        continue;
      }
      if (e->kind != entry_kind::record) continue;
      if (!e->ec) apply_durable(*e);
      late.forget_completed(e->append_no);
      while (!pending_producers.empty() && pending_producers.front().append_no <= e->append_no)
        pending_producers.pop_front();
      if (e->relocation && copies_in_flight > 0 && --copies_in_flight == 0) copies_done = true;
      if (e->type == record_type::index_state && state_parts_in_flight > 0 && --state_parts_in_flight == 0) {
        if (!e->ec) state_segment = state_first_segment;
        state_first_segment = 0;
        state_completed = !e->ec;
      }
    }
    want_checkpoint = !closed && !checkpoint_in_flight && bytes_since_checkpoint >= opts.checkpoint_every_bytes;
    continue_compaction = copies_done && auto_compacting;
  }
  for (auto& e : done) {
    if (e->done) e->done(e->ec, e->ec ? 0 : e->lsn);
  }
  if (want_checkpoint) request_checkpoint({});
  // Copies just became durable: their checkpoint may be due (checkpoint_copies_if_long)
  // before the next step. While a checkpoint is in writing, the store's own chain of steps
  // rests (with compaction_checkpoint_min_records set) and that checkpoint's completion,
  // written or failed, takes the next step: copies appended meanwhile would land after
  // its replay position, and a takeover before the next one would replay them as well.
  if (copies_done) checkpoint_copies_if_long();
  bool step = checkpoint_finished || state_completed;
  if (continue_compaction || checkpoint_done) {
    std::lock_guard lk(state_mu);
    if (continue_compaction && opts.compaction_checkpoint_min_records != 0 && checkpoint_in_flight)
      compaction_resting = true;
    else if (continue_compaction)
      step = true;
    if (checkpoint_done && compaction_resting && !checkpoint_in_flight) step = true;
    if (step) compaction_resting = false;
  }
  if (step) after_compaction_step(compact_step(opts.auto_compact_bytes, true));
}

std::unique_ptr<detail::entry> store::impl::make_record_entry(const record& r, bool compaction_copy) {
  auto e = std::make_unique<entry>();
  e->type = type_of(r);
  std::size_t guess = 128;
  if (const auto* m = std::get_if<message_add>(&r)) guess += m->body.size() + m->headers.size() * 32;
  e->buf.reserve(hdr + guess);
  e->buf.resize(hdr);
  if (const auto* m = std::get_if<message_add>(&r); m && compaction_copy)
    e->ec = encode_compaction_copy(*m, e->buf);
  else
    e->ec = encode_payload(r, e->buf);
  e->payload_bytes = static_cast<std::uint32_t>(e->buf.size() - hdr);
  e->buf.resize(format::record_bytes(e->payload_bytes));
  if (!e->ec && e->buf.size() > opts.segment_bytes - format::segment_header_bytes) e->ec = errc::record_too_large;
  return e;
}

void store::impl::push(std::unique_ptr<entry> e) {
  bool wake = false;
  {
    std::lock_guard lk(queue_mu);
    queue.push_back(std::move(e));
    wake = queue.size() >= writer_wakes_at;
  }
  if (wake) queue_cv.notify_one();
}

void store::impl::reject(completion done, std::error_code ec) {
  if (!done) return;
  post([done = std::move(done), ec] { done(ec, 0); });
}

// Numbers a record entry and queues it. Requires state_mu held.
void store::impl::enqueue_locked(std::unique_ptr<entry> e) {
  e->append_no = ++append_counter;
  ++in_flight;
  push(std::move(e));
}

// Requires state_mu held.
void store::impl::append_locked(record r, completion done, append_kind kind) {
  if (closed) return reject(std::move(done), errc::closed);
  if (failed_flag) return reject(std::move(done), errc::journal_failed);
  const bool copy = kind == append_kind::compaction_copy;
  auto e = make_record_entry(r, copy);
  if (e->ec) return reject(std::move(done), e->ec);
  e->done = std::move(done);
  e->relocation = copy;
  // Removes, deletes and definitions take effect now, adds when durable (store.h).
  append_observer observer(*this, append_counter + 1);  // enqueue_locked assigns that number
  if (auto ec = apply_record(idx, e->type, payload_of(*e), {}, apply_stage::appended, &observer))
    return reject(std::move(e->done), ec);
  if (copy) ++copies_in_flight;
  enqueue_locked(std::move(e));
}

void store::impl::request_barrier(completion done) {
  std::unique_lock lk(state_mu);
  if (closed || failed_flag) {
    lk.unlock();
    return reject(std::move(done), closed ? make_error_code(errc::closed) : make_error_code(errc::journal_failed));
  }
  auto e = std::make_unique<entry>();
  e->kind = entry_kind::barrier;
  e->done = std::move(done);
  push(std::move(e));
}

void store::impl::request_checkpoint(completion done) {
  std::unique_lock lk(state_mu);
  if (closed || failed_flag) {
    lk.unlock();
    return reject(std::move(done), closed ? make_error_code(errc::closed) : make_error_code(errc::journal_failed));
  }
  if (in_flight == 0 && durable_lsn == last_checkpoint_lsn && !checkpoints.empty()) {
    lk.unlock();
    if (done) post([done = std::move(done)] { done({}, 0); });
    return;
  }
  auto e = std::make_unique<entry>();
  e->kind = entry_kind::checkpoint;
  e->done = std::move(done);
  detail::checkpoint_meta meta;
  meta.id = id;
  meta.lsn = durable_lsn;
  meta.replay = durable_end;
  meta.next_msg_seq = idx.next_msg_seq();
  meta.max_epoch = max_epoch;
  meta.cut = cut;
  e->checkpoint_lsn = durable_lsn;
  e->checkpoint_replay_segment = durable_end.segment;
  // Only the walk over the index runs here (the owner thread); the checksum pass and the
  // write run on the writer thread, into a buffer reused from the previous checkpoint.
  const auto encode_start = detail::clock::now();
  detail::encode_checkpoint_unsealed(meta, idx, checkpoint_buffer);
  const auto encode_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(detail::clock::now() - encode_start).count());
  e->checkpoint_encode = std::chrono::microseconds(encode_ns / 1000);
  stats.checkpoint_encodes.fetch_add(1, std::memory_order_relaxed);
  stats.checkpoint_encode_nanoseconds.fetch_add(encode_ns, std::memory_order_relaxed);
  if (encode_ns > stats.checkpoint_encode_max_nanoseconds.load(std::memory_order_relaxed))
    stats.checkpoint_encode_max_nanoseconds.store(encode_ns, std::memory_order_relaxed);  // one writer: this thread
  e->buf = std::move(checkpoint_buffer);
  checkpoint_buffer = {};
  checkpoint_in_flight = true;
  bytes_since_checkpoint = 0;
  replay_records_since_checkpoint = 0;
  replay_bytes_since_checkpoint = 0;
  copies_since_checkpoint = 0;
  last_checkpoint_lsn = durable_lsn;
  push(std::move(e));
}

}  // namespace tandem::journal
