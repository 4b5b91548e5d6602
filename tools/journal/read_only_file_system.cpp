#include "tools/journal/read_only_file_system.h"

namespace tandem::tools {
namespace {

std::error_code erofs() { return std::make_error_code(std::errc::read_only_file_system); }

class read_only_file final : public fs::file {
 public:
  explicit read_only_file(std::unique_ptr<fs::file> inner) : inner_(std::move(inner)) {}
  fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    return inner_->read_at(out, offset);
  }
  std::error_code write_at(std::span<const std::byte>, std::uint64_t) override { return erofs(); }
  std::error_code write_at(std::span<const std::span<const std::byte>>, std::uint64_t) override {
    return erofs();
  }
  std::error_code sync() override { return erofs(); }
  std::error_code allocate(std::uint64_t, std::uint64_t) override { return erofs(); }
  std::error_code truncate(std::uint64_t) override { return erofs(); }
  fs::result<std::uint64_t> size() override { return inner_->size(); }
  int native_handle() const override { return inner_->native_handle(); }
  const std::filesystem::path& path() const override { return inner_->path(); }

 private:
  std::unique_ptr<fs::file> inner_;
};

}  // namespace

std::error_code read_only_file_system::refuse() {
  ++refused_;
  return erofs();
}

fs::result<std::unique_ptr<fs::file>> read_only_file_system::open(const std::filesystem::path& path,
                                                                  fs::open_mode mode) {
  if (mode != fs::open_mode::read_only) return refuse();
  auto f = inner_.open(path, mode);
  if (!f) return f.error();
  return std::unique_ptr<fs::file>(std::make_unique<read_only_file>(std::move(f.value())));
}

std::error_code read_only_file_system::rename(const std::filesystem::path&, const std::filesystem::path&) {
  return refuse();
}
std::error_code read_only_file_system::remove(const std::filesystem::path&) { return refuse(); }
std::error_code read_only_file_system::create_directories(const std::filesystem::path&) { return refuse(); }
std::error_code read_only_file_system::sync_dir(const std::filesystem::path&) { return refuse(); }

fs::result<std::vector<std::string>> read_only_file_system::list(const std::filesystem::path& dir) {
  return inner_.list(dir);
}
fs::result<bool> read_only_file_system::exists(const std::filesystem::path& path) {
  return inner_.exists(path);
}

}  // namespace tandem::tools
