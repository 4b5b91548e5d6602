#include "journal/detail/journal_walk.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "journal/detail/codec.h"
#include "journal/errc.h"
#include "journal/format.h"

namespace tandem::journal::detail {
namespace {

constexpr std::size_t hdr = format::record_header_bytes;

std::optional<std::uint64_t> parse_hex16(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  // Only lowercase names are ours (from_chars accepts uppercase too).
  if (std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'F'; })) return std::nullopt;
  return v;
}

// One past the last non-zero byte in buf[from, end), or `from` when all zero.
std::uint64_t nonzero_end(std::span<const std::byte> buf, std::uint64_t from) {
  std::uint64_t end = buf.size();
  // Word at a time from the end: the unwritten tail of a segment is megabytes of zeros.
  while (end >= from + 8) {
    std::uint64_t w;
    std::memcpy(&w, buf.data() + end - 8, 8);
    if (w != 0) break;
    end -= 8;
  }
  while (end > from && buf[end - 1] == std::byte{0}) --end;
  return end;
}

enum class step_kind { record, end_of_data, damage };
struct step {
  step_kind kind;
  record_header rec;
  std::uint64_t bytes = 0;
  std::string_view reason;
};

step next_record(std::span<const std::byte> buf, std::uint64_t pos) {
  if (pos + hdr > buf.size()) {
    if (nonzero_end(buf, pos) == pos) return {step_kind::end_of_data, {}, 0, {}};
    return {step_kind::damage, {}, 0, "truncated record header at end of file"};
  }
  std::span<const std::byte, hdr> h(buf.data() + pos, hdr);
  if (is_zero_header(h)) return {step_kind::end_of_data, {}, 0, {}};
  record_header r = parse_record_header(h);
  if (pos + hdr + r.length > buf.size()) return {step_kind::damage, r, 0, "record runs past end of file"};
  auto reason = verify_record(h, buf.subspan(pos + hdr, r.length));
  if (!reason.empty()) return {step_kind::damage, r, 0, reason};
  std::uint64_t bytes = std::min<std::uint64_t>(format::record_bytes(r.length), buf.size() - pos);
  // Padding is outside the checksum, so check it is still zero: every byte of a segment
  // up to the end of data is then verified.
  for (std::uint64_t i = pos + hdr + r.length; i < pos + bytes; ++i)
    if (buf[i] != std::byte{0}) return {step_kind::damage, r, 0, "non-zero record padding"};
  return {step_kind::record, r, bytes, {}};
}

// Next 8-aligned offset >= from holding a record that verifies and has lsn > min_lsn.
std::optional<std::uint64_t> find_next_valid(std::span<const std::byte> buf, std::uint64_t from,
                                             std::uint64_t min_lsn) {
  for (std::uint64_t q = format::align_up(from); q + hdr <= buf.size(); q += format::record_alignment) {
    const std::byte* p = buf.data() + q;
    // Cheap filters first; the checksum is computed only for plausible headers.
    auto type = static_cast<std::uint8_t>(p[12]);
    if (type == 0 || type > format::max_record_type) continue;
    if (p[13] != std::byte{0} || p[14] != std::byte{0} || p[15] != std::byte{0}) continue;
    std::uint32_t len = get_u32_at(p + 8);
    if (q + hdr + len > buf.size()) continue;
    std::uint64_t lsn = get_u64_at(p + 16);
    if (lsn <= min_lsn) continue;
    std::span<const std::byte, hdr> h(p, hdr);
    if (verify_record(h, buf.subspan(q + hdr, len)).empty()) return q;
  }
  return std::nullopt;
}

bool fenced_record(const std::vector<fence_point>& fences, position at, std::uint64_t epoch) {
  return std::any_of(fences.begin(), fences.end(),
                     [&](const fence_point& f) { return f.cut <= at && epoch < f.epoch; });
}

// Damaged bytes are the deposed master's when they lie between a cut and the new master's
// epoch_start, or in a segment a lower epoch created after the cut.
bool fenced_garbage(const std::vector<fence_point>& fences, position at,
                    std::optional<std::uint64_t> segment_epoch) {
  return std::any_of(fences.begin(), fences.end(), [&](const fence_point& f) {
    return f.cut <= at && (at < f.at || (segment_epoch && *segment_epoch < f.epoch));
  });
}

}  // namespace

