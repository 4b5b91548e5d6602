// Recovery. Reading (no writes, shared by store::open and rebuild_index): the inventory,
// the fence points, the newest valid checkpoint and its fallback, and the replay of the
// log after it through apply_record. Then, in open only, once options::fence vouches for
// this process: removing stale temporaries, trimming old checkpoints, repairing a torn
// tail, and the fresh segment of the new epoch,
// started with an epoch_start record and synced before open returns. The rules are in
// format.h section 7.
#include <pthread.h>

#include <algorithm>
#include <future>
#include <limits>

#include <fmt/format.h>

#include "journal/apply.h"
#include "journal/detail/checkpoint.h"
#include "journal/detail/huge_pages.h"
#include "journal/detail/preloaded.h"
#include "journal/detail/store_impl.h"
#include "journal/errc.h"
#include "journal/reader.h"

namespace tandem::journal {

using detail::clock;
using detail::position;
using detail::since;

namespace {

// What reading the log needs to know besides the directory.
struct read_options {
  recovery_mode mode = recovery_mode::tolerate_torn_tail;
  std::uint64_t epoch = std::numeric_limits<std::uint64_t>::max();  // a newer one: errc::fenced
  std::size_t producer_window = 1024;
  std::size_t max_producers = 0;
  reporter report;  // may be empty
  std::shared_ptr<detail::preloaded_checkpoint> preloaded;  // options::preloaded
  bool last_segment_past_cache = true;                      // options::last_segment_past_cache
};

// What recovery read, before anything is written.
struct log_state {
  log_state(std::size_t producer_window, std::size_t max_producers) : idx(producer_window, max_producers) {}
  journal::index idx;
  std::vector<std::uint64_t> segments;  // present, ascending
  // Left by a writer that died between writing a file and renaming it (the listing's).
  std::vector<std::string> temporaries;
  std::uint64_t max_epoch = 0;
  // The loaded checkpoint and its fallback (lsn -> replay segment), and the older files
  // left by a crash between writing a checkpoint and trimming.
  std::map<std::uint64_t, std::uint64_t> kept_checkpoints;
  std::vector<std::uint64_t> obsolete_checkpoints;
  detail::walk_result walked;
  std::optional<damage> torn;                 // to truncate
  std::optional<std::uint64_t> empty_last;    // segment whose header was never written
  std::uint64_t replayed_bytes = 0;           // of the records replayed after the checkpoint
  // The loaded checkpoint's image: the store encodes its checkpoints into this memory
  // afterwards (read_checkpoint_image), so its pages are faulted in once.
  std::vector<std::byte> checkpoint_image;
};

damage to_damage(const detail::walk_item& w) {
  return {w.file, w.offset, w.expected_lsn, w.reason, w.bytes};
}

class log_reader {
 public:
  log_reader(fs::file_system& fs, std::filesystem::path jdir, const store_id& id, read_options opts,
             recovery_report& report)
      : fs_(fs), jdir_(std::move(jdir)), id_(id), opts_(std::move(opts)), report_(report),
        state_(opts_.producer_window, opts_.max_producers) {}

  result<log_state> read() {
    auto inv = detail::take_inventory(fs_, jdir_);
    if (!inv) return inv.error();
    state_.segments = inv.value().segments;
    state_.temporaries = inv.value().temporaries;
    if (auto ec = find_fences()) return ec;
    start_fallback_check(inv.value().checkpoints);
    load_newest_checkpoint(inv.value().checkpoints);
    keep_fallback_checkpoint(inv.value().checkpoints);
    if (auto ec = replay()) return ec;
    if (sealed_fs_) report_.preloaded_segment_bytes = sealed_fs_->served_bytes();
    return std::move(state_);
  }

 private:
  void emit(const event& e) const {
    if (opts_.report) opts_.report(e);
  }

  std::error_code find_fences() {
    const auto* known = opts_.preloaded && opts_.preloaded->id == id_ ? &opts_.preloaded->segment_starts : nullptr;
    auto fences = detail::find_fence_points(fs_, jdir_, state_.segments, id_, known);
    if (!fences) return fences.error();
    for (const auto& f : fences.value()) {
      if (f.epoch > opts_.epoch) return errc::fenced;  // a newer master wrote here
      state_.max_epoch = std::max(state_.max_epoch, f.epoch);
    }
    walk_.fs = &fs_;
    walk_.last_segment_past_cache = opts_.last_segment_past_cache;
    use_sealed_capture();
    walk_.journal_dir = jdir_;
    walk_.segments = state_.segments;
    walk_.id = id_;
    walk_.fences = std::move(fences.value());
    return {};
  }

