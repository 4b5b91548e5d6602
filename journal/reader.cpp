#include "journal/reader.h"

#include <algorithm>

#include "journal/detail/checkpoint.h"
#include "journal/detail/journal_walk.h"
#include "journal/errc.h"
#include "journal/format.h"

namespace tandem::journal {

result<scan_summary> scan(fs::file_system& fs, const std::filesystem::path& dir, const scan_options& opts,
                          const std::function<bool(const scan_item&)>& visit) {
  auto ident = read_identity(fs, dir);
  if (!ident) return ident.error();
  const auto jdir = dir / format::journal_dir_name;
  auto inv = detail::take_inventory(fs, jdir);
  if (!inv) return inv.error();
  auto fences = detail::find_fence_points(fs, jdir, inv.value().segments, ident.value().id);
  if (!fences) return fences.error();

  scan_summary sum;
  for (const auto& f : fences.value()) sum.max_epoch = std::max(sum.max_epoch, f.epoch);
  detail::walk_input in;
  in.fs = &fs;
  in.journal_dir = jdir;
  in.segments = inv.value().segments;
  in.id = ident.value().id;
  in.fences = fences.value();
  if (opts.from_segment != 0) in.start = {opts.from_segment, 0};

  auto walked = detail::walk(in, [&](const detail::walk_item& w) {
    scan_item item;
    item.file = w.file;
    item.segment_seq = w.segment;
    item.offset = w.offset;
    item.file_size = w.file_size;
    switch (w.kind) {
      case detail::walk_kind::segment:
        item.kind = scan_item_kind::segment;
        item.segment = w.header;
        ++sum.segments;
        if (w.header) sum.max_epoch = std::max(sum.max_epoch, w.header->epoch);
        break;
      case detail::walk_kind::record:
      case detail::walk_kind::fenced_record:
        item.kind = w.kind == detail::walk_kind::record ? scan_item_kind::record : scan_item_kind::fenced;
        item.header = w.rec;
        item.record_bytes = w.bytes;
        if (opts.decode) {
          auto rec = decode_payload(w.rec.type, w.payload);
          if (rec) item.payload = std::move(rec.value());
          else item.decode_error = rec.error();
        }
        if (item.kind == scan_item_kind::record) {
          ++sum.records;
          if (sum.first_lsn == 0) sum.first_lsn = w.rec.lsn;
          sum.last_lsn = w.rec.lsn;
          if (item.decode_error) sum.mid_log_corruption = true;
        } else {
          ++sum.fenced_records;
        }
        break;
      case detail::walk_kind::fenced_damage:
        item.kind = scan_item_kind::fenced;
        item.damage = {w.file, w.offset, w.expected_lsn, w.reason, w.bytes};
        break;
      case detail::walk_kind::lost_unsynced:
        item.kind = scan_item_kind::damage;
        item.damage = {w.file, w.offset, w.expected_lsn, w.reason, w.bytes};
        item.classification = damage_class::lost_unsynced;
        ++sum.damaged_ranges;
        break;
      case detail::walk_kind::torn_tail:
      case detail::walk_kind::mid_log:
      case detail::walk_kind::empty_last_segment:
        item.kind = scan_item_kind::damage;
        item.damage = {w.file, w.offset, w.expected_lsn, w.reason, w.bytes};
        ++sum.damaged_ranges;
        if (w.kind == detail::walk_kind::mid_log) {
          item.classification = damage_class::mid_log;
          sum.mid_log_corruption = true;
        } else if (w.kind == detail::walk_kind::torn_tail) {
          item.classification = damage_class::torn_tail;
          sum.torn_tail = item.damage;
        } else {
          item.classification = damage_class::empty_segment_tail;
        }
        break;
    }
    return visit ? visit(item) : true;
  });
  if (!walked) return walked.error();
  return sum;
}

result<std::vector<checkpoint_info>> list_checkpoints(fs::file_system& fs, const std::filesystem::path& dir) {
  auto ident = read_identity(fs, dir);
  if (!ident) return ident.error();
  const auto jdir = dir / format::journal_dir_name;
  auto inv = detail::take_inventory(fs, jdir);
  if (!inv) return inv.error();
  std::vector<checkpoint_info> out;
  for (auto lsn : inv.value().checkpoints) {
    checkpoint_info info;
    info.file = detail::checkpoint_path(jdir, lsn);
    info.lsn = lsn;
    auto image = fs::read_file(fs, info.file);
    if (!image) {
      info.error = image.error();
      info.reason = "cannot read: " + image.error().message();
    } else {
      auto meta = detail::decode_checkpoint(std::as_bytes(std::span(image.value())), ident.value().id,
                                            nullptr, info.reason);
      if (!meta) {
        info.error = meta.error();
      } else {
        info.replay_segment = meta.value().replay.segment;
        info.replay_offset = meta.value().replay.offset;
        info.live_messages = meta.value().live_messages;
        if (meta.value().lsn != lsn) {
          info.error = make_error_code(errc::corrupt_file);
          info.reason = "file name and covered lsn differ";
        }
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace tandem::journal
