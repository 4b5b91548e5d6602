// GC and compaction (the rules and why GC deletes only a prefix of the log are in
// store.h, compact_step): deleting the log's first segments, the index_state records that
// must precede a deletion, and copying the live contents of a sparse segment to the head.
#include <algorithm>

#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

// Deletes the longest deletable prefix of the log. Requires state_mu held. Returns true
// when deletion waits for an index_state set that is in flight (compact_step again once
// it completed).
bool store::impl::collect_prefix_locked(std::uint64_t head) {
  // Recovery must be able to start from either kept checkpoint (the older one is the
  // fallback when the newest is damaged), so nothing at or after its replay segment goes.
  std::uint64_t gc_limit = 0;
  if (!checkpoints.empty()) {
    gc_limit = UINT64_MAX;
    for (auto& [lsn, seg] : checkpoints) gc_limit = std::min(gc_limit, seg);
  }
  while (!segments.empty()) {
    const std::uint64_t seq = *segments.begin();
    // Stop at the first segment that must stay: everything after it stays too, so the
    // log on disk is always a suffix of the log ever written.
    if (seq >= gc_limit || seq >= head || seq == compact_segment || idx.segments().contains(seq)) break;
    if (seq >= state_segment) {
      // Its records may hold the only trace of a producer seq or of the highest msg_seq:
      // an index_state written after it must be durable first.
      if (state_parts_in_flight == 0) append_index_state_locked();
      return state_parts_in_flight != 0;
    }
    auto e = std::make_unique<entry>();
    e->kind = entry_kind::delete_segment;
    e->segment = seq;
    read_files.erase(seq);
    segments.erase(segments.begin());
    push(std::move(e));
  }
  return false;
}

// Appends one index_state set: next_msg_seq and every producer's window as they will be
// once the appends already queued complete (the set is written after them). The windows
// are split over records of at most part_limit payload bytes; a window that alone is too
// long continues with `extend`. Any producer id fits: it fitted in a message_add, whose
// payload is larger than an index_state holding that id and one seq. Requires state_mu.
void store::impl::append_index_state_locked() {
  if (closed || failed_flag) return;
  // Least recently recorded to first (as checkpoints), the producers of the appends still
  // queued moved to the newest end in their order: replaying the set in this order rebuilds
  // the recency the index will have once they complete, and with it the same evictions.
  auto windows = idx.producer_windows();
  std::vector<std::string> order;
  order.reserve(windows.size());
  for (const auto* p : idx.producers_by_recency()) order.push_back(p->first);
  for (const auto& p : pending_producers) {
    windows[p.producer_id].push(p.producer_seq, idx.producer_window());
    if (!order.empty() && order.back() == p.producer_id) continue;
    if (auto at = std::find(order.begin(), order.end(), p.producer_id); at != order.end()) order.erase(at);
    order.push_back(p.producer_id);
  }
  std::size_t drop = 0;
  if (idx.max_producers() != 0 && order.size() > idx.max_producers()) drop = order.size() - idx.max_producers();
  std::vector<const std::pair<const std::string, seq_window>*> sorted;
  sorted.reserve(order.size() - drop);
  for (std::size_t i = drop; i < order.size(); ++i) sorted.push_back(&*windows.find(order[i]));
  const std::uint64_t part_limit = std::min<std::uint64_t>(
      1 << 20, opts.segment_bytes - format::segment_header_bytes - format::record_header_bytes);
  constexpr std::uint64_t part_fixed = 12;   // u64 next_msg_seq, u32 count
  constexpr std::uint64_t window_fixed = 9;  // u32 id length, u8 extend, u32 count
  std::vector<std::unique_ptr<entry>> parts;
  index_state part{idx.next_msg_seq(), {}};
  std::uint64_t part_bytes = part_fixed;
  auto seal = [&] {
    parts.push_back(make_record_entry(part));
    part.windows.clear();
    part_bytes = part_fixed;
  };
  for (const auto* w : sorted) {
    const std::string& id = w->first;
    auto next = w->second.seqs().begin();
    bool extend = false;
    do {
      if (part_bytes + window_fixed + id.size() + 8 > part_limit) {
        if (part.windows.empty()) {  // cannot happen (see above); never loop on it
          fail(make_error_code(errc::record_too_large), jdir, "a producer id too long for an index_state record");
          return;
        }
        seal();
      }
      const std::uint64_t room = (part_limit - part_bytes - window_fixed - id.size()) / 8;
      const auto n = std::min<std::uint64_t>(room, static_cast<std::uint64_t>(w->second.seqs().end() - next));
      part.windows.push_back({id, extend, std::vector<std::uint64_t>(next, next + static_cast<std::ptrdiff_t>(n))});
      part_bytes += window_fixed + id.size() + 8 * n;
      next += static_cast<std::ptrdiff_t>(n);
      extend = true;
    } while (next != w->second.seqs().end());
  }
  seal();
  for (const auto& e : parts) {
    if (e->ec) {
      fail(e->ec, jdir, "cannot encode an index_state record");
      return;
    }
  }
  state_parts_in_flight = parts.size();
  state_first_segment = 0;
  for (auto& e : parts) enqueue_locked(std::move(e));
}