  // The slave's copy of the sealed segments (sealed_capture.h), for those that are still
  // before the last one: a segment that became the last again (its successor removed as
  // never initialised) is read from the file, as every last segment is.
  void use_sealed_capture() {
    const auto* p = opts_.preloaded.get();
    if (!p || !(p->id == id_) || p->sealed.empty() || state_.segments.empty()) return;
    for (const auto& [seq, c] : p->sealed)
      if (seq < state_.segments.back()) sealed_.emplace(seq, c);
    if (sealed_.empty()) return;
    sealed_fs_.emplace(fs_, jdir_, &sealed_);
    walk_.fs = &*sealed_fs_;
  }

  // Why checkpoint `lsn` cannot be used, or "" after loading it into the index.
  std::string try_checkpoint(std::uint64_t lsn) {
    const auto path = detail::checkpoint_path(jdir_, lsn);
    auto t0 = clock::now();
    journal::index loaded(opts_.producer_window, opts_.max_producers);
    std::string reason;
    result<detail::checkpoint_meta> meta = make_error_code(errc::not_found);
    if (auto* pre = usable_preload(lsn, path)) {
      loaded = std::move(pre->idx);
      state_.checkpoint_image = std::move(pre->image);
      pre->consumed = true;
      meta = pre->newest.meta;
    } else {
      std::vector<std::byte> image = std::move(state_.checkpoint_image);  // a failed try's memory
      if (auto ec = detail::read_checkpoint_image(fs_, path, image)) return "cannot read: " + ec.message();
      t0 = clock::now();
      meta = detail::decode_checkpoint(image, id_, &loaded, reason);
      state_.checkpoint_image = std::move(image);
      if (!meta) return reason;
    }
    const auto& m = meta.value();
    if (!std::binary_search(state_.segments.begin(), state_.segments.end(), m.replay.segment))
      return fmt::format("its replay segment {:016x} is missing", m.replay.segment);
    // Written by a master deposed before this position: it may hold records that a newer
    // master never saw.
    for (const auto& f : walk_.fences)
      if (f.epoch > m.max_epoch && f.cut <= m.replay)
        return fmt::format("written by epoch {} after epoch {} took over", m.max_epoch, f.epoch);
    if (auto why = missing_history_before(m.replay, loaded); !why.empty()) return why;
    state_.idx = std::move(loaded);
    walk_.start = m.replay;
    walk_.last_lsn = m.lsn;
    walk_.fences.push_back(detail::fence_point{m.max_epoch, m.cut, m.cut});
    state_.max_epoch = std::max(state_.max_epoch, m.max_epoch);
    state_.kept_checkpoints[lsn] = m.replay.segment;
    report_.from_checkpoint = true;
    report_.checkpoint_file = path;
    event ev{event_kind::checkpoint_loaded, path};
    ev.first_lsn = lsn;
    ev.duration = since(t0);
    if (opts_.preloaded && opts_.preloaded->consumed) ev.reason = "preloaded";
    emit(ev);
    return {};
  }

  // The slave's preload of checkpoint `lsn` when the file at `path` is still the one it
  // read (its fingerprint: one open and two small reads), else null. Any mismatch, even of
  // the options the index was built with, means the file is read as without a preload.
  detail::preloaded_checkpoint* usable_preload(std::uint64_t lsn, const std::filesystem::path& path) {
    auto* p = opts_.preloaded.get();
    if (!p || p->consumed || p->newest.file.lsn != lsn || !(p->id == id_) ||
        p->producer_window != opts_.producer_window || p->max_producers != opts_.max_producers)
      return nullptr;
    return detail::still_the_file(fs_, path, p->newest.file) ? p : nullptr;
  }

  // What the preload knows of checkpoint `lsn` as a whole (checksum verified), if anything.
  std::optional<detail::verified_checkpoint> preverified(std::uint64_t lsn) const {
    const auto* p = opts_.preloaded.get();
    if (!p || !(p->id == id_)) return std::nullopt;
    if (p->newest.file.lsn == lsn) return p->newest;
    if (p->previous && p->previous->file.lsn == lsn) return p->previous;
    return std::nullopt;
  }

