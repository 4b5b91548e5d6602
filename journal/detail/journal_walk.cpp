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

// True when every byte of `s` is zero. ORs whole blocks (which the compiler vectorises)
// and looks at the result once per block: the end-of-data check runs on every segment.
bool all_zero(std::span<const std::byte> s) {
  constexpr std::size_t block = 4096;
  const std::byte* p = s.data();
  std::size_t n = s.size();
  for (; n >= block; p += block, n -= block) {
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < block; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      acc |= w;
    }
    if (acc != 0) return false;
  }
  for (; n > 0; ++p, --n)
    if (*p != std::byte{0}) return false;
  return true;
}

// One segment file, read forward on demand through a window buffer: bytes
// [base, loaded_end) of the file are in memory. A walk then reads the records and the
// end-of-data window, not the unused preallocated rest of the segment (format.h section
// 4), and reuses a few MiB of buffer instead of faulting in a fresh page for every page
// of a 32 MiB segment (that was a fifth of a takeover's recovery time). The buffer grows
// only for a record larger than it, or when damage makes the walk look at the rest of
// the segment at once.
class segment_view {
 public:
  std::error_code open(fs::file_system& fs, const std::filesystem::path& path) {
    auto f = fs.open(path, fs::open_mode::read_only);
    if (!f) return f.error();
    auto size = f.value()->size();
    if (!size) return size.error();
    file_ = std::move(f.value());
    size_ = size.value();
    base_ = loaded_end_ = 0;
    step_ = first_step;
    return {};
  }
  // Makes bytes [from, min(to, size())) available through span(); bytes before `from`
  // may be dropped (a walk only moves forward).
  std::error_code ensure(std::uint64_t from, std::uint64_t to) {
    to = std::min(to, size_);
    if (from < base_) base_ = loaded_end_ = from;  // never happens in a forward walk; stay correct
    // A jump forward (a replay that starts at a checkpoint's position, past the header)
    // reads from there, not every byte before it.
    if (from > loaded_end_) base_ = loaded_end_ = from;
    if (to <= loaded_end_) return {};
    if (to - base_ > capacity_) {
      // Drop what lies before `from`, then grow if one range needs more than the buffer.
      const std::uint64_t keep = loaded_end_ > from ? loaded_end_ - from : 0;
      if (keep != 0) std::memmove(buf_.get(), buf_.get() + (from - base_), keep);
      base_ = from;
      loaded_end_ = from + keep;
      if (to - base_ > capacity_) {
        const std::uint64_t cap = std::max<std::uint64_t>(to - base_, std::max(capacity_ * 2, initial_capacity));
        std::unique_ptr<std::byte[]> bigger(new std::byte[cap]);  // default-initialised
        if (keep != 0) std::memcpy(bigger.get(), buf_.get(), keep);
        buf_ = std::move(bigger);
        capacity_ = cap;
      }
    }
    const std::uint64_t target = std::min({std::max(to, loaded_end_ + step_), base_ + capacity_, size_});
    step_ = std::min<std::uint64_t>(step_ * 2, max_step);
    while (loaded_end_ < target) {
      auto n = file_->read_at(std::span<std::byte>(buf_.get() + (loaded_end_ - base_), target - loaded_end_),
                              loaded_end_);
      if (!n) return n.error();
      if (n.value() == 0) {  // shrank under us (a reader beside a live writer): stop there
        size_ = loaded_end_;
        break;
      }
      loaded_end_ += n.value();
    }
    return {};
  }
  // Bytes [from, min(to, loaded end)) of the file; `from` must be >= the last ensure's.
  std::span<const std::byte> span(std::uint64_t from, std::uint64_t to) const {
    to = std::min(to, loaded_end_);
    if (from >= to) return {};
    return {buf_.get() + (from - base_), static_cast<std::size_t>(to - from)};
  }
  std::uint64_t size() const { return size_; }
  void close() { file_.reset(); }
  // Before the first read: what this host's kernel kept of the file is not used
  // (fs::file::drop_cached_pages says why).
  void read_past_cache() { (void)file_->drop_cached_pages(); }