// The segment to compact next, 0 for none. Requires state_mu held. Oldest first, because
// only the log's first segment can be deleted: a sparse segment behind a full one frees
// nothing until everything before it is gone.
std::uint64_t store::impl::pick_compaction_locked(std::uint64_t head) const {
  if (segments.empty()) return 0;
  const auto& seg_stats = idx.segments();
  const std::uint64_t seg = opts.segment_bytes;
  const std::uint64_t disk = segments.size() * seg;
  const std::uint64_t live = idx.live_bytes() + idx.definition_bytes();
  // Over the disk bound and the first segment holds live data: it blocks every deletion,
  // so it is copied forward however full it is.
  const std::uint64_t first = *segments.begin();
  if (first < head && disk > 2 * live + 2 * seg && seg_stats.contains(first) && !uncompactable.contains(first))
    return first;
  const double limit = opts.compact_below_live_fraction * static_cast<double>(seg);
  for (std::uint64_t seq : segments) {
    if (seq >= head) break;
    auto it = seg_stats.find(seq);
    if (it == seg_stats.end() || uncompactable.contains(seq)) continue;
    if (static_cast<double>(it->second.live_bytes) < limit) return seq;
  }
  return 0;
}

bool store::impl::compact_step(std::uint64_t max_bytes, bool own) {
  std::lock_guard lk(state_mu);
  if (closed || failed_flag) return false;
  // The chain goes on from the completion of this step's copies. With an inline `post`
  // (tools, tests) they may complete on the writer thread before after_compaction_step
  // says so, which ended the chain until the next checkpoint.
  if (own && max_bytes != 0) auto_compacting = true;
  // The reader thread is fetching this step's bodies: its completion takes the step.
  if (compact_reading) return true;
  const std::uint64_t head = head_segment;
  const bool waiting = collect_prefix_locked(head);
  if (max_bytes == 0) return waiting;
  if (compact_segment == 0) {
    // The previous segment's copies must be durable (and relocated) before the next
    // pick, or the same live entries would be picked and copied twice.
    if (copies_in_flight != 0) return true;
    const std::uint64_t pick = pick_compaction_locked(head);
    if (pick == 0) return waiting;
    compact_segment = pick;
    compact_copied = compact_bytes = 0;
    // One pass over the index per compacted segment; the copies then go in small steps.
    for (const auto& [target, messages] : idx.targets())
      for (const auto& [seq, ref] : messages)
        if (ref.where.segment == pick) compact_pending[seq].push_back(target);
    for (const auto& [name, where] : idx.destination_locations())
      if (where.segment == pick) compact_definitions.emplace_back(definition_kind::destination, name);
    for (const auto& [key, where] : idx.subscription_locations())
      if (where.segment == pick) compact_definitions.emplace_back(definition_kind::subscription, key);
  }
  std::uint64_t copied_bytes = 0;
  // The store's own step copies no more than its copies' checkpoint allows (records, not
  // bytes: a takeover's replay costs per record); at the bound it stops with the copies
  // left pending, checkpoint_copies_if_long checkpoints once they are durable, and that
  // checkpoint's completion takes the next step.
  std::uint64_t copy_budget = UINT64_MAX;
  if (const std::uint64_t bound = own ? copy_checkpoint_records_locked() : 0; bound != 0) {
    const std::uint64_t used = copies_since_checkpoint + copies_in_flight;
    copy_budget = used >= bound ? 0 : bound - used;
  }
  std::uint64_t step_copies = 0;
  // Definitions: a destination or durable subscription must outlive every segment that
  // happened to hold its create record, so the create is written again at the head.
  while (!compact_definitions.empty() && copied_bytes < max_bytes && step_copies < copy_budget) {
    auto [kind, key] = std::move(compact_definitions.back());
    compact_definitions.pop_back();
    const auto& where_map =
        kind == definition_kind::destination ? idx.destination_locations() : idx.subscription_locations();
    auto it = where_map.find(key);
    if (it == where_map.end() || it->second.segment != compact_segment) continue;  // deleted or moved
    const std::uint64_t size = it->second.size;
    if (kind == definition_kind::destination) {
      append_locked(destination_create{key}, {}, append_kind::compaction_copy);
    } else {
      durable_subscription_create copy{idx.durable_subscriptions().at(key)};
      append_locked(std::move(copy), {}, append_kind::compaction_copy);
    }
    copied_bytes += size;
    compact_bytes += size;
    ++compact_copied;
    ++step_copies;
  }
  std::vector<detail::read_item> to_read;  // bodies the reader thread must fetch first
  for (auto pending = compact_pending.begin();
       pending != compact_pending.end() && copied_bytes < max_bytes && step_copies < copy_budget;) {
    const std::uint64_t seq = pending->first;
    // Only targets still live in the compacted segment: a copy must never re-add a
    // target the message was removed from (replay would resurrect it).
    std::vector<std::string> live;
    std::optional<location> where;
    for (const auto& t : pending->second) {
      const auto* m = idx.messages(t);
      if (!m) continue;
      auto it = m->find(seq);
      if (it == m->end() || it->second.where.segment != compact_segment) continue;
      where = it->second.where;
      live.push_back(t);
    }
    if (live.empty()) {
      compact_read.erase(seq);
      pending = compact_pending.erase(pending);
      continue;
    }
    std::optional<result<std::shared_ptr<const message>>> msg;
    if (auto got = compact_read.extract(seq)) {
      msg = std::move(got.mapped());
    } else if (auto cached = cached_locked(seq)) {
      msg.emplace(std::move(cached));
    } else if (opts.compaction_reads_on_reader_thread) {
      to_read.push_back({seq, *where});
      copied_bytes += where->size;  // the step's budget covers what it reads
      ++step_copies;
      ++pending;
      continue;
    } else {
      msg = read_locked(*where, seq);
    }
    pending = compact_pending.erase(pending);
    if (!*msg) {
      unreadable_in_compaction_locked(*where, msg->error());
      continue;
    }
    message_add copy{*msg->value(), std::move(live)};
    copied_bytes += where->size;
    compact_bytes += where->size;
    ++compact_copied;
    ++step_copies;
    append_locked(std::move(copy), {}, append_kind::compaction_copy);
  }
  if (!to_read.empty()) {
    compact_read_async_locked(std::move(to_read), max_bytes, own);
    return true;
  }
  if (compact_pending.empty() && compact_definitions.empty()) {
    event ev{event_kind::compaction_done, detail::segment_path(jdir, compact_segment)};
    ev.count = compact_copied;
    ev.bytes = compact_bytes;
    emit(ev);
    compact_segment = 0;
  }
  return true;  // more copies, or the compacted segment's deletion once checkpoints pass it
}

