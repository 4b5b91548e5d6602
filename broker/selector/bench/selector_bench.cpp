// tandem-selector-bench: nanoseconds and heap allocations per selector evaluation, and the
// parse cost, for a few typical selectors over a typical STOMP message (12 headers looked up
// linearly, as the engine's frame keeps them).
//
//   tandem-selector-bench [iterations]      default 2000000 per selector
//
// Speed targets live here, never in unit tests. Times are this thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID), so other load on a shared machine inflates them less than wall
// time would; caches shared with that load still do.
#include <atomic>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/selector/bench/allocation_counter.h"
#include "broker/selector/selector.h"


namespace {

using namespace tandem;

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

class frame_view final : public selector::message_view {
 public:
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [n, v] : headers_) {
      if (n == name) return v;
    }
    return std::nullopt;
  }
  std::string_view destination() const noexcept override { return "/queue/orders.eu"; }
  std::string_view message_id() const noexcept override { return "ID:tandem-7f3a-000000000001"; }
  std::uint32_t redelivery_count() const noexcept override { return 0; }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> headers_{
      {"destination", "/queue/orders.eu"}, {"content-type", "application/json"},
      {"content-length", "512"},           {"persistent", "true"},
      {"priority", "7"},                   {"timestamp", "1765000000000"},
      {"correlation-id", "c-42"},          {"type", "order"},
      {"region", "eu-west-1"},             {"customer", "acme-corp"},
      {"amount", "1250"},                  {"status", "NEW"},
  };
};

struct bench_case {
  const char* label;
  const char* selector;
};

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 2000000;
  const bench_case cases[] = {
      {"string equality", "status = 'NEW'"},
      {"two headers, number conversion", "region = 'eu-west-1' AND amount > 1000"},
      {"LIKE prefix", "customer LIKE 'acme%'"},
      {"IN list of 8", "status IN ('NEW', 'OPEN', 'HELD', 'PAID', 'SENT', 'DONE', 'VOID', 'LOST')"},
      {"BETWEEN, JMS fields", "amount BETWEEN 1000 AND 5000 AND JMSPriority >= 5 AND JMSType = 'order'"},
      {"missing header, OR chain", "vip = 'yes' OR tier IN ('gold', 'platinum') OR amount > 10000"},
      {"JMSDestination LIKE", "JMSDestination LIKE 'queue://orders.%'"},
      {"string concatenation", "region + '/' + status = 'eu-west-1/NEW'"},
  };
  const frame_view message;
  std::printf("%-34s %10s %12s %12s %8s\n", "selector", "parse us", "ns/eval", "allocs/eval", "match");
  for (const auto& c : cases) {
    const double parse_start = cpu_ns();
    constexpr int parses = 2000;
    for (int i = 0; i < parses - 1; ++i) {
      if (!selector::parse(c.selector)) return 1;
    }
    auto parsed = selector::parse(c.selector);
    const double parse_us = (cpu_ns() - parse_start) / 1000.0 / parses;
    if (!parsed) {
      std::fprintf(stderr, "%s: %s\n", c.selector, parsed.error().message.c_str());
      return 1;
    }
    const selector::expression e = std::move(parsed).value();
    long matched = 0;
    for (long i = 0; i < iterations / 10; ++i) matched += e.matches(message);  // warm-up
    matched = 0;
    const std::size_t allocations_before = tandem::selector::bench::allocations.load();
    const double start = cpu_ns();
    for (long i = 0; i < iterations; ++i) matched += e.matches(message);
    const double elapsed_ns = cpu_ns() - start;
    const std::size_t used = tandem::selector::bench::allocations.load() - allocations_before;
    std::printf("%-34s %10.2f %12.1f %12.3f %8s\n", c.label, parse_us,
                elapsed_ns / double(iterations),
                double(used) / double(iterations), matched == iterations ? "yes" : matched == 0 ? "no" : "mixed");
  }
  return 0;
}