  // Why a checkpoint replaying from `replay` holds entries for records that are not in the
  // log, or "". Each epoch_start before `replay` names the record its master recovered last
  // (lsn and end). When that record is gone, the master built on records that were never
  // durable and a power loss took them (issue 12, bug 6): a checkpoint written since may
  // index messages there and hold dedup seqs of messages that are gone. Such a checkpoint
  // is refused; a replay from before the gap drops exactly those records
  // (walk_kind::lost_unsynced). A checkpoint with nothing in the missing range (written by
  // a master that already dropped them) is kept. Cost: one small read per epoch_start, and
  // a scan of the segment only when its record is missing.
  std::string missing_history_before(position replay, const journal::index& loaded) {
    for (const auto& f : walk_.fences) {
      if (!(f.at < replay) || f.last_lsn == 0 || f.cut.offset <= format::segment_header_bytes) continue;
      if (!std::binary_search(state_.segments.begin(), state_.segments.end(), f.cut.segment)) continue;
      const auto path = detail::segment_path(jdir_, f.cut.segment);
      auto found = detail::record_ends_at(fs_, path, f.cut.offset, f.last_lsn);
      if (!found) return fmt::format("cannot read {} to check epoch {}'s history: {}", path.string(), f.epoch,
                                     found.error().message());
      if (found.value()) continue;
      detail::walk_input one = walk_;
      one.segments = {f.cut.segment};
      one.start = {};
      one.last_lsn = 0;
      auto walked = detail::walk(one, [](const detail::walk_item&) { return true; });
      if (!walked) return fmt::format("cannot read {}: {}", path.string(), walked.error().message());
      const position data_end = walked.value().end.segment == f.cut.segment
                                    ? walked.value().end
                                    : position{f.cut.segment, format::segment_header_bytes};
      if (indexes_range(loaded, data_end, f.cut))
        return fmt::format("it indexes records that epoch {} built on and that are gone: {} offsets {}..{} "
                           "(never durable, lost in a power failure)",
                           f.epoch, path.string(), data_end.offset, f.cut.offset);
    }
    return {};
  }

  // True when a live entry or a definition of `idx` lies in [from, to).
  static bool indexes_range(const journal::index& idx, position from, position to) {
    auto inside = [&](const location& w) {
      const position p{w.segment, w.offset};
      return !(p < from) && p < to;
    };
    for (const auto& [target, msgs] : idx.targets())
      for (const auto& [seq, ref] : msgs)
        if (inside(ref.where)) return true;
    for (const auto* defs : {&idx.destination_locations(), &idx.subscription_locations()})
      for (const auto& [key, where] : *defs)
        if (inside(where)) return true;
    return false;
  }

  // The newest valid checkpoint whose replay segment still exists (else a full replay).
  void load_newest_checkpoint(const std::vector<std::uint64_t>& newest_first) {
    for (auto lsn : newest_first) {
      auto reason = try_checkpoint(lsn);
      if (reason.empty()) {
        loaded_lsn_ = lsn;
        return;
      }
      event ev{event_kind::checkpoint_fallback, detail::checkpoint_path(jdir_, lsn)};
      ev.reason = std::move(reason);
      emit(ev);
    }
  }

  // The check of the likely fallback (the second newest) runs on a thread of its own
  // while the newest loads: on a network file system both opens wait for the same
  // metadata round (CephFS: a file another client renamed waits for the MDS's journal
  // flush, up to a tick), and its read overlaps the decode. It only reads.
  // A fallback the slave already verified whole is checked by its fingerprint alone.
  void start_fallback_check(const std::vector<std::uint64_t>& newest_first) {
    if (newest_first.size() < 2) return;
    early_lsn_ = newest_first[1];
    early_ = std::async(std::launch::async, [&fs = fs_, path = detail::checkpoint_path(jdir_, early_lsn_), id = id_,
                                             known = preverified(early_lsn_)] {
      fallback_check c;
      if (known && detail::still_the_file(fs, path, known->file)) {
        c.meta = known->meta;
        return c;
      }
      c.meta = detail::verify_checkpoint_file(fs, path, id, c.reason);
      return c;
    });
  }

