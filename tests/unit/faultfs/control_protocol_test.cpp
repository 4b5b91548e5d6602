// The control protocol's parser and the fault rules it builds.
#include <cerrno>

#include <doctest/doctest.h>

#include "tools/faultfs/control_protocol.h"

using namespace tandem::faultfs;

TEST_CASE("fail requests name classes, an errno and optional skip, count and path") {
  std::string why;
  auto r = parse_request("fail write,fsync enospc skip=3 count=0 path=journal/*.seg", why);
  REQUIRE(r);
  const auto& rule = std::get<fail_request>(*r).rule;
  CHECK(rule.ops == (static_cast<unsigned>(op_class::write) | static_cast<unsigned>(op_class::fsync)));
  CHECK(rule.error == ENOSPC);
  CHECK(rule.skip == 3);
  CHECK(rule.count == 0);
  CHECK(rule.path_glob == "journal/*.seg");
  auto d = parse_request("fail all 5", why);
  REQUIRE(d);
  CHECK(std::get<fail_request>(*d).rule.ops == all_ops);
  CHECK(std::get<fail_request>(*d).rule.error == EIO);
  CHECK(std::get<fail_request>(*d).rule.count == 1);
}

TEST_CASE("the other requests, and what is wrong with bad ones") {
  std::string why;
  CHECK(std::get<simple_request>(*parse_request("crash", why)).what == simple_request::verb::crash);
  CHECK(std::get<simple_request>(*parse_request("  power-on ", why)).what == simple_request::verb::power_on);
  CHECK(std::get<lease_request>(*parse_request("lease 1500", why)).lease == std::chrono::milliseconds(1500));
  CHECK_FALSE(parse_request("", why));
  CHECK(why.find("empty") != std::string::npos);
  CHECK_FALSE(parse_request("fail writes eio", why));
  CHECK(why.find("writes") != std::string::npos);
  CHECK_FALSE(parse_request("fail write eboom", why));
  CHECK(why.find("eboom") != std::string::npos);
  CHECK_FALSE(parse_request("fail write eio count", why));
  CHECK_FALSE(parse_request("freeze now", why));
  CHECK_FALSE(parse_request("lease soon", why));
  CHECK_FALSE(parse_request("reboot", why));
  CHECK(why.find("reboot") != std::string::npos);
}

TEST_CASE("a rule lets `skip` operations through, fails `count`, and matches its path") {
  fault_rules rules;
  fault_rule r;
  r.ops = static_cast<unsigned>(op_class::fsync);
  r.error = EIO;
  r.skip = 2;
  r.count = 2;
  r.path_glob = "journal/*";
  rules.add(r);
  CHECK(rules.check(op_class::fsync, "epoch").error == 0);           // other path
  CHECK(rules.check(op_class::write, "journal/1.seg").error == 0);   // other class
  CHECK(rules.check(op_class::fsync, "journal/1.seg").error == 0);   // skipped 1
  CHECK(rules.check(op_class::fsync, "journal/1.seg").error == 0);   // skipped 2
  CHECK(rules.check(op_class::fsync, "journal/1.seg").error == EIO);
  CHECK(rules.check(op_class::fsync, "journal/2.seg").error == EIO);
  CHECK(rules.check(op_class::fsync, "journal/1.seg").error == 0);   // count used up
  CHECK(rules.injected() == 2);
  rules.clear();
  fault_rule every;
  every.ops = all_ops;
  every.error = ENOSPC;
  every.count = 0;
  rules.add(every);
  for (int i = 0; i < 5; ++i) CHECK(rules.check(op_class::write, "x").error == ENOSPC);
}

TEST_CASE("a delay rule slows matching operations of one process and fails none") {
  std::string why;
  auto r = parse_request("delay lock,stat,read 300 path=lock pid=4242", why);
  REQUIRE(r);
  fault_rules rules;
  rules.add(std::get<fail_request>(*r).rule);
  CHECK(rules.needs_pid());
  auto other = rules.check(op_class::lock, "lock", 99);
  CHECK(other.delay.count() == 0);
  for (int i = 0; i < 3; ++i) {
    auto d = rules.check(op_class::lock, "lock", 4242);
    CHECK(d.delay == std::chrono::milliseconds(300));
    CHECK(d.error == 0);
  }
  CHECK(rules.check(op_class::write, "lock", 4242).delay.count() == 0);
  CHECK(rules.check(op_class::read, "journal/1.seg", 4242).delay.count() == 0);
  CHECK_FALSE(parse_request("delay all 0", why));
  CHECK_FALSE(parse_request("delay all soon", why));
  CHECK_FALSE(parse_request("fail all eio pid=x", why));
}