std::filesystem::path segment_path(const std::filesystem::path& journal_dir, std::uint64_t seq) {
  return journal_dir / fmt::format("{:016x}{}", seq, format::segment_suffix);
}

std::filesystem::path checkpoint_path(const std::filesystem::path& journal_dir, std::uint64_t lsn) {
  return journal_dir / fmt::format("{}{:016x}{}", format::checkpoint_prefix, lsn, format::checkpoint_suffix);
}

std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != 16 + format::segment_suffix.size() || !name.ends_with(format::segment_suffix))
    return std::nullopt;
  return parse_hex16(name.substr(0, 16));
}

std::optional<std::uint64_t> parse_checkpoint_name(std::string_view name) {
  if (!name.starts_with(format::checkpoint_prefix) || !name.ends_with(format::checkpoint_suffix))
    return std::nullopt;
  name.remove_prefix(format::checkpoint_prefix.size());
  name.remove_suffix(format::checkpoint_suffix.size());
  return parse_hex16(name);
}

fs::result<std::vector<fence_point>> find_fence_points(fs::file_system& fs,
                                                       const std::filesystem::path& journal_dir,
                                                       const std::vector<std::uint64_t>& segments,
                                                       const store_id& id) {
  std::vector<fence_point> out;
  std::vector<std::byte> buf(4096);
  for (auto seq : segments) {
    auto f = fs.open(segment_path(journal_dir, seq), fs::open_mode::read_only);
    if (!f) return f.error();
    auto n = f.value()->read_at(buf, 0);
    if (!n) return n.error();
    std::span<const std::byte> data(buf.data(), n.value());
    if (data.size() < format::segment_header_bytes + hdr) continue;
    auto sh = decode_segment_header(data.first<format::segment_header_bytes>());
    if (!sh || !(sh.value().store == id)) continue;
    std::uint64_t pos = format::segment_header_bytes;
    record_header r = parse_record_header(data.subspan(pos).first<hdr>());
    if (r.type != record_type::epoch_start) continue;
    std::vector<std::byte> big;
    std::span<const std::byte> rec = data.subspan(pos);
    if (hdr + r.length > rec.size()) {
      // A long broker name: read the whole record.
      if (r.length > (1u << 20)) continue;
      big.resize(hdr + r.length);
      auto m = f.value()->read_at(big, pos);
      if (!m || m.value() != big.size()) continue;
      rec = big;
    }
    auto payload = rec.subspan(hdr, r.length);
    if (!verify_record(rec.first<hdr>(), payload).empty()) continue;
    auto decoded = decode_payload(record_type::epoch_start, payload);
    if (!decoded) continue;
    const auto& es = std::get<epoch_start>(decoded.value());
    out.push_back({es.epoch, {es.cut_segment, es.cut_offset}, {seq, pos}});
  }
  return out;
}

