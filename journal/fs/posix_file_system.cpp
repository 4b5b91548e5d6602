// POSIX implementation of the file-system seam (journal/fs/file_system.h).
//
// Pitfalls handled here, so no caller has to:
// - EINTR: read/write/fsync-family calls are restarted; close() is NOT retried after EINTR
//   (on Linux the descriptor is already released and might have been reused by another
//   thread; retrying could close someone else's file).
// - Short writes: pwrite/pwritev may write less than asked (signals, disk full mid-way);
//   the rest is written in a loop, and an error after a partial write is an error.
// - fdatasync failure: reported, never retried here; the caller decides (the journal then
//   fails for good, see store.h).
// - Directory sync: creations, renames and unlinks are durable only after fsync of the
//   directory, so write_file_atomically syncs the parent after the rename.
// - O_CLOEXEC everywhere: a broker that forks (tests spawn helpers) must not leak the
//   segment descriptors, and must never leak the lock file's (lockmgr opens it here too).
#include "journal/fs/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <future>
#include <vector>

namespace tandem::fs {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

class posix_file final : public file {
 public:
  posix_file(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  ~posix_file() override { ::close(fd_); }
  posix_file(const posix_file&) = delete;
  posix_file& operator=(const posix_file&) = delete;

  result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    std::size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (n == 0) break;  // EOF
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  std::error_code drop_cached_pages() override {
    // posix_fadvise returns the error number itself and leaves errno alone.
    if (int rc = ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED)) return {rc, std::generic_category()};
    return {};
  }

  std::error_code write_at(std::span<const std::byte> data, std::uint64_t offset) override {
    std::size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      done += static_cast<std::size_t>(n);
    }
    return {};
  }

  std::error_code write_at(std::span<const std::span<const std::byte>> buffers,
                           std::uint64_t offset) override {
    // Build iovecs in chunks of IOV_MAX; after a short write, skip what was written and
    // go on with the remainder of the current buffer.
    std::vector<iovec> iov;
    iov.reserve(std::min<std::size_t>(buffers.size(), IOV_MAX));
    std::size_t next = 0;          // next buffer to add
    std::size_t first_skip = 0;    // bytes of buffers[next] already written
    while (next < buffers.size()) {
      iov.clear();
      std::size_t total = 0;
      for (std::size_t i = next; i < buffers.size() && iov.size() < IOV_MAX; ++i) {
        const auto& b = buffers[i];
        std::size_t skip = (i == next) ? first_skip : 0;
        iov.push_back({const_cast<std::byte*>(b.data()) + skip, b.size() - skip});
        total += b.size() - skip;
      }
      if (total == 0) break;
      ssize_t n = ::pwritev(fd_, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      offset += static_cast<std::uint64_t>(n);
      auto left = static_cast<std::size_t>(n);
      // Advance (next, first_skip) by n bytes.
      while (next < buffers.size()) {
        std::size_t avail = buffers[next].size() - first_skip;
        if (left < avail) {
          first_skip += left;
          break;
        }
        left -= avail;
        ++next;
        first_skip = 0;
        if (left == 0) break;
      }
    }
    return {};
  }

  std::error_code sync() override {
    while (::fdatasync(fd_) != 0) {
      if (errno != EINTR) return last_error();
    }
    return {};
  }

  std::error_code allocate(std::uint64_t offset, std::uint64_t length) override {
    int rc;
    do {
      rc = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(length));
    } while (rc == EINTR);
    return rc == 0 ? std::error_code{} : std::error_code{rc, std::generic_category()};
  }

  std::error_code truncate(std::uint64_t size) override {
    while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return last_error();
    }
    return {};
  }

  result<std::uint64_t> size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return last_error();
    return static_cast<std::uint64_t>(st.st_size);
  }

  int native_handle() const override { return fd_; }
  const std::filesystem::path& path() const override { return path_; }

 private:
  int fd_;
  std::filesystem::path path_;
};