// An unreadable live message: leave the segment in place rather than lose it, and do not
// pick it again (every pick would fail the same way). Requires state_mu held.
void store::impl::unreadable_in_compaction_locked(const location& where, std::error_code ec) {
  uncompactable.insert(compact_segment);
  event ev{event_kind::corruption_found, detail::segment_path(jdir, compact_segment)};
  ev.offset = where.offset;
  ev.reason = "compaction cannot read a live message: " + ec.message();
  emit(ev);
}

// The reader thread reads `items`; back on the owner thread their results wait in
// compact_read (not in the body cache, which may be smaller than a step or evict them
// first) and the step is taken again, now without I/O. Requires state_mu held.
void store::impl::compact_read_async_locked(std::vector<detail::read_item> items, std::uint64_t max_bytes,
                                            bool own) {
  compact_reading = true;
  detail::read_job job;
  job.items = std::move(items);
  job.first_segment = segments.empty() ? 0 : *segments.begin();
  job.done = [self = shared_from_this(), seqs = job.items, max_bytes, own](
                 std::vector<result<std::shared_ptr<const message>>> out) {
    {
      std::lock_guard lk(self->state_mu);
      self->compact_reading = false;
      if (self->closed) return;  // the store closed meanwhile: nothing more to copy
      for (std::size_t i = 0; i < out.size(); ++i) self->compact_read.insert_or_assign(seqs[i].msg_seq, std::move(out[i]));
    }
    self->after_compaction_step(self->compact_step(max_bytes, own));
  };
  queue_read_locked(std::move(job));
}