fs::result<walk_result> walk(const walk_input& in, const std::function<bool(const walk_item&)>& visit) {
  walk_result res;
  res.last_lsn = in.last_lsn;
  res.end = in.start;
  std::vector<std::byte> buf;
  // lsns run +1 across the log, but not across a hole: after skipped damage (salvage) or a
  // segment deleted by GC, the next valid record resynchronises the sequence.
  bool resync = in.last_lsn == 0;
  std::optional<std::uint64_t> previous_seq;
  for (std::size_t i = 0; i < in.segments.size(); ++i) {
    const std::uint64_t seq = in.segments[i];
    if (seq < in.start.segment) continue;
    if (previous_seq && *previous_seq + 1 != seq) resync = true;
    previous_seq = seq;
    const bool is_last = i + 1 == in.segments.size();
    const auto path = segment_path(in.journal_dir, seq);
    auto f = in.fs->open(path, fs::open_mode::read_only);
    if (!f) return f.error();
    auto size = f.value()->size();
    if (!size) return size.error();
    buf.resize(size.value());
    auto n = f.value()->read_at(buf, 0);
    if (!n) return n.error();
    buf.resize(n.value());
    f.value().reset();
    std::span<const std::byte> data(buf);

    walk_item seg_item{walk_kind::segment, path, seq};
    seg_item.file_size = data.size();
    std::optional<std::uint64_t> seg_epoch;
    std::string header_problem;
    if (data.size() < format::segment_header_bytes ||
        nonzero_end(data.first(format::segment_header_bytes), 0) == 0) {
      header_problem = "segment header missing (file created but never initialised)";
    } else {
      auto sh = decode_segment_header(data.first<format::segment_header_bytes>());
      if (!sh) {
        if (sh.error() == errc::unsupported_version) return sh.error();
        header_problem = "segment header damaged (bad magic or checksum)";
      } else if (!(sh.value().store == in.id)) {
        return make_error_code(errc::wrong_store);
      } else if (sh.value().seq != seq) {
        header_problem = fmt::format("segment header names seq {:016x}", sh.value().seq);
      } else {
        seg_item.header = sh.value();
        seg_epoch = sh.value().epoch;
      }
    }
    if (!header_problem.empty()) {
      walk_item d{};
      d.file = path;
      d.segment = seq;
      d.offset = 0;
      d.file_size = data.size();
      d.bytes = data.size();
      d.expected_lsn = res.last_lsn ? res.last_lsn + 1 : 0;
      d.reason = header_problem;
      bool valid_after = find_next_valid(data, format::segment_header_bytes, res.last_lsn).has_value();
      if (fenced_garbage(in.fences, {seq, 0}, std::nullopt)) {
        d.kind = walk_kind::fenced_damage;
      } else if (is_last && !valid_after) {
        d.kind = walk_kind::empty_last_segment;
      } else {
        d.kind = walk_kind::mid_log;
      }
      if (!visit(d)) return res;
      continue;
    }
    if (!visit(seg_item)) return res;

    std::uint64_t pos = (seq == in.start.segment && in.start.offset != 0) ? in.start.offset
                                                                           : format::segment_header_bytes;
    while (pos < data.size()) {
      step s = next_record(data, pos);
      std::string reason;
      if (s.kind == step_kind::record) {
        position at{seq, pos};
        walk_item item{};
        item.file = path;
        item.segment = seq;
        item.offset = pos;
        item.bytes = s.bytes;
        item.rec = s.rec;
        item.payload = data.subspan(pos + hdr, s.rec.length);
        if (fenced_record(in.fences, at, s.rec.epoch)) {
          item.kind = walk_kind::fenced_record;
          if (!visit(item)) return res;
          pos += s.bytes;
          continue;
        }
        if (resync ? s.rec.lsn <= res.last_lsn : s.rec.lsn != res.last_lsn + 1) {
          reason = fmt::format("lsn {} out of sequence (expected {})", s.rec.lsn, res.last_lsn + 1);
          s.bytes = format::record_bytes(s.rec.length);
        } else {
          item.kind = walk_kind::record;
          resync = false;
          ++res.records;
          res.last_lsn = s.rec.lsn;
          res.end = {seq, pos + s.bytes};
          if (!visit(item)) return res;
          pos += s.bytes;
          continue;
        }
      } else if (s.kind == step_kind::end_of_data) {
        std::uint64_t nz = nonzero_end(data, pos);
        if (nz == pos) break;  // clean end: zeros to the end of the file
        reason = "zero record header followed by non-zero bytes";
      } else {
        reason = std::string(s.reason);
      }
      // Damage at pos: find where (if anywhere) valid records resume in this segment.
      walk_item d{};
      d.file = path;
      d.segment = seq;
      d.offset = pos;
      d.file_size = data.size();
      d.expected_lsn = res.last_lsn ? res.last_lsn + 1 : 0;
      d.reason = std::move(reason);
      auto next = find_next_valid(data, pos + format::record_alignment, res.last_lsn);
      bool fenced = fenced_garbage(in.fences, {seq, pos}, seg_epoch);
      if (next) {
        d.bytes = *next - pos;
        d.kind = fenced ? walk_kind::fenced_damage : walk_kind::mid_log;
        if (!visit(d)) return res;
        pos = *next;
        resync = true;
        continue;
      }
      d.bytes = std::max<std::uint64_t>(nonzero_end(data, pos), pos + 1) - pos;
      d.bytes = std::min<std::uint64_t>(d.bytes, data.size() - pos);
      d.kind = fenced ? walk_kind::fenced_damage : (is_last ? walk_kind::torn_tail : walk_kind::mid_log);
      if (!visit(d)) return res;
      break;
    }
  }
  return res;
}

}  // namespace tandem::journal::detail
