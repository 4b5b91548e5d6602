#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "tools/bench/latency_histogram.h"

using tandem::bench::latency_histogram;

TEST_CASE("small values are recorded exactly") {
  for (std::uint64_t v : {0u, 1u, 2u, 1000u, 2047u}) {
    CHECK(latency_histogram::bucket_of(v) == v);
    CHECK(latency_histogram::highest_in_bucket(latency_histogram::bucket_of(v)) == v);
  }
}

TEST_CASE("every value lies in its bucket and the bucket is within 0.1 percent") {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const std::uint64_t clamped = std::min(v, latency_histogram::max_trackable_ns);
    const auto b = latency_histogram::bucket_of(clamped);
    REQUIRE(b < latency_histogram::bucket_count());
    const std::uint64_t high = latency_histogram::highest_in_bucket(b);
    REQUIRE(high >= clamped);
    REQUIRE(static_cast<double>(high - clamped) <= static_cast<double>(clamped) / 1000.0);
    if (b > 0) REQUIRE(latency_histogram::highest_in_bucket(b - 1) < clamped);
  }
}

TEST_CASE("percentiles match a sorted sample within the bucket precision") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(13.0, 1.5);  // around 0.5 ms, long tail
  std::vector<std::uint64_t> values;
  latency_histogram h;
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.record_ns(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    const std::uint64_t truth = values[rank - 1];
    const std::uint64_t got = h.percentile_ns(q);
    INFO("q=", q, " truth=", truth, " got=", got);
    CHECK(got >= truth);
    CHECK(static_cast<double>(got - truth) <= static_cast<double>(truth) / 1000.0 + 1);
  }
  CHECK(h.percentile_ns(1.0) == values.back());
  CHECK(h.max_ns() == values.back());
  CHECK(h.min_ns() == values.front());
  CHECK(h.count() == values.size());
}

TEST_CASE("merging histograms equals recording everything in one") {
  latency_histogram a, b, all;
  for (std::uint64_t v = 1; v < 100000; v += 37) {
    (v % 2 ? a : b).record_ns(v * 13);
    all.record_ns(v * 13);
  }
  a.merge(b);
  CHECK(a.count() == all.count());
  CHECK(a.min_ns() == all.min_ns());
  CHECK(a.max_ns() == all.max_ns());
  CHECK(a.mean_ns() == doctest::Approx(all.mean_ns()));
  for (double q : {0.1, 0.5, 0.99}) CHECK(a.percentile_ns(q) == all.percentile_ns(q));
}

TEST_CASE("an empty histogram reports zeros and huge values are capped") {
  latency_histogram h;
  CHECK(h.percentile_ns(0.5) == 0);
  CHECK(h.min_ns() == 0);
  CHECK(h.mean_ns() == 0.0);
  h.record_ns(UINT64_MAX);
  CHECK(h.max_ns() == latency_histogram::max_trackable_ns);
  h.record(std::chrono::nanoseconds(-5));
  CHECK(h.min_ns() == 0);
}
