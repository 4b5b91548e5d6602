// A fresh directory under $TMPDIR for one test, removed with everything in it by the
// destructor. Shared by the C++ tests (tests/support/README.md lists the helpers).
#pragma once

#include <stdlib.h>

#include <cerrno>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace tandem::testing {

class temp_dir {
 public:
  // `prefix` names the test area in the directory name, so a leftover says whose it is.
  explicit temp_dir(std::string_view prefix = "tandem-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace tandem::testing
