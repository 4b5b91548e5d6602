#include "journal/detail/seq_hash_map.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <vector>

using tandem::journal::detail::seq_hash_map;

TEST_CASE("seq_hash_map: the same answers as a std::map under random puts, erases and finds") {
  seq_hash_map<int> m;
  std::map<std::uint64_t, int> ref;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200'000; ++i) {
    const std::uint64_t key = rng() % 50'000;
    switch (rng() % 3) {
      case 0:
        m.put(key, i);
        ref[key] = i;
        break;
      case 1:
        CHECK(m.erase(key) == (ref.erase(key) == 1));
        break;
      default: {
        auto* got = m.find(key);
        auto it = ref.find(key);
        REQUIRE((got != nullptr) == (it != ref.end()));
        if (got) CHECK(*got == it->second);
        CHECK(m.contains(key) == (it != ref.end()));
      }
    }
  }
  CHECK(m.size() == ref.size());
}

// The reason the type exists: consecutive msg_seqs (the body cache's keys) must not make
// all 64 tables grow within a few inserts of each other (one whole-map pause in pieces).
TEST_CASE("seq_hash_map: growth of its tables is spread over the inserts, not bunched") {
  seq_hash_map<int> m;
  std::vector<std::size_t> grew_at;
  std::size_t buckets = m.bucket_count();
  constexpr std::size_t inserts = 1u << 19;
  for (std::size_t i = 0; i < inserts; ++i) {
    m.put(1'000'000 + i, 0);
    if (m.bucket_count() != buckets) grew_at.push_back(i);
    buckets = m.bucket_count();
  }
  REQUIRE(grew_at.size() >= 64 * 8);  // every table grew several times
  // Past the small sizes, any 1,000 consecutive inserts grow at most a few tables; in
  // lock step, one such window held all 64.
  std::size_t worst = 0;
  std::deque<std::size_t> window;
  for (auto at : grew_at) {
    if (at < 64 * 1024) continue;
    window.push_back(at);
    while (window.front() + 1000 <= at) window.pop_front();
    worst = std::max(worst, window.size());
  }
  CHECK(worst <= 4);
}
