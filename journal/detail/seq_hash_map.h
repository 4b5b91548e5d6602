// A hash map from msg_seq that never pauses its caller for a whole-table rehash.
//
// Why: std::unordered_map grows by moving every element into a new bucket array at once.
// The body cache holds up to a few hundred thousand decoded messages (64 MiB of small
// ones), and its owner is the broker's io thread: each doubling past ~100,000 entries held
// that thread 10-20 ms (bench/results/scheduler.md, "A firing 10-20 ms late"), so every
// scheduled firing and every SEND->RECEIPT due in that window was late by as much. Split
// into 64 tables by key, a growth step moves 1/64 of the entries; lookups cost one more
// multiply. msg_seqs are consecutive, so the table is picked by a multiplicative hash's
// top bits rather than the low bits the tables themselves use.
//
// The keys spread evenly, so 64 tables with one load factor would all grow at the same
// insert, one after another: the same pause in 64 pieces (measured so). Each table gets
// its own maximum load factor, 1 + i/64, so their growth points are spread evenly over
// each doubling of the whole; the cost is chains of 1.5 entries on average instead of 1.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace tandem::journal::detail {

template <typename Value>
class seq_hash_map {
 public:
  static constexpr std::size_t shard_bits = 6;
  static constexpr std::size_t shard_count = std::size_t{1} << shard_bits;

  seq_hash_map() {
    for (std::size_t i = 0; i < shard_count; ++i)
      shards_[i].max_load_factor(1.0f + static_cast<float>(i) / static_cast<float>(shard_count));
  }

  Value* find(std::uint64_t seq) {
    auto& s = shard(seq);
    auto it = s.find(seq);
    return it == s.end() ? nullptr : &it->second;
  }
  bool contains(std::uint64_t seq) const { return shard(seq).contains(seq); }
  // Inserts or overwrites.
  void put(std::uint64_t seq, Value v) { shard(seq).insert_or_assign(seq, std::move(v)); }
  bool erase(std::uint64_t seq) { return shard(seq).erase(seq) != 0; }
  // Summed over the tables: it changes exactly when one of them grows.
  std::size_t bucket_count() const {
    std::size_t n = 0;
    for (const auto& s : shards_) n += s.bucket_count();
    return n;
  }
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) n += s.size();
    return n;
  }

 private:
  using table = std::unordered_map<std::uint64_t, Value>;
  static std::size_t index_of(std::uint64_t seq) { return (seq * 0x9E3779B97F4A7C15ull) >> (64 - shard_bits); }
  table& shard(std::uint64_t seq) { return shards_[index_of(seq)]; }
  const table& shard(std::uint64_t seq) const { return shards_[index_of(seq)]; }

  std::array<table, shard_count> shards_;
};

}  // namespace tandem::journal::detail
