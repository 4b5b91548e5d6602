// The file-system seam: the only place in Tandem that calls open, pread, pwrite,
// fdatasync, fallocate, ftruncate, rename, unlink and directory fsync.
//
// Why a seam: a message broker's promise is about what survives a crash, and a crash
// cannot be tested on the real file system. Every durable-state module (journal,
// lockmgr's epoch and holder files, checkpoints) does its I/O through `file_system`, so
// tests can substitute `tests/fault/fault_file_system.h`, which keeps unsynced writes in
// memory, drops or garbles them at a simulated power loss, and fails the Nth operation
// with EIO or ENOSPC (ideas from LevelDB's Env, RocksDB's FaultInjectionTestFS and
// SQLite's test6.c).
//
// Contracts:
// - Every call returns an error instead of throwing. OS errors keep std::generic_category
//   (std::errc::io_error, std::errc::no_space_on_device, ...).
// - `write_at` writes all of `data` or fails; a short write is retried internally and an
//   error after a partial write leaves the bytes on disk unspecified (callers treat the
//   whole write as failed).
// - `sync` is fdatasync. Once it fails, callers must assume any unsynced data is lost
//   and never retry (the kernel may already have dropped the dirty pages).
// - `sync_dir` makes creations, renames and removals in a directory durable.
// - Objects are not thread-safe unless stated; one `file` may be used from one thread at a
//   time. `file_system` methods may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/outcome/std_result.hpp>

namespace tandem::fs {

template <class T>
using result = boost::outcome_v2::std_result<T>;

enum class open_mode {
  read_only,         // must exist
  read_write,        // must exist
  create_exclusive,  // must not exist (O_CREAT|O_EXCL), read-write
  create_or_open,    // O_CREAT, read-write
};

class file {
 public:
  virtual ~file() = default;
  virtual result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) = 0;  // bytes read; 0 at EOF
  virtual std::error_code write_at(std::span<const std::byte> data, std::uint64_t offset) = 0;
  // Gathered write of consecutive buffers starting at `offset` (one pwritev where possible).
  virtual std::error_code write_at(std::span<const std::span<const std::byte>> buffers, std::uint64_t offset) = 0;
  virtual std::error_code sync() = 0;                                    // fdatasync
  virtual std::error_code allocate(std::uint64_t offset, std::uint64_t length) = 0;  // fallocate(0): zeros, reserved blocks
  virtual std::error_code truncate(std::uint64_t size) = 0;
  virtual result<std::uint64_t> size() = 0;
  // Drops this file's pages from the kernel's cache, so that the next read asks the file
  // system. A network file system's client (ceph-fuse) keeps a page read on one host while
  // another host writes on into a preallocated file whose size does not change, and later
  // reads return its stale zeros (docs/failover.md section 4, bug 9): recovery calls this
  // before it reads the last segment. Simulated files have no such cache: a no-op.
  virtual std::error_code drop_cached_pages() { return {}; }
  // The raw descriptor, for lock calls (fcntl F_OFD_*) and fstat; -1 for simulated files.
  virtual int native_handle() const = 0;
  virtual const std::filesystem::path& path() const = 0;
};

class file_system {
 public:
  virtual ~file_system() = default;
  virtual result<std::unique_ptr<file>> open(const std::filesystem::path& path, open_mode mode) = 0;
  virtual std::error_code rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual std::error_code remove(const std::filesystem::path& path) = 0;  // ENOENT is an error
  virtual std::error_code create_directories(const std::filesystem::path& path) = 0;
  virtual std::error_code sync_dir(const std::filesystem::path& dir) = 0;
  virtual result<std::vector<std::string>> list(const std::filesystem::path& dir) = 0;  // names, unsorted
  virtual result<bool> exists(const std::filesystem::path& path) = 0;
};

// Passes every call to another file system; a wrapper overrides only what it changes (a
// test's faults or observations, a slave's captured segments: journal/detail/sealed_capture.h).
class forwarding_file_system : public file_system {
 public:
  explicit forwarding_file_system(file_system& base) : base_(base) {}
  result<std::unique_ptr<file>> open(const std::filesystem::path& path, open_mode mode) override {
    return base_.open(path, mode);
  }
  std::error_code rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    return base_.rename(from, to);
  }
  std::error_code remove(const std::filesystem::path& path) override { return base_.remove(path); }
  std::error_code create_directories(const std::filesystem::path& path) override {
    return base_.create_directories(path);
  }
  std::error_code sync_dir(const std::filesystem::path& dir) override { return base_.sync_dir(dir); }
  result<std::vector<std::string>> list(const std::filesystem::path& dir) override { return base_.list(dir); }
  result<bool> exists(const std::filesystem::path& path) override { return base_.exists(path); }

 protected:
  file_system& base() const { return base_; }

 private:
  file_system& base_;
};

// The process-wide POSIX implementation (thread-safe, stateless).
file_system& posix_file_system();

// Durable whole-file replace: write `path`.tmp, fsync it, rename over `path`, fsync the
// directory. Used for the identity, epoch, holder and checkpoint files.
std::error_code write_file_atomically(file_system& fs, const std::filesystem::path& path,
                                      std::span<const std::byte> contents);
// Several files of ONE directory replaced durably with a single directory sync: each
// `path`.tmp written and fsynced (on threads side by side: `fs` must take calls from
// several threads), then renamed over its `path` in the order given, then the
// directory synced once. A reader sees each file old or new; after a crash before the final
// sync, a later file may be new while an earlier one is old only where the file system
// does not keep renames in order (ext4 and XFS do). REQUIRES: every path in one directory.
std::error_code write_files_atomically(
    file_system& fs, std::initializer_list<std::pair<std::filesystem::path, std::span<const std::byte>>> files);
// Atomic but NOT durable replace: write `path`.tmp and rename it over `path`, no fsync. A
// reader sees the old or the new contents at once; after a power loss the file may hold
// either, or (file systems without ext4's rename heuristics) be empty. Only for a record
// whose loss is safe, e.g. holder.json's clean-release mark (lockmgr/format.h).
std::error_code replace_file_visibly(file_system& fs, const std::filesystem::path& path,
                                     std::span<const std::byte> contents);
// Reads a whole (small) file.
result<std::string> read_file(file_system& fs, const std::filesystem::path& path);

}  // namespace tandem::fs
