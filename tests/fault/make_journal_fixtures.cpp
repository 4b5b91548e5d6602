// make_journal_fixtures OUTDIR [NAME...]: writes the golden-test stores (journal_fixtures.h)
// to OUTDIR/<name>, to look at them with tandem-journal or a hex editor.
#include <cstdio>
#include <exception>
#include <filesystem>

#include "tests/fault/journal_fixtures.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_journal_fixtures OUTDIR [NAME...]\n");
    return 64;
  }
  std::vector<std::string> names;
  for (int i = 2; i < argc; ++i) names.emplace_back(argv[i]);
  if (names.empty()) names = tandem::fault::fixture_names();
  try {
    for (const auto& n : names) {
      auto dir = std::filesystem::path(argv[1]) / n;
      std::filesystem::remove_all(dir);
      tandem::fault::build_fixture(n, dir);
      std::printf("%s\n", dir.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_journal_fixtures: %s\n", e.what());
    return 1;
  }
  return 0;
}
