// `tandem-journal verify DIR`: checks every record and classifies damage as recovery
// would; the exit code says clean, torn tail or corrupt.
#include <fmt/format.h>

#include "journal/errc.h"
#include "journal/reader.h"
#include "tools/journal/detail/open_store.h"
#include "tools/journal/detail/render.h"
#include "tools/journal/journal_tool.h"
#include "tools/journal/read_only_file_system.h"

namespace tandem::tools {

using namespace detail;

int run_verify(fs::file_system& base, const std::filesystem::path& dir, bool as_json, std::ostream& out,
               std::ostream& err) {
  read_only_file_system fs(base);
  int code = exit_clean;
  auto st = open_store(fs, dir, err, code);
  if (!st) {
    if (as_json)
      out << dump_json({{"store", dir.string()}, {"result", "unreadable"}, {"exit_code", code}}) << '\n';
    return code;
  }
  std::vector<journal::scan_item> damages, fenced;
  std::uint64_t undecodable = 0;
  journal::scan_options so;
  so.decode = true;  // a payload that verifies but does not decode is corruption too
  std::vector<journal::scan_item> bad_payloads;
  auto res = journal::scan(fs, dir, so, [&](const journal::scan_item& it) {
    if (it.kind == journal::scan_item_kind::damage) damages.push_back(it);
    if (it.kind == journal::scan_item_kind::fenced) fenced.push_back(it);
    if (it.kind == journal::scan_item_kind::record && !it.payload) {
      ++undecodable;
      bad_payloads.push_back(it);
    }
    return true;
  });
  if (!res) {
    int c = scan_failed(fs, dir, st->id.id, res.error(), err);
    if (as_json)
      out << dump_json({{"store", dir.string()}, {"result", "unreadable"}, {"exit_code", c},
                        {"error", res.error().message()}})
          << '\n';
    return c;
  }
  const auto& sum = res.value();
  auto ckpts = journal::list_checkpoints(fs, dir);

  bool mid_log = sum.mid_log_corruption || undecodable != 0;
  bool torn = false;
  for (const auto& d : damages) {
    if (d.classification == journal::damage_class::mid_log) mid_log = true;
    if (d.classification == journal::damage_class::torn_tail ||
        d.classification == journal::damage_class::empty_segment_tail ||
        d.classification == journal::damage_class::lost_unsynced)
      torn = true;
  }
  code = mid_log ? exit_corrupt : torn ? exit_torn_tail : exit_clean;
  std::string_view verdict = mid_log ? "corrupt" : torn ? "torn_tail" : "clean";

  if (as_json) {
    json j;
    j["store"] = dir.string();
    j["store_id"] = st->id.id.to_hex();
    j["segments"] = sum.segments;
    j["records"] = sum.records;
    j["lsn"] = {{"first", sum.first_lsn}, {"last", sum.last_lsn}};
    json dj = json::array();
    for (const auto& d : damages) dj.push_back(damage_json(d));
    for (const auto& b : bad_payloads)
      dj.push_back({{"file", b.file.string()}, {"segment", seg_name(b.segment_seq)}, {"offset", b.offset},
                    {"lsn", b.header.lsn}, {"bytes", b.record_bytes},
                    {"reason", "payload does not decode: " + b.decode_error.message()}, {"class", "mid_log"}});
    j["damage"] = dj;
    json fj = json::array();
    for (const auto& f : fenced) {
      if (fenced_garbage(f)) {
        json g = damage_json(f);
        g["garbage"] = true;
        fj.push_back(std::move(g));
      } else {
        fj.push_back({{"file", f.file.string()}, {"segment", seg_name(f.segment_seq)}, {"offset", f.offset},
                      {"lsn", f.header.lsn}, {"epoch", f.header.epoch},
                      {"type", journal::to_string(f.header.type)}, {"bytes", f.record_bytes}});
      }
    }
    j["fenced"] = fj;
    json cj = json::array();
    if (ckpts)
      for (const auto& c : ckpts.value())
        cj.push_back({{"file", c.file.string()}, {"lsn", c.lsn}, {"valid", !c.error}, {"reason", c.reason}});
    j["checkpoints"] = cj;
    j["result"] = verdict;
    j["exit_code"] = code;
    out << dump_json(j) << '\n';
    return code;
  }

  out << fmt::format("store {} ({}): {} segments, {} records", dir.string(), st->id.id.to_hex(), sum.segments,
                     sum.records);
  if (sum.records != 0) out << fmt::format(", lsn {} .. {}", sum.first_lsn, sum.last_lsn);
  out << '\n';
  for (const auto& d : damages) {
    switch (d.classification) {
      case journal::damage_class::torn_tail:
        out << "torn tail: " << damage_text(d)
            << "\n  written after the last completed fdatasync (the writer died mid-write); recovery truncates "
               "here and loses nothing that sync_policy always acknowledged\n";
        break;
      case journal::damage_class::empty_segment_tail:
        out << "torn tail: " << damage_text(d)
            << "\n  the newest segment was being created when the writer died; recovery ignores it\n";
        break;
      case journal::damage_class::lost_unsynced:
        out << "lost unsynced records: " << damage_text(d)
            << "\n  a master replayed records that were never durable and built on them, then a power failure "
               "took them; nothing in them was acknowledged (sync_policy always): recovery drops them\n";
        break;
      default:
        out << "corruption: " << damage_text(d)
            << "\n  data was damaged after an fdatasync covered it (a record written after a later fdatasync "
               "follows, or this is not the newest segment), so this is not a torn write; a broker refuses to "
               "recover this store (salvage mode would skip these bytes and lose the messages in them)\n";
        break;
    }
  }
  for (const auto& b : bad_payloads)
    out << fmt::format("corruption: {} offset {} (lsn {}): checksum verifies but the payload does not decode: {}\n",
                       b.file.string(), b.offset, b.header.lsn, b.decode_error.message());
  for (const auto& f : fenced) {
    if (fenced_garbage(f))
      out << "fenced: " << damage_text(f) << " (damaged bytes of a deposed master; ignored by recovery)\n";
    else
      out << fmt::format("fenced: {} offset {}: lsn {} epoch {} {} ({} bytes) written by a deposed master after "
                         "a newer master's cut; ignored by recovery\n",
                         f.file.string(), f.offset, f.header.lsn, f.header.epoch,
                         journal::to_string(f.header.type), f.record_bytes);
  }
  if (ckpts) {
    for (const auto& c : ckpts.value()) {
      if (c.error)
        out << fmt::format("checkpoint {}: invalid: {} (recovery falls back to an older one or a full replay)\n",
                           c.file.string(), c.reason);
      else
        out << fmt::format("checkpoint {}: valid (lsn {}, replay from {})\n", c.file.string(), c.lsn,
                           pos_text(c.replay_segment, c.replay_offset));
    }
  } else {
    out << fmt::format("checkpoints: cannot list: {}\n", ckpts.error().message());
  }
  out << "result: " << verdict << '\n';
  return code;
}

}  // namespace tandem::tools
