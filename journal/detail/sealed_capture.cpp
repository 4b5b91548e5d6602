#include "journal/detail/sealed_capture.h"

#include <algorithm>
#include <cstring>

#include "journal/detail/journal_walk.h"

namespace tandem::journal::detail {

std::uint64_t captured_segment::bytes() const {
  std::uint64_t n = 0;
  for (const auto& [at, data] : ranges) n += data.size();
  return n;
}

bool captured_segment::read(std::span<std::byte> out, std::uint64_t offset) const {
  auto it = ranges.upper_bound(offset);
  if (it == ranges.begin()) return false;
  --it;
  const auto& [at, data] = *it;
  if (offset + out.size() > at + data.size()) return false;
  if (!out.empty()) std::memcpy(out.data(), data.data() + (offset - at), out.size());
  return true;
}

std::size_t captured_segment::read_held(std::span<std::byte> out, std::uint64_t offset) const {
  std::size_t done = 0;
  auto it = ranges.upper_bound(offset);
  if (it == ranges.begin()) return 0;
  --it;
  for (; it != ranges.end() && done < out.size(); ++it) {
    const auto& [at, data] = *it;
    const std::uint64_t want = offset + done;
    if (at > want || at + data.size() <= want) break;  // a gap
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size() - done, at + data.size() - want));
    std::memcpy(out.data() + done, data.data() + (want - at), n);
    done += n;
  }
  return done;
}

void captured_segment::keep_before(std::uint64_t end) {
  for (auto it = ranges.lower_bound(end); it != ranges.end();) it = ranges.erase(it);
  if (ranges.empty()) return;
  auto& [at, data] = *std::prev(ranges.end());
  if (at + data.size() > end) data.resize(static_cast<std::size_t>(end - at));
}

std::uint64_t captured_segment::held_from_start() const {
  // add() joins a range read on where the one before ends, so a run from 0 is one range.
  return ranges.empty() || ranges.begin()->first != 0 ? 0 : ranges.begin()->second.size();
}

void captured_segment::add(std::span<const std::byte> data, std::uint64_t offset) {
  if (data.empty()) return;
  auto it = ranges.upper_bound(offset);
  if (it != ranges.begin()) {
    auto& [at, bytes] = *std::prev(it);
    if (at + bytes.size() == offset) {
      bytes.insert(bytes.end(), data.begin(), data.end());
      return;
    }
    if (at + bytes.size() > offset) return;  // read again: already held
  }
  ranges.emplace(offset, std::vector<std::byte>(data.begin(), data.end()));
}

namespace {

// A file this view answers for: reads only.
class read_only_file : public fs::file {
 public:
  std::error_code write_at(std::span<const std::byte>, std::uint64_t) override { return refused(); }
  std::error_code write_at(std::span<const std::span<const std::byte>>, std::uint64_t) override { return refused(); }
  std::error_code sync() override { return refused(); }
  std::error_code allocate(std::uint64_t, std::uint64_t) override { return refused(); }
  std::error_code truncate(std::uint64_t) override { return refused(); }

 private:
  static std::error_code refused() { return std::make_error_code(std::errc::operation_not_permitted); }
};

// A sealed segment answered from its capture; the file itself is opened only for a read
// the capture does not hold.
class served_file : public read_only_file {
 public:
  served_file(fs::file_system& base, std::filesystem::path path, std::shared_ptr<const captured_segment> capture,
              std::uint64_t& served)
      : base_(base), path_(std::move(path)), capture_(std::move(capture)), served_(served) {}

  fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    if (offset >= capture_->file_size) return std::size_t{0};
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), capture_->file_size - offset));
    if (capture_->read(out.first(n), offset)) {
      served_ += n;
      return n;
    }
    if (!file_) {
      auto f = base_.open(path_, fs::open_mode::read_only);
      if (!f) return f.error();
      file_ = std::move(f.value());
    }
    return file_->read_at(out, offset);
  }
  fs::result<std::uint64_t> size() override { return capture_->file_size; }
  int native_handle() const override { return -1; }
  const std::filesystem::path& path() const override { return path_; }

 private:
  fs::file_system& base_;
  std::filesystem::path path_;
  std::shared_ptr<const captured_segment> capture_;
  std::uint64_t& served_;
  std::unique_ptr<fs::file> file_;
};

// The slave's tail (a live capture) at the takeover: what it holds from memory, the rest
// and the size from the file, whose cached pages were dropped first.
class live_served_file : public read_only_file {
 public:
  live_served_file(std::unique_ptr<fs::file> file, std::shared_ptr<const captured_segment> capture,
                   std::uint64_t& served)
      : file_(std::move(file)), capture_(std::move(capture)), served_(served) {}

  fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    const std::size_t held = capture_->read_held(out, offset);
    served_ += held;
    if (held == out.size()) return held;
    auto n = file_->read_at(out.subspan(held), offset + held);
    if (!n) return n.error();
    return held + n.value();
  }
  fs::result<std::uint64_t> size() override { return file_->size(); }
  int native_handle() const override { return file_->native_handle(); }
  const std::filesystem::path& path() const override { return file_->path(); }

 private:
  std::unique_ptr<fs::file> file_;
  std::shared_ptr<const captured_segment> capture_;
  std::uint64_t& served_;
};

// True when `file` holds the capture's last bytes (up to a page before valid_end) as the
// capture does. Whole records are never rewritten, so a file that still has them is the
// file read; one that does not (replaced, or cut shorter) is read whole instead.
bool still_holds(fs::file& file, const captured_segment& capture) {
  if (capture.ranges.empty()) return false;
  const std::uint64_t last_range = std::prev(capture.ranges.end())->first;
  const std::uint64_t from = std::max(last_range, capture.valid_end > 4096 ? capture.valid_end - 4096 : 0);
  if (from >= capture.valid_end) return false;
  std::vector<std::byte> held(static_cast<std::size_t>(capture.valid_end - from));
  std::vector<std::byte> now(held.size());
  if (held.empty() || capture.read_held(held, from) != held.size()) return false;
  auto n = file.read_at(now, from);
  return n && n.value() == now.size() && now == held;
}

// A segment read through to the file, keeping what is read (within the budget). What the
// capture already holds (a slave's tail, read on) comes from it.
class recorded_file : public read_only_file {
 public:
  recorded_file(std::unique_ptr<fs::file> file, std::shared_ptr<captured_segment> capture,
                sealed_capture_fs::recording& rec)
      : file_(std::move(file)), capture_(std::move(capture)), rec_(rec) {
    if (rec_.uncached) (void)file_->drop_cached_pages();  // a failure leaves the reading as it is without
  }
  ~recorded_file() override {
    if (rec_.uncached) (void)file_->drop_cached_pages();
  }
  recorded_file(const recorded_file&) = delete;
  recorded_file& operator=(const recorded_file&) = delete;

  fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    if (rec_.stop && rec_.stop->load()) return std::make_error_code(std::errc::operation_canceled);
    const std::size_t held = capture_->read_held(out, offset);
    if (held == out.size()) return held;
    auto rest = out.subspan(held);
    auto n = file_->read_at(rest, offset + held);
    if (!n) return n.error();
    if (n.value() <= rec_.budget) {
      capture_->add(rest.first(n.value()), offset + held);
      rec_.budget -= n.value();
    } else {
      rec_.budget = 0;  // over budget: the rest of this segment is read from the file at takeover
    }
    return held + n.value();
  }
  fs::result<std::uint64_t> size() override { return capture_->file_size; }
  int native_handle() const override { return file_->native_handle(); }
  const std::filesystem::path& path() const override { return file_->path(); }

 private:
  std::unique_ptr<fs::file> file_;
  std::shared_ptr<captured_segment> capture_;
  sealed_capture_fs::recording& rec_;
};

}  // namespace

sealed_capture_fs::sealed_capture_fs(fs::file_system& base, std::filesystem::path journal_dir,
                                     const captured_segments* serve, recording* record)
    : forwarding_file_system(base), journal_dir_(std::move(journal_dir)), serve_(serve), record_(record) {}

std::optional<std::uint64_t> sealed_capture_fs::segment_of(const std::filesystem::path& path) const {
  if (path.parent_path() != journal_dir_) return std::nullopt;
  return parse_segment_name(path.filename().string());
}

fs::result<std::unique_ptr<fs::file>> sealed_capture_fs::open(const std::filesystem::path& path, fs::open_mode mode) {
  const auto seq = mode == fs::open_mode::read_only ? segment_of(path) : std::nullopt;
  if (!seq) return base().open(path, mode);
  if (serve_) {
    if (auto it = serve_->find(*seq); it != serve_->end()) {
      if (!it->second->live)
        return std::unique_ptr<fs::file>(std::make_unique<served_file>(base(), path, it->second, served_bytes_));
      auto f = base().open(path, mode);
      if (!f) return f;
      (void)f.value()->drop_cached_pages();  // what is read next comes from the file system
      if (!still_holds(*f.value(), *it->second)) return f;
      return std::unique_ptr<fs::file>(std::make_unique<live_served_file>(std::move(f.value()), it->second,
                                                                          served_bytes_));
    }
  }
  auto f = base().open(path, mode);
  if (!f || !record_) return f;
  // A capture is only ever served with the size it was read at.
  auto size = f.value()->size();
  if (!size) return f;
  auto& capture = record_->segments[*seq];
  if (!capture) capture = std::make_shared<captured_segment>();
  capture->file_size = size.value();
  return std::unique_ptr<fs::file>(std::make_unique<recorded_file>(std::move(f.value()), capture, *record_));
}

}  // namespace tandem::journal::detail