 private:
  static constexpr std::uint64_t initial_capacity = 4 << 20;
  static constexpr std::uint64_t first_step = 128 << 10;
  static constexpr std::uint64_t max_step = 1 << 20;
  std::unique_ptr<fs::file> file_;
  std::unique_ptr<std::byte[]> buf_;
  std::uint64_t capacity_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t base_ = 0;
  std::uint64_t loaded_end_ = 0;
  std::uint64_t step_ = first_step;
};

enum class step_kind { record, end_of_data, damage };
struct step {
  step_kind kind;
  record_header rec;
  std::uint64_t bytes = 0;
  std::string_view reason;
};

// The record at pos, loading its bytes. `allowed_flags`: flags a record of this segment's
// version may carry (none in version 1).
step next_record(segment_view& v, std::uint64_t pos, std::uint8_t allowed_flags, std::error_code& ec) {
  if ((ec = v.ensure(pos, pos + hdr))) return {};
  auto head = v.span(pos, pos + hdr);
  if (head.size() < hdr) {
    if (all_zero(head)) return {step_kind::end_of_data, {}, 0, {}};
    return {step_kind::damage, {}, 0, "truncated record header at end of file"};
  }
  if (is_zero_header(head.first<hdr>())) return {step_kind::end_of_data, {}, 0, {}};
  record_header r = parse_record_header(head.first<hdr>());
  if (pos + hdr + r.length > v.size()) return {step_kind::damage, r, 0, "record runs past end of file"};
  if ((ec = v.ensure(pos, pos + format::record_bytes(r.length)))) return {};
  auto rec = v.span(pos, pos + format::record_bytes(r.length));  // padding may be cut by EOF
  if (rec.size() < hdr + r.length) return {step_kind::damage, r, 0, "record runs past end of file"};
  auto reason = verify_record(rec.first<hdr>(), rec.subspan(hdr, r.length));
  if (!reason.empty()) return {step_kind::damage, r, 0, reason};
  if ((r.flags & ~allowed_flags) != 0) return {step_kind::damage, r, 0, "record flags set in a version 1 segment"};
  // Padding is outside the checksum, so check it is still zero: every byte of a segment
  // up to the end of data is then verified.
  if (!all_zero(rec.subspan(hdr + r.length))) return {step_kind::damage, r, 0, "non-zero record padding"};
  return {step_kind::record, r, rec.size(), {}};
}

// Valid records after damage: the first (where salvage resumes) and the first with
// group_start (which makes the damage mid-log, format.h section 7). Probes every 8-aligned
// offset >= from for a record that verifies with lsn > min_lsn and allowed flags; after a
// valid record it jumps over it (the records after damage are usually back to back).
struct resync {
  std::optional<std::uint64_t> next;
  std::optional<std::uint64_t> next_group_start;
};
resync find_valid_after(std::span<const std::byte> buf, std::uint64_t from, std::uint64_t min_lsn,
                        std::uint8_t allowed_flags, bool want_group_start) {
  resync out;
  for (std::uint64_t q = format::align_up(from); q + hdr <= buf.size(); q += format::record_alignment) {
    const std::byte* p = buf.data() + q;
    // Cheap filters first; the checksum is computed only for plausible headers.
    auto type = static_cast<std::uint8_t>(p[12]);
    if (type == 0 || type > format::max_record_type) continue;
    if ((static_cast<std::uint8_t>(p[13]) & ~allowed_flags) != 0 || p[14] != std::byte{0} || p[15] != std::byte{0})
      continue;
    std::uint32_t len = get_u32_at(p + 8);
    if (q + hdr + len > buf.size()) continue;
    std::uint64_t lsn = get_u64_at(p + 16);
    if (lsn <= min_lsn) continue;
    std::span<const std::byte, hdr> h(p, hdr);
    if (!verify_record(h, buf.subspan(q + hdr, len)).empty()) continue;
    if (!out.next) out.next = q;
    if ((static_cast<std::uint8_t>(p[13]) & format::record_flag_group_start) != 0) {
      out.next_group_start = q;
      return out;
    }
    if (!want_group_start) return out;
    q += format::record_bytes(len) - format::record_alignment;
  }
  return out;
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

// The epoch_start at `at` (lsn `lsn`) whose history is missing: its cut lies beyond the
// end of the data read so far, and its last_lsn beyond the last lsn read, while its own
// lsn follows on from that last_lsn (so nothing else is missing). nullptr: no such fence.
const fence_point* missing_history(const std::vector<fence_point>& fences, position at, std::uint64_t lsn,
                                   const walk_result& so_far) {
  for (const auto& f : fences)
    if (f.at == at && f.lsn == lsn && f.last_lsn + 1 == lsn && f.last_lsn > so_far.last_lsn &&
        so_far.end < f.cut)
      return &f;
  return nullptr;
}

}  // namespace