// After a step of the store's own compaction (`more`: what compact_step returned).
// Owner thread, state_mu not held.
void store::impl::after_compaction_step(bool more) {
  {
    std::lock_guard lk(state_mu);
    auto_compacting = more && opts.auto_compact_bytes != 0;
  }
  checkpoint_copies_if_long();
}

// The copies' checkpoint (options::compaction_checkpoint_min_records), in two cases:
// - compaction has stopped (no segment picked, no copy in flight or being read:
//   compact_step may still return true while GC waits for a checkpoint or an
//   index_state) and the log since the newest checkpoint holds at least min_records;
// - compaction goes on, its copies since the last checkpoint reached
//   copy_checkpoint_records_locked() and all of them are durable (the checkpoint then
//   covers every copy made so far).
// Called after each step and when the copies in flight became durable (a step that copied
// a segment's last entries may have ended the chain). After the first case the
// checkpoint's own step copies nothing and ends here with a short tail; after the second,
// the chain rests until the checkpoint is written (complete()) and goes on from there.
// Owner thread, state_mu not held.
void store::impl::checkpoint_copies_if_long() {
  bool checkpoint = false;
  {
    std::lock_guard lk(state_mu);
    if (opts.compaction_checkpoint_min_records != 0 && !closed && !failed_flag && !checkpoint_in_flight) {
      const bool copying = compact_segment != 0 || copies_in_flight != 0 || compact_reading;
      const bool stopped_long = !copying && replay_records_since_checkpoint >= opts.compaction_checkpoint_min_records;
      const bool copies_long = copies_in_flight == 0 && copies_since_checkpoint >= copy_checkpoint_records_locked();
      checkpoint = stopped_long || copies_long;
    }
  }
  if (checkpoint) request_checkpoint({});
}

// A compaction can copy many segments in a row (the disk bound copies the log's first
// segment however full it is: with 100,000 pending, 4 segments of 24,500 records each in
// the local drill), and a takeover in the middle replays every copy since the newest
// checkpoint: 30,000-49,000 records on CephFS (bench/results/cephfs-drill.md), until the
// periodic checkpoint of 64 MiB. So the store's own compaction checkpoints after every
// `bound` copies, bound = max(min_records, live / copy_checkpoint_live_divisor):
// - the floor keeps the takeover's tail at the configured bound (the broker: 4,096) for
//   up to 32 x that many live messages (131,072: the drills' 100,000 pending included);
// - above that the interval grows with the index, because a checkpoint writes the whole
//   index (33 bytes per live message, encoded on the owner thread at about 32 ns each):
//   per copy, a checkpoint then costs at most 32 x 33 = 1,056 bytes and ~1 us of encoding,
//   about what the copy itself writes for a 1 KiB message, so the copies' checkpoints
//   at most double compaction's writes whatever the index size, and never come more
//   often than once per `bound` copies (10 million live: every 312,500 copies, a 330 MB
//   file; the periodic checkpoint writes the same file every 64 MiB of appends). The tail
//   a takeover replays then stays a fixed fraction of the checkpoint it loads anyway:
//   replaying a record costs ~5 us on CephFS, loading an entry of the checkpoint a few
//   hundred ns, so live/32 records cost about as much as loading the whole checkpoint.
// What a takeover replays: the step stops at the bound (copies since the last checkpoint
// requested, durable or in flight), so the copies after the newest checkpoint WRITTEN are
// at most twice the bound (a kill while the next one is in writing); and since the chain
// rests while a checkpoint is in writing, only a step that GC's index_state or another
// checkpoint starts meanwhile adds to the bound's copies, so it is about the bound (the
// unit test: at most the bound at every write of a 400-copy compaction). Plus what
// producers and consumers appended, bounded as before by the periodic checkpoint.
// Requires state_mu held.
std::uint64_t store::impl::copy_checkpoint_records_locked() const {
  constexpr std::uint64_t copy_checkpoint_live_divisor = 32;
  if (opts.compaction_checkpoint_min_records == 0) return 0;
  return std::max(opts.compaction_checkpoint_min_records, idx.live_messages() / copy_checkpoint_live_divisor);
}

}  // namespace tandem::journal
