// Replays tests/fixtures/selector/ (also the fuzzer's seed corpus): every good/*.sel parses
// with the default options and prints to a text that parses back to the same print; every
// bad/<errc>--<what>.sel is refused with that errc, a column within its text and a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "broker/selector/errc.h"
#include "test_message.h"

namespace tandem::selector::test {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> corpus(const std::string& kind) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(TANDEM_SELECTOR_FIXTURES) / kind)) {
    if (entry.path().extension() == ".sel") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST_CASE("every good selector of the corpus parses and prints back to itself") {
  const auto files = corpus("good");
  CHECK(files.size() >= 20);
  for (const auto& path : files) {
    CAPTURE(path.filename().string());
    const std::string text = read_file(path);
    auto first = parse(text);
    REQUIRE_MESSAGE(first.has_value(), (first ? "" : first.error().message));
    const std::string printed = first.value().to_string();
    auto second = parse(printed);
    REQUIRE(second.has_value());
    CHECK(second.value().to_string() == printed);
  }
}

TEST_CASE("every bad selector of the corpus is refused with the error its name gives") {
  const auto files = corpus("bad");
  CHECK(files.size() >= 20);
  for (const auto& path : files) {
    CAPTURE(path.filename().string());
    const std::string name = path.stem().string();
    const std::string expected = name.substr(0, name.find("--"));
    const std::string text = read_file(path);
    auto r = parse(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(errc_name(static_cast<errc>(r.error().code.value())) == expected);
    CHECK(r.error().offset <= text.size());
    CHECK_FALSE(r.error().message.empty());
  }
}

}  // namespace
}  // namespace tandem::selector::test
