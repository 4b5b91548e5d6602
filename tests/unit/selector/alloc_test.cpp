// Evaluation allocates nothing: the global operator new of this test binary counts calls.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "test_message.h"

namespace {
std::atomic<std::size_t> allocations{0};
}

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tandem::selector::test {
namespace {

std::size_t allocations_of(const expression& e, const test_message& m, bool expected) {
  // No doctest assertion inside the measured loop: they may allocate.
  bool all_as_expected = true;
  const std::size_t before = allocations.load();
  for (int i = 0; i < 100; ++i) all_as_expected &= e.matches(m) == expected;
  const std::size_t used = allocations.load() - before;
  CHECK(all_as_expected);
  return used;
}

TEST_CASE("matching allocates nothing for comparisons, LIKE, IN, BETWEEN and JMS fields") {
  test_message m{{"color", "red"}, {"price", "120"}, {"region", "eu-west"}, {"priority", "7"},
                 {"reply-to", "/queue/replies"}};
  const char* const selectors[] = {
      "color = 'red' AND price > 100",
      "region LIKE 'eu-%' AND color IN ('red', 'green', 'blue', 'cyan', 'magenta', 'yellow')",
      "price BETWEEN 100 AND 200 OR missing IS NOT NULL",
      "JMSPriority > 5 AND JMSDeliveryMode = 'NON_PERSISTENT' AND JMSXDeliveryCount = 1",
      "JMSDestination = 'queue://orders' AND JMSReplyTo LIKE 'queue://%'",
      "price * 1.0 > 1 OR price / 2 > 10 OR TRUE",
  };
  for (const char* s : selectors) {
    CAPTURE(s);
    const expression e = parsed(s);
    CHECK(allocations_of(e, m, std::string_view(s).starts_with("price *") ? false : true) == 0);
  }
}

TEST_CASE("string concatenation uses the scratch area, not the heap, while it fits") {
  const expression e = parsed("color + '-' + price = 'red-120'");
  CHECK(allocations_of(e, test_message{{"color", "red"}, {"price", "120"}}, true) == 0);
}

}  // namespace
}  // namespace tandem::selector::test
