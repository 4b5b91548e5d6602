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

// A segment read through to the file, keeping what is read (within the budget).
class recorded_file : public read_only_file {
 public:
  recorded_file(std::unique_ptr<fs::file> file, std::shared_ptr<captured_segment> capture,
                sealed_capture_fs::recording& rec)
      : file_(std::move(file)), capture_(std::move(capture)), rec_(rec) {}

  fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    if (rec_.stop && rec_.stop->load()) return std::make_error_code(std::errc::operation_canceled);
    auto n = file_->read_at(out, offset);
    if (n && n.value() <= rec_.budget) {
      capture_->add(out.first(n.value()), offset);
      rec_.budget -= n.value();
    } else if (n) {
      rec_.budget = 0;  // over budget: the rest of this segment is read from the file at takeover
    }
    return n;
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
    if (auto it = serve_->find(*seq); it != serve_->end())
      return std::unique_ptr<fs::file>(std::make_unique<served_file>(base(), path, it->second, served_bytes_));
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
