#include "journal/standby.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "journal/detail/checkpoint.h"
#include "journal/detail/journal_walk.h"
#include "journal/detail/preloaded.h"
#include "journal/errc.h"
#include "journal/identity.h"

namespace tandem::journal {

namespace detail {

checkpoint_fingerprint checkpoint_fingerprint::of(std::uint64_t lsn, std::span<const std::byte> image) {
  checkpoint_fingerprint f;
  f.lsn = lsn;
  f.size = image.size();
  if (image.size() >= f.header.size() + f.trailer.size()) {
    std::memcpy(f.header.data(), image.data(), f.header.size());
    std::memcpy(f.trailer.data(), image.data() + image.size() - f.trailer.size(), f.trailer.size());
  }
  return f;
}

result<checkpoint_fingerprint> read_fingerprint(fs::file_system& fs, const std::filesystem::path& path,
                                                std::uint64_t lsn) {
  auto f = fs.open(path, fs::open_mode::read_only);
  if (!f) return f.error();
  auto size = f.value()->size();
  if (!size) return size.error();
  checkpoint_fingerprint fp;
  fp.lsn = lsn;
  fp.size = size.value();
  if (fp.size < fp.header.size() + fp.trailer.size()) return make_error_code(errc::corrupt_file);
  auto read_fully = [&](std::span<std::byte> out, std::uint64_t at) -> std::error_code {
    auto n = f.value()->read_at(out, at);
    if (!n) return n.error();
    return n.value() == out.size() ? std::error_code{} : make_error_code(errc::corrupt_file);
  };
  if (auto ec = read_fully(fp.header, 0)) return ec;
  if (auto ec = read_fully(fp.trailer, fp.size - fp.trailer.size())) return ec;
  return fp;
}

bool still_the_file(fs::file_system& fs, const std::filesystem::path& path, const checkpoint_fingerprint& known) {
  auto now = read_fingerprint(fs, path, known.lsn);
  return now && now.value() == known;
}

}  // namespace detail

struct checkpoint_preloader::segment_starts {
  store_id id;
  detail::known_segment_starts known;
  detail::captured_segments sealed;
  // Where the last reading of sealed segments that went to the end ended: its last
  // segment and the lsn of the last record there. The next reading starts after it, so
  // that each sealed segment is verified once, not again at every segment roll.
  struct capture_end {
    std::uint64_t segment = 0;
    std::uint64_t last_lsn = 0;
  };
  std::optional<capture_end> captured_to;
};

checkpoint_preloader::checkpoint_preloader(std::filesystem::path dir, std::size_t producer_window,
                                           std::size_t max_producers, fs::file_system* fs, std::uint64_t sealed_bytes)
    : dir_(std::move(dir)), producer_window_(producer_window), max_producers_(max_producers),
      fs_(fs ? *fs : fs::posix_file_system()), sealed_bytes_(sealed_bytes), starts_(std::make_unique<segment_starts>()) {}

checkpoint_preloader::~checkpoint_preloader() = default;

std::shared_ptr<preloaded_checkpoint> checkpoint_preloader::take() {
  std::lock_guard lock(mutex_);
  return std::move(held_);
}

namespace {

// The fallback's fingerprint and meta: from the checkpoint held before, or by reading the
// file whole (its checksum) as recovery would.
std::optional<detail::verified_checkpoint> verify_previous(fs::file_system& fs, const std::filesystem::path& jdir,
                                                           const store_id& id, std::uint64_t lsn,
                                                           const std::shared_ptr<preloaded_checkpoint>& before) {
  if (before && before->id == id && before->newest.file.lsn == lsn) return before->newest;
  if (before && before->previous && before->id == id && before->previous->file.lsn == lsn) return before->previous;
  const auto path = detail::checkpoint_path(jdir, lsn);
  std::string reason;
  auto meta = detail::verify_checkpoint_file(fs, path, id, reason);
  if (!meta) return std::nullopt;
  // A file replaced between the two reads fails open's fingerprint check: open then checks
  // it whole itself, as without a preload.
  auto fp = detail::read_fingerprint(fs, path, lsn);
  if (!fp) return std::nullopt;
  return detail::verified_checkpoint{fp.value(), meta.value()};
}

}  // namespace

result<checkpoint_preloader::outcome> checkpoint_preloader::refresh() {
  auto ident = read_identity(fs_, dir_);
  if (!ident) return ident.error();
  const store_id id = ident.value().id;
  const auto jdir = dir_ / format::journal_dir_name;
  auto inv = detail::take_inventory(fs_, jdir);
  if (!inv) return inv.error();
  const auto& newest_first = inv.value().checkpoints;
  learn_segment_starts(id, jdir, inv.value().segments);

  std::shared_ptr<preloaded_checkpoint> before;
  {
    std::lock_guard lock(mutex_);
    before = held_;
  }
  outcome out;
  const bool same_store = before && before->id == id;
  if (newest_first.empty() || (same_store && before->newest.file.lsn == newest_first.front()) ||
      newest_first.front() == skipped_lsn_) {
    if (same_store) {
      out.lsn = before->newest.file.lsn;
      out.live_messages = before->newest.meta.live_messages;
      out.bytes = before->newest.file.size;
      out.sealed_bytes_read_again = capture_sealed_segments(id, jdir, inv.value().segments, *before);
    }
    std::lock_guard lock(mutex_);
    if (held_) hand_over(*held_, out);
    return out;
  }

  const std::uint64_t lsn = newest_first.front();
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<detail::verified_checkpoint> previous;
  if (newest_first.size() > 1) previous = verify_previous(fs_, jdir, id, newest_first[1], before);
  // The old index goes before the new one is built: a slave holds one, not two.
  {
    std::lock_guard lock(mutex_);
    held_.reset();
  }
  before.reset();

  auto loaded = std::make_shared<preloaded_checkpoint>(producer_window_, max_producers_);
  loaded->id = id;
  loaded->previous = std::move(previous);
  std::vector<std::byte> image;
  const auto path = detail::checkpoint_path(jdir, lsn);
  std::string reason;
  if (auto ec = detail::read_checkpoint_image(fs_, path, image)) {
    // Removed since the listing (the master keeps two; a newer one is already there):
    // nothing to report, the next refresh reads the newer one.
    if (ec == std::errc::no_such_file_or_directory) return out;
    reason = "cannot read: " + ec.message();
  } else if (auto meta = detail::decode_checkpoint(image, id, &loaded->idx, reason); meta) {
    loaded->newest = {detail::checkpoint_fingerprint::of(lsn, image), meta.value()};
  }
  if (!reason.empty()) {
    skipped_lsn_ = lsn;
    out.skipped = fmt::format("{}: {}", path.string(), reason);
    return out;
  }
  out.lsn = lsn;
  out.loaded_now = true;
  out.live_messages = loaded->newest.meta.live_messages;
  out.bytes = loaded->newest.file.size;
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  loaded->image = std::move(image);
  out.sealed_bytes_read_again = capture_sealed_segments(id, jdir, inv.value().segments, *loaded);
  std::lock_guard lock(mutex_);
  hand_over(*loaded, out);
  held_ = std::move(loaded);
  return out;
}

// What the next open gets besides the checkpoint. REQUIRES: mutex_ held when `held` is held_.
void checkpoint_preloader::hand_over(preloaded_checkpoint& held, outcome& out) const {
  held.segment_starts = starts_->known;
  held.sealed = starts_->sealed;
  out.sealed_segments = held.sealed.size();
  for (const auto& [seq, c] : held.sealed) out.sealed_bytes += c->bytes();
}

// Reads the sealed segments (every one before the last) from the held checkpoint's replay
// position on that are not held yet, by walking them as recovery will walk them, so that
// what recovery reads is what is held; forgets those before the replay position or gone
// (compacted). A walk that fails keeps nothing new: recovery reads those itself and
// reports what is wrong. Returns the bytes of held segments it read again.
std::uint64_t checkpoint_preloader::capture_sealed_segments(const store_id& id, const std::filesystem::path& jdir,
                                                            const std::vector<std::uint64_t>& segments,
                                                            const preloaded_checkpoint& held) {
  if (stop_capturing_.load()) return 0;
  auto& captured = starts_->sealed;
  const auto& meta = held.newest.meta;
  std::vector<std::uint64_t> sealed;
  for (auto seq : segments)
    if (seq >= meta.replay.segment && seq != segments.back()) sealed.push_back(seq);
  std::erase_if(captured, [&](const auto& kv) { return !std::binary_search(sealed.begin(), sealed.end(), kv.first); });
  if (std::all_of(sealed.begin(), sealed.end(), [&](std::uint64_t seq) { return captured.contains(seq); })) return 0;
  std::uint64_t held_bytes = 0;
  for (const auto& [seq, c] : captured) held_bytes += c->bytes();
  detail::sealed_capture_fs::recording rec;
  rec.stop = &stop_capturing_;
  rec.budget = held_bytes < sealed_bytes_ ? sealed_bytes_ - held_bytes : 0;
  if (rec.budget == 0) return 0;
  detail::sealed_capture_fs view(fs_, jdir, &captured, &rec);
  detail::walk_input in;
  in.fs = &view;
  in.journal_dir = jdir;
  in.segments = sealed;
  in.id = id;
  in.start = meta.replay;
  in.last_lsn = meta.lsn;
  go_on_from_last_capture(sealed, in);
  for (const auto& [seq, start] : starts_->known)
    if (start.fence) in.fences.push_back(*start.fence);
  in.fences.push_back(detail::fence_point{meta.max_epoch, meta.cut, meta.cut});
  // Over budget, the rest is left to the takeover: reading it here would keep nothing.
  bool to_the_end = true;
  auto walked = detail::walk(in, [&](const detail::walk_item&) { return to_the_end = rec.budget > 0; });
  if (!walked) return view.served_bytes();
  for (auto& [seq, c] : rec.segments) captured[seq] = std::move(c);
  if (to_the_end) starts_->captured_to = segment_starts::capture_end{in.segments.back(), walked.value().last_lsn};
  return view.served_bytes();
}

// Starts `in` at the first sealed segment after the last complete capture when every one
// from the replay position to that capture's end is still held: the walk there would only
// verify again, from memory, what it verified when it read them.
void checkpoint_preloader::go_on_from_last_capture(const std::vector<std::uint64_t>& sealed,
                                                   detail::walk_input& in) const {
  const auto& end = starts_->captured_to;
  if (!end || end->segment < in.start.segment) return;
  std::vector<std::uint64_t> after;
  for (auto seq : sealed) {
    if (seq > end->segment) after.push_back(seq);
    else if (!starts_->sealed.contains(seq)) return;
  }
  if (after.empty()) return;
  // lsns run on across adjacent segments; after a gap (a segment deleted) the walk resyncs.
  in.last_lsn = after.front() == end->segment + 1 ? end->last_lsn : 0;
  in.start = {after.front(), 0};
  in.segments = std::move(after);
}

// Reads the first record of each segment not yet settled, except the last one; forgets
// segments that are gone. The last segment is the one the master appends to, and a slave
// must not read a file that another client is writing: on ceph-fuse the page a slave read
// stayed in its cache while the master wrote on, and the same slave's recovery later read
// that stale page, zeros where records were (found by the CephFS kill drill: recovery
// refused "zero record header followed by non-zero bytes" twice in 8 takeovers, and one
// recovery that went through lost 4 receipted messages). A segment before the last is
// never written again by a master that serves (a deposed one's writes there are after a
// newer cut, fenced), so what the slave caches of it stays true.
void checkpoint_preloader::learn_segment_starts(const store_id& id, const std::filesystem::path& jdir,
                                                const std::vector<std::uint64_t>& segments) {
  auto& known = starts_->known;
  if (!(starts_->id == id)) {
    known.clear();
    starts_->sealed.clear();
    starts_->captured_to.reset();
    starts_->id = id;
  }
  std::erase_if(known, [&](const auto& kv) { return !std::binary_search(segments.begin(), segments.end(), kv.first); });
  for (auto seq : segments) {
    if (seq == segments.back()) break;
    if (known.contains(seq)) continue;
    auto start = detail::read_segment_start(fs_, jdir, seq, id);
    if (start && start.value().settled) known[seq] = start.value();
  }
}

}  // namespace tandem::journal