  result<detail::checkpoint_meta> verify_fallback(std::uint64_t lsn, std::string& reason) {
    if (lsn == early_lsn_ && early_.valid()) {
      auto c = early_.get();
      reason = std::move(c.reason);
      return std::move(c.meta);
    }
    return detail::verify_checkpoint_file(fs_, detail::checkpoint_path(jdir_, lsn), id_, reason);
  }

  // The previous valid checkpoint stays as the fallback (and bounds GC); files older than
  // it are leftovers of a crash between writing a checkpoint and trimming. "Valid" here is
  // its header and checksum (verify_checkpoint_file): it is read in small pieces, not
  // loaded; should it ever be loaded, decode_checkpoint checks the rest.
  void keep_fallback_checkpoint(const std::vector<std::uint64_t>& newest_first) {
    if (!report_.from_checkpoint) return;
    bool have_previous = false;
    for (auto lsn : newest_first) {
      if (lsn >= loaded_lsn_) continue;
      if (!have_previous) {
        std::string reason;
        auto meta = verify_fallback(lsn, reason);
        if (meta) {
          have_previous = true;
          state_.kept_checkpoints[lsn] = meta.value().replay.segment;
          continue;
        }
      }
      state_.obsolete_checkpoints.push_back(lsn);
    }
  }

  bool on_record(const detail::walk_item& w) {
    const location where{w.segment, static_cast<std::uint32_t>(w.offset), static_cast<std::uint32_t>(w.bytes)};
    if (apply_record(state_.idx, w.rec.type, w.payload, where, apply_stage::replay)) {
      damage d{w.file, w.offset, w.rec.lsn, "checksum verifies but the payload does not parse", w.bytes};
      if (opts_.mode != recovery_mode::salvage) return refuse(std::move(d));
      report_.skipped.push_back(std::move(d));
    }
    state_.idx.set_last_lsn(w.rec.lsn);
    ++report_.records_replayed;
    state_.replayed_bytes += w.bytes;
    return true;
  }

  void on_fenced(const detail::walk_item& w) {
    if (report_.fenced_records == 0 && report_.fenced_bytes == 0) {
      fenced_event_.file = w.file;
      fenced_event_.offset = w.offset;
    }
    report_.fenced_bytes += w.bytes;
    if (w.kind != detail::walk_kind::fenced_record) return;
    if (report_.fenced_records == 0) report_.fenced_first_lsn = w.rec.lsn;
    ++report_.fenced_records;
    report_.fenced_last_lsn = w.rec.lsn;
  }

  void on_lost_unsynced(const detail::walk_item& w) {
    report_.unsynced_lost.push_back(to_damage(w));
    event ev{event_kind::unsynced_records_lost, w.file};
    ev.offset = w.offset;
    ev.bytes = w.bytes;
    ev.first_lsn = w.expected_lsn;
    ev.last_lsn = w.rec.lsn - 1;
    ev.count = w.rec.lsn - w.expected_lsn;
    ev.reason = w.reason + "; nothing in them was acknowledged (sync_policy always), dropped";
    emit(ev);
  }

  bool on_mid_log(const detail::walk_item& w) {
    auto d = to_damage(w);
    const bool salvage = opts_.mode == recovery_mode::salvage;
    event ev{salvage ? event_kind::corruption_skipped : event_kind::corruption_found, d.file};
    ev.offset = d.offset;
    ev.bytes = d.bytes;
    ev.first_lsn = d.lsn;
    ev.reason = d.reason;
    emit(ev);
    if (!salvage) return refuse(std::move(d));
    report_.skipped.push_back(std::move(d));
    return true;
  }

  bool refuse(damage d) {
    report_.refused = std::move(d);
    refused_ = true;
    return false;
  }

  std::error_code replay() {
    auto walked = detail::walk(walk_, [&](const detail::walk_item& w) {
      switch (w.kind) {
        case detail::walk_kind::segment: return true;
        case detail::walk_kind::record: return on_record(w);
        case detail::walk_kind::fenced_record:
        case detail::walk_kind::fenced_damage: on_fenced(w); return true;
        case detail::walk_kind::torn_tail: state_.torn = to_damage(w); return true;
        case detail::walk_kind::empty_last_segment: state_.empty_last = w.segment; return true;
        case detail::walk_kind::mid_log: return on_mid_log(w);
        case detail::walk_kind::lost_unsynced: on_lost_unsynced(w); return true;
      }
      return true;
    });
    if (!walked) return walked.error();
    if (refused_) return errc::mid_log_corruption;
    state_.walked = walked.value();
    if (report_.fenced_records != 0 || report_.fenced_bytes != 0) {
      fenced_event_.count = report_.fenced_records;
      fenced_event_.first_lsn = report_.fenced_first_lsn;
      fenced_event_.last_lsn = report_.fenced_last_lsn;
      fenced_event_.bytes = report_.fenced_bytes;
      fenced_event_.reason = "written by a deposed master after a takeover cut; ignored";
      emit(fenced_event_);
    }
    return {};
  }

