// `tandem-journal dump DIR`: one line per record (or damaged range), with filters.
#include <charconv>

#include <fmt/format.h>

#include "journal/errc.h"
#include "journal/reader.h"
#include "tools/journal/detail/open_store.h"
#include "tools/journal/detail/render.h"
#include "tools/journal/journal_tool.h"
#include "tools/journal/read_only_file_system.h"

namespace tandem::tools {

using namespace detail;

bool parse_position(std::string_view text, std::uint64_t& segment, std::uint64_t& offset) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  auto a = text.substr(0, colon), b = text.substr(colon + 1);
  auto [p1, e1] = std::from_chars(a.data(), a.data() + a.size(), segment, 16);
  auto [p2, e2] = std::from_chars(b.data(), b.data() + b.size(), offset, 10);
  return e1 == std::errc{} && p1 == a.data() + a.size() && e2 == std::errc{} && p2 == b.data() + b.size();
}

int run_dump(fs::file_system& base, const std::filesystem::path& dir, const dump_filter& filter, bool as_json,
             std::ostream& out, std::ostream& err) {
  read_only_file_system fs(base);
  int code = exit_clean;
  auto st = open_store(fs, dir, err, code);
  if (!st) return code;

  auto before_start = [&](std::uint64_t seg, std::uint64_t off) {
    if (!filter.from_segment) return false;
    return seg < *filter.from_segment || (seg == *filter.from_segment && off < filter.from_offset);
  };
  journal::scan_options so;
  so.decode = true;
  if (filter.from_segment) so.from_segment = *filter.from_segment;
  auto res = journal::scan(fs, dir, so, [&](const journal::scan_item& it) {
    if (it.kind == journal::scan_item_kind::segment) {
      if (filter.destination || filter.from_lsn) return true;
      if (as_json) {
        json j = {{"kind", "segment"}, {"file", it.file.string()}, {"segment", seg_name(it.segment_seq)},
                  {"size", it.file_size}};
        j["epoch"] = it.segment ? json(it.segment->epoch) : json(nullptr);
        out << dump_json(j) << '\n';
      } else {
        out << fmt::format("# segment {} size={}", it.file.string(), it.file_size);
        if (it.segment) out << fmt::format(" epoch={}", it.segment->epoch);
        out << '\n';
      }
      return true;
    }
    std::uint64_t off = it.kind == journal::scan_item_kind::damage ? it.damage.offset : it.offset;
    if (before_start(it.segment_seq, off)) return true;
    bool is_record = it.kind == journal::scan_item_kind::record ||
                     (it.kind == journal::scan_item_kind::fenced && !fenced_garbage(it));
    if (is_record) {
      if (filter.from_lsn && it.header.lsn < *filter.from_lsn) return true;
      if (filter.destination && (!it.payload || !touches(*it.payload, *filter.destination))) return true;
      bool is_fenced = it.kind == journal::scan_item_kind::fenced;
      if (as_json) {
        json j = {{"kind", is_fenced ? "fenced" : "record"},
                  {"file", it.file.string()},
                  {"segment", seg_name(it.segment_seq)},
                  {"offset", it.offset},
                  {"lsn", it.header.lsn},
                  {"epoch", it.header.epoch},
                  {"type", journal::to_string(it.header.type)},
                  {"bytes", it.record_bytes}};
        if (it.payload)
          j["record"] = json_of(*it.payload);
        else
          j["decode_error"] = it.decode_error.message();
        out << dump_json(j) << '\n';
      } else {
        out << fmt::format("{} {}lsn={} epoch={} bytes={} {} ", pos_text(it.segment_seq, it.offset),
                           is_fenced ? "FENCED " : "", it.header.lsn, it.header.epoch, it.record_bytes,
                           journal::to_string(it.header.type));
        if (it.payload)
          out << text_of(*it.payload);
        else
          out << "(payload does not decode: " << it.decode_error.message() << ")";
        out << '\n';
      }
      return true;
    }
    // Damage (or a deposed master's garbage) is always shown: it is why one dumps.
    if (filter.from_lsn && it.damage.lsn != 0 && it.damage.lsn < *filter.from_lsn) return true;
    bool is_fenced = it.kind == journal::scan_item_kind::fenced;
    if (as_json) {
      json j = damage_json(it);
      j["kind"] = is_fenced ? "fenced_damage" : "damage";
      out << dump_json(j) << '\n';
    } else {
      out << fmt::format("{} {} class={} bytes={} reason={} file={}\n", pos_text(it.segment_seq, it.damage.offset),
                         is_fenced ? "FENCED-DAMAGE" : "DAMAGE", class_name(it.classification), it.damage.bytes,
                         escaped(it.damage.reason), it.damage.file.string());
    }
    return true;
  });
  if (!res) return scan_failed(fs, dir, st->id.id, res.error(), err);
  return exit_clean;
}

}  // namespace tandem::tools
