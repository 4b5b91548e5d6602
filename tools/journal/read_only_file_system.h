// A file_system decorator that can only read: `tandem-journal` runs on a store a broker
// may be serving, so it must never create, write, sync, rename or remove anything.
// Rather than trusting every code path below it to open files read-only, the tool hands
// the journal this wrapper: a mutating call fails with EROFS before it reaches the OS,
// and every file is opened O_RDONLY. A bug that tried to write shows up as an error, never
// as a change to a live store.
//
// Thread-safe when the wrapped file system is (posix_file_system is).
#pragma once

#include <atomic>
#include <cstdint>

#include "journal/fs/file_system.h"

namespace tandem::tools {

class read_only_file_system final : public fs::file_system {
 public:
  // `inner` must outlive this object.
  explicit read_only_file_system(fs::file_system& inner) : inner_(inner) {}

  // Any mode but read_only fails with EROFS; files refuse write/sync/allocate/truncate.
  fs::result<std::unique_ptr<fs::file>> open(const std::filesystem::path& path, fs::open_mode mode) override;
  std::error_code rename(const std::filesystem::path&, const std::filesystem::path&) override;
  std::error_code remove(const std::filesystem::path&) override;
  std::error_code create_directories(const std::filesystem::path&) override;
  std::error_code sync_dir(const std::filesystem::path&) override;
  fs::result<std::vector<std::string>> list(const std::filesystem::path& dir) override;
  fs::result<bool> exists(const std::filesystem::path& path) override;

  // Mutating calls refused so far (a test asserts it stays 0).
  std::uint64_t refused() const { return refused_.load(); }

 private:
  std::error_code refuse();
  fs::file_system& inner_;
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace tandem::tools
