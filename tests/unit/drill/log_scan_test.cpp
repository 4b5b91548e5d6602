#include <doctest/doctest.h>

#include <sstream>

#include "tools/drill/log_scan.h"

using namespace tandem::drill;

TEST_CASE("master and step-down lines are found with their figures") {
  std::istringstream in(
      "2026-01-02T03:04:05.100Z info  main slave: waiting for lock held_by=b0 holder_pid=12\n"
      "2026-01-02T03:04:06.200Z info  main master epoch=5 recovered=100000 took_ms=41 records_replayed=12 "
      "from_checkpoint=true journal_ms=30\n"
      "2026-01-02T03:04:07.000Z info  server master epoch=99\n"
      "2026-01-02T03:04:08.300Z error main stepping down: mastership lost reason=\"epoch file changed\" epoch=5 exit_code=75\n");
  log_facts f;
  scan_log(in, 2, 3, f);
  REQUIRE(f.masters.size() == 1);
  CHECK(f.masters[0].epoch == 5);
  CHECK(f.masters[0].utc == "2026-01-02T03:04:06.200Z");
  CHECK(f.masters[0].recovered == 100000u);
  CHECK(f.masters[0].took_ms == 41u);
  CHECK(f.masters[0].records_replayed == 12u);
  CHECK(f.masters[0].journal_ms == 30u);
  CHECK(f.masters[0].slot == 2);
  CHECK(f.masters[0].incarnation == 3);
  REQUIRE(f.step_downs.size() == 1);
  CHECK(f.step_downs[0].reason == "epoch file changed");
}

TEST_CASE("a key is matched only as a whole word") {
  std::string v;
  CHECK(log_field("main master epoch=7 previous_epoch=3", "epoch", v));
  CHECK(v == "7");
  CHECK(log_field("x previous_epoch=3 epoch=9", "epoch", v));
  CHECK(v == "9");
  CHECK_FALSE(log_field("x previous_epoch=3", "epoch", v));
  CHECK(log_field("x reason=\"a \\\"b\\\" c\" y=1", "reason", v));
  CHECK(v == "a \"b\" c");
}

TEST_CASE("the last error line is the broker's own reason for a failed start") {
  std::istringstream in(
      "2026-12-06T07:52:52.748Z info  main starting broker_name=b0 store=/m/host1/s\n"
      "2026-12-06T07:52:52.748Z warning main no users configured: anonymous access is allowed\n"
      "2026-12-06T07:52:52.750Z error admin cannot listen address=10.77.0.21:61701 error=\"Address in use\"\n"
      "2026-12-06T07:52:52.755Z error main cannot read the store identity store=/m/host1/s "
      "error=\"Cannot send after transport endpoint shutdown\"\n"
      "2026-12-06T07:52:52.756Z info  main exit code=1 note=\"an error line\"\n");
  auto line = last_error_line(in);
  REQUIRE(line);
  CHECK(line->find("cannot read the store identity") != std::string::npos);

  std::istringstream quiet("2026-12-06T07:52:52.748Z info  main starting error=none\nnot a log line error x\n");
  CHECK_FALSE(last_error_line(quiet));
}

TEST_CASE("epochs served twice or going back in time are problems") {
  auto line = [](std::string utc, std::uint64_t epoch, std::uint32_t slot) {
    master_line m;
    m.utc = std::move(utc);
    m.epoch = epoch;
    m.slot = slot;
    return m;
  };
  CHECK(check_master_epochs({line("2026-01-01T00:00:01.000Z", 1, 0), line("2026-01-01T00:00:02.000Z", 2, 1)}).empty());
  auto twice = check_master_epochs({line("2026-01-01T00:00:01.000Z", 3, 0), line("2026-01-01T00:00:02.000Z", 3, 1)});
  REQUIRE(twice.size() == 1);
  CHECK(twice[0].find("epoch 3 served twice") != std::string::npos);
  auto back = check_master_epochs({line("2026-01-01T00:00:01.000Z", 4, 0), line("2026-01-01T00:00:02.000Z", 2, 1)});
  REQUIRE(back.size() == 1);
  CHECK(back[0].find("epoch went back") != std::string::npos);
  // Same millisecond: ordered by epoch, not a decrease.
  CHECK(check_master_epochs({line("2026-01-01T00:00:01.000Z", 6, 0), line("2026-01-01T00:00:01.000Z", 5, 1)}).empty());
}
