// broker/disk_space_guard.h: what a statvfs answer means for persistent SENDs.
#include <doctest/doctest.h>

#include "broker/disk_space_guard.h"

using tandem::broker::disk_space_guard;

TEST_CASE("room above the reserve is not full, below it is") {
  constexpr std::uint64_t reserve = 64 << 20;
  auto roomy = disk_space_guard::judge({1ull << 40, 1ull << 30, 1ull << 30}, reserve);
  CHECK_FALSE(roomy.full);
  CHECK(roomy.available_bytes == 1ull << 30);
  auto tight = disk_space_guard::judge({1ull << 40, reserve - 1, reserve - 1}, reserve);
  CHECK(tight.full);
}

// Regression: a CephFS mount reports 0 of 0 bytes for ~10 s after its cluster starts, and
// every persistent SEND was refused "disk full" meanwhile.
TEST_CASE("a file system that reports no capacity at all is not full") {
  auto s = disk_space_guard::judge({0, 0, 0}, 64 << 20);
  CHECK_FALSE(s.full);
  CHECK(s.reserve_bytes == 64 << 20);
}
