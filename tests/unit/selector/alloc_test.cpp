// Evaluation allocates nothing: the global operator new of this test binary counts calls.
#include <doctest/doctest.h>

#include "broker/selector/bench/allocation_counter.h"
#include "test_message.h"

namespace tandem::selector::test {
namespace {

std::size_t allocations_of(const expression& e, const test_message& m, bool expected) {
  // No doctest assertion inside the measured loop: they may allocate.
  bool all_as_expected = true;
  const std::size_t before = tandem::selector::bench::allocations.load();
  for (int i = 0; i < 100; ++i) all_as_expected &= e.matches(m) == expected;
  const std::size_t used = tandem::selector::bench::allocations.load() - before;
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
