// latency_histogram: a log-linear histogram of durations in nanoseconds (HdrHistogram's
// layout, much reduced): exact below 2048 ns, then 1024 buckets per power of two, so every
// recorded value is reported within 0.1% (the bucket's highest value, never lower than the
// truth). Fixed memory (~280 KiB), O(1) record, so a bench can record every message.
//
// Threads: none; one histogram per thread, merged after the threads are joined.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace tandem::bench {

class latency_histogram {
 public:
  // Values above max_trackable_ns (~4.9 hours) are recorded as that.
  static constexpr std::uint64_t max_trackable_ns = std::uint64_t{1} << 44;

  latency_histogram();

  void record(std::chrono::nanoseconds d);
  void record_ns(std::uint64_t ns);
  void merge(const latency_histogram& other);

  std::uint64_t count() const noexcept { return count_; }
  // 0 when empty.
  std::uint64_t min_ns() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max_ns() const noexcept { return max_; }
  double mean_ns() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }
  // The smallest bucket value v such that at least q (0..1] of the samples are <= v, capped at
  // max_ns(); 0 when empty. q = 1 gives max_ns() exactly.
  std::uint64_t percentile_ns(double q) const noexcept;

  // Bucket arithmetic, public for the unit test.
  static std::size_t bucket_of(std::uint64_t ns) noexcept;
  static std::uint64_t highest_in_bucket(std::size_t index) noexcept;
  static std::size_t bucket_count() noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  // Sum of nanoseconds: 2^64 ns is 584 years of latency, enough for any run.
  std::uint64_t sum_ = 0;
};

}  // namespace tandem::bench
