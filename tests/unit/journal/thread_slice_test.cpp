// journal/thread_slice.h, and the journal writer asking for options::writer_slice (issue 19:
// the RECEIPT tail was run-queue waits of the writer and the io thread).
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "journal/thread_slice.h"
#include "tests/unit/journal/store_fixture.h"

namespace tandem::journal::test {
namespace {

using namespace std::chrono_literals;

// Kernels before 6.12 report no slice for a SCHED_OTHER thread (and ignore a request):
// there the behaviour cannot be seen, only that nothing fails.
bool kernel_has_custom_slices() {
  auto s = thread_slice();
  return s && s->count() > 0;
}

// The tid of this process's thread named `name`, or 0.
int find_thread(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    std::getline(comm, line);
    if (line == name) return std::stoi(task.path().filename().string());
  }
  return 0;
}

// The writer names itself and asks for its slice before it takes its first group: once an
// append has completed, both are done.
int writer_after_first_append(store& s) {
  REQUIRE(!append_wait(s, make_message(1, {"/queue/q"})).ec);
  return find_thread("journal-writer");
}

}  // namespace

TEST_CASE("a thread that asks for a slice gets it, and 0 leaves the kernel's default") {
  std::thread([] {
    const auto before = thread_slice();
    REQUIRE(before);
    CHECK(!request_thread_slice(0us));
    CHECK(thread_slice() == before);
    CHECK(!request_thread_slice(300us));
    if (kernel_has_custom_slices()) CHECK(thread_slice() == std::chrono::nanoseconds(300us));
  }).join();
}

TEST_CASE("the journal writer thread asks for options::writer_slice") {
  fixture f;
  auto o = f.opts();
  o.writer_slice = 250us;
  auto s = f.open(std::move(o));
  const int writer = writer_after_first_append(*s);
  REQUIRE(writer != 0);
  const auto slice = thread_slice(writer);
  REQUIRE(slice);
  if (kernel_has_custom_slices()) CHECK(*slice == std::chrono::nanoseconds(250us));
}

TEST_CASE("without options::writer_slice the journal writer keeps the default slice") {
  const auto default_slice = thread_slice();
  fixture f;
  auto s = f.open(f.opts());
  const int writer = writer_after_first_append(*s);
  REQUIRE(writer != 0);
  CHECK(thread_slice(writer) == default_slice);
}

}  // namespace tandem::journal::test
