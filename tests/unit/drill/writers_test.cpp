#include <doctest/doctest.h>

#include "tools/drill/fault_kind.h"
#include "tools/drill/writers.h"

using namespace tandem::drill;
using namespace std::chrono_literals;

namespace {

const clock_type::time_point t0{};

write_ack ack(std::uint64_t epoch, clock_type::duration sent, clock_type::duration received, std::string what = "m") {
  write_ack a;
  a.sent = t0 + sent;
  a.received = t0 + received;
  a.epoch = epoch;
  a.slot = static_cast<std::uint32_t>(epoch % 3);
  a.incarnation = epoch;
  a.what = std::move(what);
  return a;
}

}  // namespace

TEST_CASE("an old epoch's RECEIPT read after the new epoch's first one proves nothing when its SEND came first") {
  // A takeover: the old master completed m1 just before it was killed; the RECEIPT was read
  // late. The new master's first RECEIPT came before it was read, but after m1 was sent.
  auto r = check_writers({ack(1, 0ms, 10ms), ack(1, 5ms, 200ms, "m1"), ack(2, 100ms, 150ms), ack(2, 160ms, 170ms)});
  CHECK(r.overlapping == 0);
  CHECK(r.pairs.empty());
  REQUIRE(r.windows.size() == 2);
  CHECK(r.windows[0].epoch == 1);
  CHECK(r.windows[0].receipts == 2);
  CHECK(r.windows[0].first_received == t0 + 10ms);
  CHECK(r.windows[0].last_received == t0 + 200ms);
  CHECK(r.windows[1].first_received == t0 + 150ms);
}

TEST_CASE("an old epoch receipting a SEND written after the new epoch's first RECEIPT is two writers") {
  auto r = check_writers({ack(4, 0ms, 10ms), ack(5, 100ms, 150ms, "new"), ack(4, 160ms, 180ms, "probe:9"),
                          ack(4, 170ms, 190ms, "p1:7")});
  CHECK(r.overlapping == 2);
  REQUIRE(r.pairs.size() == 1);
  CHECK(r.pairs[0].older == 4);
  CHECK(r.pairs[0].newer == 5);
  CHECK(r.pairs[0].receipts == 2);
  CHECK(r.pairs[0].first == t0 + 180ms);
  CHECK(r.pairs[0].example.find("probe:9 (epoch 4)") == 0);
  CHECK(r.overlap_times.size() == 2);
}

TEST_CASE("any newer epoch counts, the earliest first RECEIPT among them") {
  // Epoch 3 completed an append (RECEIPT at 50 ms) before epoch 1's SEND of 100 ms and epoch
  // 2's SEND of 250 ms were written: both of those RECEIPTs overlap epoch 3.
  auto r = check_writers({ack(1, 0ms, 5ms), ack(2, 250ms, 300ms), ack(3, 40ms, 50ms), ack(1, 100ms, 120ms)});
  CHECK(r.overlapping == 2);
  REQUIRE(r.pairs.size() == 2);
  CHECK(r.pairs[0].older == 1);
  CHECK(r.pairs[0].newer == 3);
  CHECK(r.pairs[1].older == 2);
  CHECK(r.pairs[1].newer == 3);
}

TEST_CASE("a RECEIPT whose broker epoch is unknown is counted but judges nothing") {
  auto unknown = ack(1, 500ms, 510ms);
  unknown.epoch.reset();
  auto r = check_writers({ack(1, 0ms, 10ms), ack(2, 100ms, 150ms), unknown});
  CHECK(r.acks == 3);
  CHECK(r.unattributed == 1);
  CHECK(r.overlapping == 0);
}

TEST_CASE("fault kinds parse by name and by their old signal names") {
  CHECK(parse_fault_kind("kill") == fault_kind::kill);
  CHECK(parse_fault_kind("SIGKILL") == fault_kind::kill);
  CHECK(parse_fault_kind("15") == fault_kind::term);
  CHECK(parse_fault_kind("lock_removed") == fault_kind::lock_removed);
  CHECK(parse_fault_kind("power-loss") == fault_kind::power_loss);
  CHECK_FALSE(parse_fault_kind("reboot"));
  for (auto k : all_fault_kinds()) CHECK(parse_fault_kind(name(k)) == k);
  CHECK(needs_faultfs(fault_kind::stop_lease));
  CHECK_FALSE(needs_faultfs(fault_kind::lock_replaced));
  CHECK(faultfs_request(fault_kind::eio_fsync, 4242) == "fail fsync eio count=0 pid=4242 path=journal/*.seg");
  CHECK(faultfs_request(fault_kind::enospc_write, 7) == "fail write enospc count=0 pid=7 path=journal/*.seg");
  CHECK(is_pause(fault_kind::fs_freeze));
}