fs::result<bool> record_ends_at(fs::file_system& fs, const std::filesystem::path& path, std::uint64_t end,
                                std::uint64_t lsn) {
  auto f = fs.open(path, fs::open_mode::read_only);
  if (!f) return f.error();
  auto size = f.value()->size();
  if (!size) return size.error();
  if (size.value() < end || end < format::segment_header_bytes + hdr || end % format::record_alignment != 0)
    return false;
  // Most records are small: a 64 KiB window finds them; a larger one grows the window.
  std::uint64_t window = 64 << 10;
  std::vector<std::byte> buf;
  for (;;) {
    const std::uint64_t from = end - std::min(window, end - format::segment_header_bytes);
    buf.resize(end - from);
    auto n = f.value()->read_at(buf, from);
    if (!n) return n.error();
    if (n.value() != buf.size()) return false;
    for (std::uint64_t q = end - hdr; q >= from; q -= format::record_alignment) {
      const std::byte* p = buf.data() + (q - from);
      auto type = static_cast<std::uint8_t>(p[12]);
      if (type == 0 || type > format::max_record_type) continue;
      if ((static_cast<std::uint8_t>(p[13]) & ~format::known_record_flags) != 0 || p[14] != std::byte{0} ||
          p[15] != std::byte{0})
        continue;
      const std::uint32_t len = get_u32_at(p + 8);
      if (q + format::record_bytes(len) != end || get_u64_at(p + 16) != lsn) continue;
      std::span<const std::byte, hdr> h(p, hdr);
      if (verify_record(h, std::span<const std::byte>(p + hdr, len)).empty()) return true;
    }
    if (from == format::segment_header_bytes) return false;
    window *= 8;
  }
}

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

fs::result<inventory> take_inventory(fs::file_system& fs, const std::filesystem::path& journal_dir) {
  auto names = fs.list(journal_dir);
  if (!names) return names.error();
  inventory inv;
  for (const auto& n : names.value()) {
    if (auto seq = parse_segment_name(n)) inv.segments.push_back(*seq);
    else if (auto lsn = parse_checkpoint_name(n)) inv.checkpoints.push_back(*lsn);
    else if (n.ends_with(format::temp_suffix)) inv.temporaries.push_back(n);
  }
  std::sort(inv.segments.begin(), inv.segments.end());
  std::sort(inv.checkpoints.begin(), inv.checkpoints.end(), std::greater<>());
  return inv;
}

fs::result<segment_start> read_segment_start(fs::file_system& fs, const std::filesystem::path& journal_dir,
                                             std::uint64_t seq, const store_id& id) {
  segment_start out;
  std::vector<std::byte> buf(4096);
  auto f = fs.open(segment_path(journal_dir, seq), fs::open_mode::read_only);
  if (!f) return f.error();
  auto n = f.value()->read_at(buf, 0);
  if (!n) return n.error();
  std::span<const std::byte> data(buf.data(), n.value());
  if (data.size() < format::segment_header_bytes) return out;
  auto sh = decode_segment_header(data.first<format::segment_header_bytes>());
  // A valid header of a format this build does not read refuses the store, wherever the
  // segment is: recovery may start behind it (a checkpoint) but GC and compaction would
  // still read it.
  if (!sh && sh.error() == errc::unsupported_version) return sh.error();
  if (!sh || !(sh.value().store == id) || data.size() < format::segment_header_bytes + hdr) return out;
  std::uint64_t pos = format::segment_header_bytes;
  record_header r = parse_record_header(data.subspan(pos).first<hdr>());
  std::vector<std::byte> big;
  std::span<const std::byte> rec = data.subspan(pos);
  if (hdr + r.length > rec.size()) {
    // Another record is never a fence point: not read further only to settle it.
    if (r.type != record_type::epoch_start) return out;
    // A long broker name: read the whole record.
    if (r.length > (1u << 20)) return out;
    big.resize(hdr + r.length);
    auto m = f.value()->read_at(big, pos);
    if (!m || m.value() != big.size()) return out;
    rec = big;
  }
  auto payload = rec.subspan(hdr, r.length);
  if (!verify_record(rec.first<hdr>(), payload).empty()) return out;
  out.settled = true;
  if (r.type != record_type::epoch_start) return out;
  auto decoded = decode_payload(record_type::epoch_start, payload);
  if (!decoded) return out;
  const auto& es = std::get<epoch_start>(decoded.value());
  out.fence = fence_point{es.epoch, {es.cut_segment, es.cut_offset}, {seq, pos}, es.last_lsn, r.lsn};
  return out;
}