  fs::file_system& fs_;
  const std::filesystem::path jdir_;
  const store_id& id_;
  const read_options opts_;
  recovery_report& report_;
  log_state state_;
  detail::captured_segments sealed_;
  std::optional<detail::sealed_capture_fs> sealed_fs_;
  detail::walk_input walk_;
  std::uint64_t loaded_lsn_ = 0;
  bool refused_ = false;
  struct fallback_check {
    result<detail::checkpoint_meta> meta = make_error_code(errc::not_found);
    std::string reason;
  };
  std::uint64_t early_lsn_ = 0;
  std::future<fallback_check> early_;  // joined by get() or by its destructor
  event fenced_event_{event_kind::fenced_records};
};

// Stale temporaries of interrupted atomic writes (checkpoints, identity) go first.
// The temporaries of recovery's own listing: listing again after the fence would cost a
// metadata round trip on a takeover's critical path (4 ms on the CephFS harness), and a
// deposed master's later temporary is no more removable then than now (the next open
// removes it).
std::error_code remove_temporaries(fs::file_system& fs, const std::filesystem::path& jdir,
                                   const std::vector<std::string>& names, const reporter& report) {
  for (const auto& name : names) {
    const auto path = jdir / name;
    if (auto ec = fs.remove(path)) {
      if (ec == std::errc::no_such_file_or_directory) continue;  // gone since the listing: renamed or removed
      return ec;
    }
    if (report) report({event_kind::temp_file_removed, path});
  }
  return {};
}

// Zeroes a torn tail and drops a segment whose header was never written.
std::error_code repair_tail(fs::file_system& fs, const std::filesystem::path& jdir, log_state& log,
                            const reporter& report) {
  if (const auto& torn = log.torn) {
    auto f = fs.open(torn->file, fs::open_mode::read_write);
    if (!f) return f.error();
    std::vector<std::byte> zeros(std::min<std::uint64_t>(torn->bytes, 1 << 20));
    for (std::uint64_t done = 0; done < torn->bytes;) {
      auto n = std::min<std::uint64_t>(zeros.size(), torn->bytes - done);
      if (auto ec = f.value()->write_at(std::span<const std::byte>(zeros.data(), n), torn->offset + done)) return ec;
      done += n;
    }
    if (auto ec = f.value()->sync()) return ec;
    event ev{event_kind::torn_tail_truncated, torn->file};
    ev.offset = torn->offset;
    ev.bytes = torn->bytes;
    ev.first_lsn = torn->lsn;
    ev.reason = torn->reason;
    if (report) report(ev);
  }
  if (log.empty_last) {
    auto path = detail::segment_path(jdir, *log.empty_last);
    if (auto ec = fs.remove(path)) return ec;
    if (auto ec = fs.sync_dir(jdir)) return ec;
    log.segments.pop_back();
    event ev{event_kind::segment_deleted, path};
    ev.reason = "last segment's header was never completely written (writer died creating it)";
    if (report) report(ev);
  }
  return {};
}

// Bytes of the log's last segment after its last sync point may never have been synced:
// the previous master may have died on a failed write or fdatasync, after which the page
// cache still serves them (and Linux may even have marked them clean: a second fdatasync
// would return 0 without writing them). Before a new master builds on them (its
// epoch_start names them as its history, its checkpoints index them, its consumers get
// them) they are written again and synced, so they are on disk whatever the page cache
// did. Issue 12, bug 6: without this a power loss took them from under the new master.
std::error_code make_tail_durable(fs::file_system& fs, const std::filesystem::path& jdir,
                                  const detail::walk_result& walked, const reporter& report) {
  const position end = walked.end;
  if (end.offset <= format::segment_header_bytes) return {};
  std::uint64_t from = format::segment_header_bytes;
  if (walked.synced_before.segment == end.segment) from = std::max(from, walked.synced_before.offset);
  if (from >= end.offset) return {};
  const auto t0 = clock::now();
  const auto path = detail::segment_path(jdir, end.segment);
  auto f = fs.open(path, fs::open_mode::read_write);
  if (!f) return f.error();
  std::vector<std::byte> tail(end.offset - from);
  auto n = f.value()->read_at(tail, from);
  if (!n) return n.error();
  if (n.value() != tail.size()) return make_error_code(errc::corrupt_file);  // shrank since the walk
  if (auto ec = f.value()->write_at(std::span<const std::byte>(tail), from)) return ec;
  if (auto ec = f.value()->sync()) return ec;
  if (report) {
    event ev{event_kind::tail_made_durable, path};
    ev.offset = from;
    ev.bytes = tail.size();
    ev.duration = since(t0);
    report(ev);
  }
  return {};
}

// True when the master that wrote the recovered tail released the store cleanly, so the
// tail needs no re-sync. Why that is safe (docs/failover.md "Planned handover"): that
// master's close() returned no error only if every write and fdatasync of its segments
// succeeded (one failure fails the journal for good, and close reports it), and its final one
// covered its head segment (with sync_policy always each group was synced before it
// completed; periodic and never sync at every roll and at close). Its own open re-synced
// the tail it had inherited. lockmgr marks the release clean only after that close
// succeeded (release_unclean otherwise). The epoch must be the newest in the log: records
// after its epoch_start are its own, and a newer epoch there (a successor that died before
// writing holder.json) wrote a tail nobody vouches for.
bool tail_synced_by_clean_release(const options& o, std::uint64_t newest_epoch) {
  return o.clean_release_epoch != 0 && o.clean_release_epoch == newest_epoch;
}

}  // namespace

// A fresh segment for the new epoch, starting with epoch_start, synced before open returns.
std::error_code store::impl::start_epoch(const detail::walk_result& walked) {
  if (auto ec = roll(true)) return ec;
  epoch_start es{opts.epoch, walked.end.segment, walked.end.offset, walked.last_lsn, opts.broker_name};
  std::vector<std::unique_ptr<entry>> first;
  first.push_back(make_record_entry(es));
  write_group(first);
  if (first[0]->ec) return first[0]->ec;
  if (opts.sync != sync_policy::always) {
    if (auto ec = timed_sync(*seg_file)) return ec;
  }
  durable_lsn = first[0]->lsn;
  durable_end = {first[0]->where.segment, std::uint64_t{first[0]->where.offset} + first[0]->where.size};
  idx.set_last_lsn(durable_lsn);
  max_epoch = opts.epoch;
  cut = walked.end;
  // Fault the checkpoint buffer in now, on the thread that opens the store, rather than
  // at the first checkpoint on the owner thread (for a million live messages, ~30 MB of
  // page faults doubled that checkpoint's pause).
  // When recovery loaded a checkpoint, this is its image's memory: faulted in already up
  // to about `need`, with room reserved to grow. The headroom is not faulted in here: an
  // index that grows until its next checkpoint faults in only what it grew by.
  const std::size_t need = detail::checkpoint_size_estimate(idx);
  if (checkpoint_buffer.capacity() < need) {
    std::vector<std::byte>().swap(checkpoint_buffer);
    checkpoint_buffer.reserve(need + need / 4);
  }
  detail::advise_huge_pages(checkpoint_buffer.data(), checkpoint_buffer.capacity());
  checkpoint_buffer.resize(need);
  checkpoint_buffer.clear();
  return {};
}

result<std::unique_ptr<store>> store::open(const std::filesystem::path& dir, options opts,
                                           recovery_report& report) {
  const auto t0 = clock::now();
  report = {};
  fs::file_system& fs = opts.fs ? *opts.fs : fs::posix_file_system();
  if (opts.segment_bytes < format::min_segment_bytes || opts.segment_bytes > format::max_segment_bytes ||
      opts.segment_bytes % format::record_alignment != 0)
    return make_error_code(errc::invalid_argument);
  auto ident = read_identity(fs, dir);
  if (!ident) return ident.error();
  if (opts.expected_store_id && !(*opts.expected_store_id == ident.value().id))
    return make_error_code(errc::wrong_store);

  auto p = std::make_shared<impl>(fs, dir, std::move(opts));
  impl& s = *p;
  s.id = ident.value().id;
  // The preload goes with the reader: the store keeps none of it (its sealed segments'
  // bytes: up to checkpoint_preloader's `sealed_bytes`) beyond what recovery took.
  auto log = log_reader(fs, s.jdir, s.id,
                        {s.opts.recovery, s.opts.epoch, s.opts.producer_window, s.opts.max_producers, s.opts.report,
                         std::move(s.opts.preloaded), s.opts.last_segment_past_cache},
                        report)
                 .read();
  if (!log) {
    if (log.error() == errc::mid_log_corruption) report.duration = since(t0);
    return log.error();
  }
  // Everything above only read; from here on open writes. The fence vouches for this
  // process as master first (the lock manager may leave its first check to this call, so
  // that its round trips overlapped the reading: lockmgr::options::check_before_acquire_returns).
  if (s.opts.fence) {
    if (auto ec = s.opts.fence()) return ec;
  }
  if (auto ec = remove_temporaries(fs, s.jdir, log.value().temporaries, s.opts.report)) return ec;
  for (auto lsn : log.value().obsolete_checkpoints) (void)fs.remove(detail::checkpoint_path(s.jdir, lsn));
  if (auto ec = repair_tail(fs, s.jdir, log.value(), s.opts.report)) return ec;
  if (tail_synced_by_clean_release(s.opts, log.value().max_epoch)) {
    report.tail_trusted_after_clean_release = true;
  } else if (auto ec = make_tail_durable(fs, s.jdir, log.value().walked, s.opts.report)) {
    return ec;
  }
  report.torn_tail = log.value().torn;
  // Take over what recovery read: the index, the segments, the kept checkpoints.
  auto& l = log.value();
  s.idx = std::move(l.idx);
  s.max_epoch = l.max_epoch;
  s.segments.insert(l.segments.begin(), l.segments.end());
  s.checkpoints = l.kept_checkpoints;
  s.writer_checkpoint_replay = l.kept_checkpoints;
  for (const auto& [lsn, replay_segment] : l.kept_checkpoints) s.writer_checkpoints.push_back(lsn);
  s.seg_seq = l.segments.empty() ? 0 : l.segments.back();
  s.next_lsn = l.walked.last_lsn + 1;
  s.replay_records_since_checkpoint = report.records_replayed;
  s.replay_bytes_since_checkpoint = l.replayed_bytes;
  s.idx.set_last_lsn(l.walked.last_lsn);
  s.checkpoint_buffer = std::move(l.checkpoint_image);
  if (auto ec = s.start_epoch(l.walked)) return ec;

  report.live_messages = s.idx.live_messages();
  report.live_bytes = s.idx.live_bytes();
  report.segments = s.segments.size();
  report.last_lsn = l.walked.last_lsn;
  report.duration = since(t0);
  s.report = report;

  // Named so `perf sched` and `top -H` tell the journal's threads from the io thread.
  s.writer = std::thread([&s] {
    pthread_setname_np(pthread_self(), "journal-writer");
    s.run_writer();
  });
  s.reader = std::thread([&s] {
    pthread_setname_np(pthread_self(), "journal-reader");
    s.run_reader();
  });
  return std::unique_ptr<store>(new store(std::move(p)));
}

result<index> rebuild_index(fs::file_system& fs, const std::filesystem::path& dir, recovery_mode mode,
                            recovery_report& report, std::size_t producer_window, std::size_t max_producers) {
  const auto t0 = clock::now();
  report = {};
  auto ident = read_identity(fs, dir);
  if (!ident) return ident.error();
  read_options o;
  o.mode = mode;
  o.producer_window = producer_window;
  o.max_producers = max_producers;
  auto log = log_reader(fs, dir / format::journal_dir_name, ident.value().id, o, report).read();
  report.duration = since(t0);
  if (!log) return log.error();
  auto& l = log.value();
  report.torn_tail = l.torn;
  report.live_messages = l.idx.live_messages();
  report.live_bytes = l.idx.live_bytes();
  report.segments = l.segments.size() - (l.empty_last ? 1 : 0);
  report.last_lsn = l.walked.last_lsn;
  l.idx.set_last_lsn(l.walked.last_lsn);
  return std::move(l.idx);
}

}  // namespace tandem::journal
