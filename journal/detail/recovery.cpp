// Recovery (store::open): the newest valid checkpoint, the replay of the log after it, the
// repair of a torn tail, and the fresh segment of the new epoch, started with an
// epoch_start record and synced before open returns. The rules are in format.h section 7.
#include <algorithm>

#include <fmt/format.h>

#include "journal/apply.h"
#include "journal/detail/checkpoint.h"
#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

using detail::clock;
using detail::entry;
using detail::position;
using detail::since;

namespace {

damage to_damage(const detail::walk_item& w) {
  return {w.file, w.offset, w.expected_lsn, w.reason, w.bytes};
}

}  // namespace

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

  // Inventory of DIR/journal; stale temporaries of interrupted atomic writes go first.
  auto names = fs.list(s.jdir);
  if (!names) return names.error();
  std::vector<std::uint64_t> segs;
  std::vector<std::uint64_t> ckpts;
  for (const auto& name : names.value()) {
    if (name.ends_with(format::temp_suffix)) {
      auto path = s.jdir / name;
      if (auto ec = fs.remove(path)) return ec;
      s.emit({event_kind::temp_file_removed, path});
    } else if (auto seq = detail::parse_segment_name(name)) {
      segs.push_back(*seq);
    } else if (auto lsn = detail::parse_checkpoint_name(name)) {
      ckpts.push_back(*lsn);
    }
  }
  std::sort(segs.begin(), segs.end());
  std::sort(ckpts.begin(), ckpts.end(), std::greater<>());

  auto fences = detail::find_fence_points(fs, s.jdir, segs, s.id);
  if (!fences) return fences.error();
  for (const auto& f : fences.value()) {
    if (f.epoch > s.opts.epoch) return make_error_code(errc::fenced);  // a newer master wrote here
    s.max_epoch = std::max(s.max_epoch, f.epoch);
  }

  // Newest valid checkpoint whose replay segment still exists.
  detail::walk_input in;
  in.fs = &fs;
  in.journal_dir = s.jdir;
  in.segments = segs;
  in.id = s.id;
  in.fences = fences.value();
  for (auto lsn : ckpts) {
    auto path = detail::checkpoint_path(s.jdir, lsn);
    auto image = fs::read_file(fs, path);
    std::string reason;
    if (!image) {
      reason = "cannot read: " + image.error().message();
    } else {
      auto ct0 = clock::now();
      journal::index loaded(s.opts.producer_window);
      auto meta = detail::decode_checkpoint(std::as_bytes(std::span(image.value())), s.id, &loaded, reason);
      const detail::fence_point* newer = nullptr;
      if (meta) {
        for (const auto& f : fences.value())
          if (f.epoch > meta.value().max_epoch && f.cut <= meta.value().replay) newer = &f;
      }
      if (meta && !std::binary_search(segs.begin(), segs.end(), meta.value().replay.segment)) {
        reason = fmt::format("its replay segment {:016x} is missing", meta.value().replay.segment);
      } else if (meta && newer) {
        // Written by a master deposed before this position: it may hold records that a
        // newer master never saw.
        reason = fmt::format("written by epoch {} after epoch {} took over", meta.value().max_epoch, newer->epoch);
      } else if (meta) {
        s.idx = std::move(loaded);
        in.start = meta.value().replay;
        in.last_lsn = meta.value().lsn;
        in.fences.push_back(detail::fence_point{meta.value().max_epoch, meta.value().cut, meta.value().cut});
        s.max_epoch = std::max(s.max_epoch, meta.value().max_epoch);
        s.checkpoints[lsn] = meta.value().replay.segment;
        s.writer_checkpoints.insert(s.writer_checkpoints.begin(), lsn);
        s.writer_checkpoint_replay[lsn] = meta.value().replay.segment;
        report.from_checkpoint = true;
        report.checkpoint_file = path;
        event ev{event_kind::checkpoint_loaded, path};
        ev.first_lsn = lsn;
        ev.duration = since(ct0);
        s.emit(ev);
        break;
      }
    }
    event ev{event_kind::checkpoint_fallback, path};
    ev.reason = reason;
    s.emit(ev);
  }
  // The previous valid checkpoint stays as the fallback (and bounds GC); files older
  // than it are leftovers of a crash between writing a checkpoint and trimming.
  if (report.from_checkpoint) {
    const std::uint64_t loaded = s.writer_checkpoints.front();
    bool have_previous = false;
    for (auto lsn : ckpts) {
      if (lsn >= loaded) continue;
      auto path = detail::checkpoint_path(s.jdir, lsn);
      if (!have_previous) {
        auto image = fs::read_file(fs, path);
        std::string reason;
        if (image) {
          auto meta = detail::decode_checkpoint(std::as_bytes(std::span(image.value())), s.id, nullptr, reason);
          if (meta) {
            have_previous = true;
            s.writer_checkpoints.insert(s.writer_checkpoints.begin(), lsn);
            s.writer_checkpoint_replay[lsn] = meta.value().replay.segment;
            s.checkpoints[lsn] = meta.value().replay.segment;
            continue;
          }
        }
      }
      (void)fs.remove(path);
    }
  }

  // Replay.
  std::optional<damage> torn;
  std::optional<std::uint64_t> empty_last;
  std::error_code replay_error;
  event fenced_ev{event_kind::fenced_records};
  auto walked = detail::walk(in, [&](const detail::walk_item& w) {
    switch (w.kind) {
      case detail::walk_kind::segment:
        return true;
      case detail::walk_kind::record: {
        location where{w.segment, static_cast<std::uint32_t>(w.offset), static_cast<std::uint32_t>(w.bytes)};
        if (apply_record(s.idx, w.rec.type, w.payload, where, apply_stage::replay)) {
          damage d{w.file, w.offset, w.rec.lsn, "checksum verifies but the payload does not parse", w.bytes};
          if (s.opts.recovery != recovery_mode::salvage) {
            report.refused = d;
            replay_error = errc::mid_log_corruption;
            return false;
          }
          report.skipped.push_back(d);
        }
        s.idx.set_last_lsn(w.rec.lsn);
        ++report.records_replayed;
        return true;
      }
      case detail::walk_kind::fenced_record:
        if (report.fenced_records == 0) {
          report.fenced_first_lsn = w.rec.lsn;
          fenced_ev.file = w.file;
          fenced_ev.offset = w.offset;
        }
        ++report.fenced_records;
        report.fenced_last_lsn = w.rec.lsn;
        report.fenced_bytes += w.bytes;
        return true;
      case detail::walk_kind::fenced_damage:
        if (report.fenced_records == 0 && report.fenced_bytes == 0) {
          fenced_ev.file = w.file;
          fenced_ev.offset = w.offset;
        }
        report.fenced_bytes += w.bytes;
        return true;
      case detail::walk_kind::torn_tail:
        torn = to_damage(w);
        return true;
      case detail::walk_kind::empty_last_segment:
        empty_last = w.segment;
        return true;
      case detail::walk_kind::mid_log: {
        auto d = to_damage(w);
        event ev{s.opts.recovery == recovery_mode::salvage ? event_kind::corruption_skipped
                                                            : event_kind::corruption_found,
                 d.file};
        ev.offset = d.offset;
        ev.bytes = d.bytes;
        ev.first_lsn = d.lsn;
        ev.reason = d.reason;
        s.emit(ev);
        if (s.opts.recovery == recovery_mode::salvage) {
          report.skipped.push_back(d);
          return true;
        }
        report.refused = d;
        replay_error = errc::mid_log_corruption;
        return false;
      }
    }
    return true;
  });
  if (!walked) return walked.error();
  if (replay_error) {
    report.duration = since(t0);
    return replay_error;
  }
  if (report.fenced_records != 0 || report.fenced_bytes != 0) {
    fenced_ev.count = report.fenced_records;
    fenced_ev.first_lsn = report.fenced_first_lsn;
    fenced_ev.last_lsn = report.fenced_last_lsn;
    fenced_ev.bytes = report.fenced_bytes;
    fenced_ev.reason = "written by a deposed master after a takeover cut; ignored";
    s.emit(fenced_ev);
  }

  // Repair the tail: zero a torn tail, drop a segment whose header was never written.
  if (torn) {
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
    s.emit(ev);
    report.torn_tail = torn;
  }
  if (empty_last) {
    auto path = detail::segment_path(s.jdir, *empty_last);
    if (auto ec = fs.remove(path)) return ec;
    if (auto ec = fs.sync_dir(s.jdir)) return ec;
    segs.pop_back();
    event ev{event_kind::segment_deleted, path};
    ev.reason = "last segment's header was never completely written (writer died creating it)";
    s.emit(ev);
  }

  const std::uint64_t last_lsn = walked.value().last_lsn;
  const position end = walked.value().end;
  s.segments.insert(segs.begin(), segs.end());
  s.seg_seq = segs.empty() ? 0 : segs.back();
  s.next_lsn = last_lsn + 1;
  s.idx.set_last_lsn(last_lsn);

  // A fresh segment for the new epoch, starting with epoch_start, synced before return.
  if (auto ec = s.roll(true)) return ec;
  epoch_start es{s.opts.epoch, end.segment, end.offset, last_lsn, s.opts.broker_name};
  std::vector<std::unique_ptr<entry>> first;
  first.push_back(s.make_record_entry(es));
  s.write_group(first);
  if (first[0]->ec) return first[0]->ec;
  if (s.opts.sync != sync_policy::always) {
    if (auto ec = s.timed_sync(*s.seg_file)) return ec;
  }
  s.durable_lsn = first[0]->lsn;
  s.durable_end = {first[0]->where.segment, std::uint64_t{first[0]->where.offset} + first[0]->where.size};
  s.idx.set_last_lsn(s.durable_lsn);
  s.max_epoch = s.opts.epoch;
  s.cut = end;

  // Fault the checkpoint buffer in now, on the thread that opens the store, rather than
  // at the first checkpoint on the owner thread (for a million live messages, ~30 MB of
  // page faults doubled that checkpoint's pause).
  {
    const std::size_t need = detail::checkpoint_size_estimate(s.idx);
    s.checkpoint_buffer.resize(need + need / 4);
    s.checkpoint_buffer.clear();
  }

  report.live_messages = s.idx.live_messages();
  report.live_bytes = s.idx.live_bytes();
  report.segments = s.segments.size();
  report.last_lsn = last_lsn;
  report.duration = since(t0);
  s.report = report;

  s.writer = std::thread([&s] { s.run_writer(); });
  return std::unique_ptr<store>(new store(std::move(p)));
}

}  // namespace tandem::journal