fs::result<std::vector<fence_point>> find_fence_points(fs::file_system& fs,
                                                       const std::filesystem::path& journal_dir,
                                                       const std::vector<std::uint64_t>& segments,
                                                       const store_id& id, const known_segment_starts* known) {
  std::vector<fence_point> out;
  for (auto seq : segments) {
    if (known) {
      if (auto it = known->find(seq); it != known->end() && it->second.settled) {
        if (it->second.fence) out.push_back(*it->second.fence);
        continue;
      }
    }
    auto start = read_segment_start(fs, journal_dir, seq, id);
    if (!start) return start.error();
    if (start.value().fence) out.push_back(*start.value().fence);
  }
  return out;
}

fs::result<walk_result> walk(const walk_input& in, const std::function<bool(const walk_item&)>& visit) {
  walk_result res;
  res.last_lsn = in.last_lsn;
  res.end = in.start;
  res.synced_before = in.start;
  segment_view view;
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
    if (auto ec = view.open(*in.fs, path)) return ec;
    // The last segment is the one a master on another host may have written into pages
    // this host read before (an operator's tool); earlier segments are never written again.
    if (is_last && in.last_segment_past_cache) view.read_past_cache();
    if (auto ec = view.ensure(0, format::segment_header_bytes)) return ec;
    const auto head = view.span(0, format::segment_header_bytes);

    walk_item seg_item{walk_kind::segment, path, seq};
    seg_item.file_size = view.size();
    std::optional<std::uint64_t> seg_epoch;
    std::uint8_t allowed_flags = 0;  // version 1: no flags
    std::string header_problem;
    if (head.size() < format::segment_header_bytes || all_zero(head)) {
      header_problem = "segment header missing (file created but never initialised)";
    } else {
      auto sh = decode_segment_header(head.first<format::segment_header_bytes>());
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
        if (sh.value().version >= 2) allowed_flags = format::known_record_flags;
      }
    }
    if (!header_problem.empty()) {
      // Rare (a writer died creating the segment): read all of it to classify.
      if (auto ec = view.ensure(0, view.size())) return ec;
      const auto all = view.span(0, view.size());
      walk_item d{};
      d.file = path;
      d.segment = seq;
      d.offset = 0;
      d.file_size = view.size();
      d.bytes = all.size();
      d.expected_lsn = res.last_lsn ? res.last_lsn + 1 : 0;
      d.reason = header_problem;
      bool valid_after = find_valid_after(all, format::segment_header_bytes, res.last_lsn,
                                          format::known_record_flags, false)
                             .next.has_value();
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
    while (pos < view.size()) {
      std::error_code io;
      step s = next_record(view, pos, allowed_flags, io);
      if (io) return io;
      std::string reason;
      if (s.kind == step_kind::record) {
        position at{seq, pos};
        walk_item item{};
        item.file = path;
        item.segment = seq;
        item.offset = pos;
        item.bytes = s.bytes;
        item.rec = s.rec;
        item.file_size = view.size();
        item.payload = view.span(pos + hdr, pos + hdr + s.rec.length);
        if (fenced_record(in.fences, at, s.rec.epoch)) {
          item.kind = walk_kind::fenced_record;
          if (!visit(item)) return res;
          pos += s.bytes;
          continue;
        }
        bool in_sequence = resync ? s.rec.lsn > res.last_lsn : s.rec.lsn == res.last_lsn + 1;
        if (!in_sequence && s.rec.type == record_type::epoch_start) {
          if (const auto* f = missing_history(in.fences, at, s.rec.lsn, res)) {
            walk_item lost{};
            lost.kind = walk_kind::lost_unsynced;
            lost.segment = f->cut.segment;
            lost.file = segment_path(in.journal_dir, f->cut.segment);
            lost.offset = res.end.segment == f->cut.segment ? res.end.offset : format::segment_header_bytes;
            lost.bytes = f->cut.offset - std::min(f->cut.offset, lost.offset);
            lost.expected_lsn = res.last_lsn + 1;
            lost.rec = s.rec;
            lost.reason = fmt::format(
                "epoch {} recovered lsns up to {} (segment {:016x} offset {}) but the log ends at lsn {}: "
                "records replayed before they were durable, then lost in a power failure",
                f->epoch, f->last_lsn, f->cut.segment, f->cut.offset, res.last_lsn);
            if (!visit(lost)) return res;
            in_sequence = true;
          }
        }
        if (!in_sequence) {
          reason = fmt::format("lsn {} out of sequence (expected {})", s.rec.lsn, res.last_lsn + 1);
          s.bytes = format::record_bytes(s.rec.length);
        } else {
          item.kind = walk_kind::record;
          resync = false;
          ++res.records;
          res.last_lsn = s.rec.lsn;
          res.end = {seq, pos + s.bytes};
          if ((s.rec.flags & format::record_flag_group_start) != 0) res.synced_before = at;
          else if (allowed_flags == 0 && res.synced_before.segment != seq)
            res.synced_before = {seq, format::segment_header_bytes};  // version 1: synced before its first record
          if (!visit(item)) return res;
          pos += s.bytes;
          continue;
        }
      } else if (s.kind == step_kind::end_of_data) {
        // The end of data needs only the window after it to be zero (format.h section 4).
        if (auto ec = view.ensure(pos, pos + format::end_of_data_check_bytes)) return ec;
        if (all_zero(view.span(pos, pos + format::end_of_data_check_bytes))) break;  // clean end
        reason = "zero record header followed by non-zero bytes";
      } else {
        reason = std::string(s.reason);
      }
      // Damage at pos (rare: a power failure, or real damage): read the whole segment and
      // find where, if anywhere, valid records resume, and whether one of them was written
      // after an fdatasync (group_start), which makes the damage mid-log.
      if (auto ec = view.ensure(pos, view.size())) return ec;
      const auto rest = view.span(pos, view.size());  // rest[0] is the byte at pos
      walk_item d{};
      d.file = path;
      d.segment = seq;
      d.offset = pos;
      d.file_size = view.size();
      d.expected_lsn = res.last_lsn ? res.last_lsn + 1 : 0;
      d.reason = std::move(reason);
      const bool flagged = allowed_flags != 0;  // version 2: group_start decides
      auto found = find_valid_after(rest, format::record_alignment, res.last_lsn, allowed_flags, is_last && flagged);
      if (found.next) *found.next += pos;
      if (found.next_group_start) *found.next_group_start += pos;
      const bool fenced = fenced_garbage(in.fences, {seq, pos}, seg_epoch);
      const bool synced_after = !is_last || (flagged ? found.next_group_start.has_value() : found.next.has_value());
      if (found.next && (fenced || synced_after)) {
        d.bytes = *found.next - pos;
        d.kind = fenced ? walk_kind::fenced_damage : walk_kind::mid_log;
        if (!visit(d)) return res;
        pos = *found.next;
        resync = true;
        continue;
      }
      // Nothing valid after it, or only records of the same unsynced write (no
      // group_start): everything from here to the last non-zero byte goes.
      d.bytes = std::min<std::uint64_t>(std::max<std::uint64_t>(nonzero_end(rest, 0), 1), rest.size());
      d.kind = fenced ? walk_kind::fenced_damage : (synced_after ? walk_kind::mid_log : walk_kind::torn_tail);
      if (!visit(d)) return res;
      break;
    }
    view.close();
  }
  return res;
}

}  // namespace tandem::journal::detail