class posix_fs final : public file_system {
 public:
  result<std::unique_ptr<file>> open(const std::filesystem::path& path, open_mode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case open_mode::read_only: flags |= O_RDONLY; break;
      case open_mode::read_write: flags |= O_RDWR; break;
      case open_mode::create_exclusive: flags |= O_RDWR | O_CREAT | O_EXCL; break;
      case open_mode::create_or_open: flags |= O_RDWR | O_CREAT; break;
    }
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return last_error();
    return std::unique_ptr<file>(std::make_unique<posix_file>(fd, path));
  }

  std::error_code rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return last_error();
    return {};
  }

  std::error_code remove(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0) return last_error();
    return {};
  }

  std::error_code create_directories(const std::filesystem::path& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    return ec;
  }

  std::error_code sync_dir(const std::filesystem::path& dir) override {
    int fd;
    do {
      fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return last_error();
    std::error_code ec;
    while (::fsync(fd) != 0) {
      if (errno != EINTR) {
        ec = last_error();
        break;
      }
    }
    ::close(fd);
    return ec;
  }

  result<std::vector<std::string>> list(const std::filesystem::path& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return last_error();
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    std::error_code ec = errno != 0 ? last_error() : std::error_code{};
    ::closedir(d);
    if (ec) return ec;
    return names;
  }

  result<bool> exists(const std::filesystem::path& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return last_error();
  }
};

}  // namespace

file_system& posix_file_system() {
  static posix_fs instance;
  return instance;
}

namespace {

std::filesystem::path tmp_of(const std::filesystem::path& path) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  return tmp;
}

// Writes `path`.tmp (fsynced when durable); the caller renames it.
std::error_code write_tmp(file_system& fs, const std::filesystem::path& path, std::span<const std::byte> contents,
                          bool durable) {
  const auto tmp = tmp_of(path);
  // A stale .tmp from a crash is replaced, never appended to (Mosquitto's persist_write
  // lesson: it might even be a hard link to the live file, so unlink it first). Created
  // exclusively first and unlinked only when that fails: on a network file system a look
  // before the create is one more metadata round trip (CephFS: up to 17 ms of a takeover).
  auto f = fs.open(tmp, open_mode::create_exclusive);
  if (!f && f.error() == std::errc::file_exists) {
    if (auto ec = fs.remove(tmp)) return ec;
    f = fs.open(tmp, open_mode::create_exclusive);
  }
  if (!f) return f.error();
  if (auto ec = f.value()->write_at(contents, 0)) return ec;
  if (durable) {
    if (auto ec = f.value()->sync()) return ec;
  }
  return {};
}

std::error_code replace_file(file_system& fs, const std::filesystem::path& path, std::span<const std::byte> contents,
                             bool durable) {
  if (auto ec = write_tmp(fs, path, contents, durable)) return ec;
  if (auto ec = fs.rename(tmp_of(path), path)) return ec;
  return durable ? fs.sync_dir(path.parent_path()) : std::error_code{};
}

}  // namespace

std::error_code write_files_atomically(
    file_system& fs, std::initializer_list<std::pair<std::filesystem::path, std::span<const std::byte>>> files) {
  if (files.size() == 0) return {};
  // The temporaries are written side by side: on a network file system each create and
  // fsync waits for the metadata server, and two waits overlap into about one (lockmgr's
  // epoch and holder.json are on a takeover's critical path). Renames stay in order.
  std::vector<std::future<std::error_code>> others;
  for (auto it = std::next(files.begin()); it != files.end(); ++it)
    others.push_back(std::async(std::launch::async, [&fs, it] { return write_tmp(fs, it->first, it->second, true); }));
  std::error_code first = write_tmp(fs, files.begin()->first, files.begin()->second, /*durable=*/true);
  for (auto& f : others) {
    if (auto ec = f.get(); ec && !first) first = ec;
  }
  if (first) return first;
  for (const auto& [path, contents] : files) {
    if (auto ec = fs.rename(tmp_of(path), path)) return ec;
  }
  return fs.sync_dir(files.begin()->first.parent_path());
}

std::error_code write_file_atomically(file_system& fs, const std::filesystem::path& path,
                                      std::span<const std::byte> contents) {
  return replace_file(fs, path, contents, /*durable=*/true);
}

std::error_code replace_file_visibly(file_system& fs, const std::filesystem::path& path,
                                     std::span<const std::byte> contents) {
  return replace_file(fs, path, contents, /*durable=*/false);
}

result<std::string> read_file(file_system& fs, const std::filesystem::path& path) {
  auto f = fs.open(path, open_mode::read_only);
  if (!f) return f.error();
  auto size = f.value()->size();
  if (!size) return size.error();
  std::string out(size.value(), '\0');
  auto n = f.value()->read_at(std::as_writable_bytes(std::span(out)), 0);
  if (!n) return n.error();
  out.resize(n.value());
  return out;
}

}  // namespace tandem::fs
