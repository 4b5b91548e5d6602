#include "tools/bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace tandem::bench {
namespace {

// Values below linear_limit get a bucket each; above it, each power of two [2^m, 2^(m+1))
// is split into sub_buckets equal parts (the top 11 significant bits of the value).
constexpr std::uint64_t sub_buckets = 1024;
constexpr std::uint64_t linear_limit = 2 * sub_buckets;

}  // namespace

std::size_t latency_histogram::bucket_of(std::uint64_t ns) noexcept {
  ns = std::min(ns, max_trackable_ns);
  if (ns < linear_limit) return static_cast<std::size_t>(ns);
  const unsigned top_bit = static_cast<unsigned>(std::bit_width(ns)) - 1;  // >= 11
  const unsigned shift = top_bit - 10;                                       // >= 1
  const std::uint64_t sub = ns >> shift;                                     // [1024, 2047]
  return static_cast<std::size_t>(linear_limit + (shift - 1) * sub_buckets + (sub - sub_buckets));
}

std::uint64_t latency_histogram::highest_in_bucket(std::size_t index) noexcept {
  if (index < linear_limit) return index;
  const std::uint64_t k = index - linear_limit;
  const unsigned shift = static_cast<unsigned>(k / sub_buckets) + 1;
  const std::uint64_t sub = k % sub_buckets + sub_buckets;
  return ((sub + 1) << shift) - 1;
}

std::size_t latency_histogram::bucket_count() noexcept { return bucket_of(max_trackable_ns) + 1; }

latency_histogram::latency_histogram() : counts_(bucket_count(), 0) {}

void latency_histogram::record(std::chrono::nanoseconds d) { record_ns(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count())); }

void latency_histogram::record_ns(std::uint64_t ns) {
  ns = std::min(ns, max_trackable_ns);
  ++counts_[bucket_of(ns)];
  ++count_;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void latency_histogram::merge(const latency_histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

std::uint64_t latency_histogram::percentile_ns(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the sample at quantile q, 1-based: ceil(q * count), at least 1.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_in_bucket(i), max_);
  }
  return max_;
}

}  // namespace tandem::bench
