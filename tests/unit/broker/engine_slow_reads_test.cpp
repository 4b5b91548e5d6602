// The reads that still blocked the io thread after dispatch and expiry moved off it (issue
// 17, finding 8): a dead letter's or a delayed redelivery's body, a queue browser's bodies,
// a scheduled entry at its firing. Each now goes through body_read.cpp; these cases show
// that another session answers while such a read hangs, and that each path keeps its
// ordering rules. The store is on a fault_file_system whose reads can be made to wait; the
// store keeps no body cache (fixture::body_cache_bytes = 0), so every body is read from its
// segment. The test thread is the io thread (engine_fixture.h).
#include <chrono>

#include "tests/support/fault_file_system.h"
#include "tests/unit/broker/engine_fixture.h"

namespace tandem::broker::test {

using namespace std::chrono_literals;

namespace {

// A fixture whose store caches no body.
struct cold_fixture {
  tandem::test::fault_file_system disk;
  fixture fx;
  explicit cold_fixture(engine_config cfg = fixture::default_config()) : fx(std::move(cfg), true, disk) {
    fx.body_cache_bytes = 0;
    fx.restart();
  }
};

// Another client's persistent SEND->RECEIPT while a read hangs: how long it took from t0.
std::chrono::milliseconds other_send_while_hung(fixture& fx, tandem::test::fault_file_system& disk,
                                                std::chrono::steady_clock::time_point t0) {
  REQUIRE(disk.wait_for_slow_read(2s));
  client other(fx, connected);
  other.send("/queue/other", "while the disk hangs", {{"persistent", "true"}});
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  MESSAGE("SEND->RECEIPT while a read hangs: " << took.count() << " ms");
  CHECK(disk.slow_reads_waiting() > 0);  // the RECEIPT came while the read still waited
  return took;
}

engine_config with_redelivery(const std::string& pattern, std::chrono::milliseconds delay) {
  auto cfg = fixture::default_config();
  destination_policy p;
  p.pattern = pattern;
  redelivery_settings r;
  r.initial_redelivery_delay = delay;
  p.redelivery = r;
  cfg.destination_policies.push_back(p);
  return cfg;
}

// Schedules `body` on /queue/sched 1 s ahead, then moves the clock there and fires it while
// every read waits `read_delay`; returns the steady time just before the firing.
std::chrono::steady_clock::time_point fire_while_reads_wait(cold_fixture& cold, const std::string& body,
                                                            std::chrono::milliseconds read_delay) {
  auto& fx = cold.fx;
  {
    client p(fx, connected);
    p.send("/queue/sched", body, {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "1000"}});
  }
  cold.disk.slow_reads(read_delay);
  fx.now_ms += 1000;
  const auto t0 = std::chrono::steady_clock::now();
  // Before the fix the firing read its entry here, on the io thread.
  fx.eng->fire_schedules();
  return t0;
}

}  // namespace

TEST_CASE("regression (issue 17, finding 8): a dead letter whose body read hangs 5 s stalls no other session") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client p(fx, connected), c(fx, connected);
  deliver_one(p, c, "/queue/dl", "client-individual", "poison");
  cold.disk.slow_reads(5s);
  const auto t0 = std::chrono::steady_clock::now();
  // Before the fix the NACK read the body for the dead-letter copy here, on the io thread.
  c.frame("NACK", {{"id", c.ack_id(0)}, {"receipt", "n"}});
  CHECK(other_send_while_hung(fx, cold.disk, t0) < 5s);
  CHECK_FALSE(c.has_receipt("n"));  // the NACK's RECEIPT follows the move to the DLQ
  cold.disk.slow_reads(0ms);
  REQUIRE(c.wait_receipt("n"));
  fx.settle();
  CHECK(fx.destination("/queue/dl")["pending"] == 0);
  CHECK(fx.destination("/queue/ActiveMQ.DLQ")["pending"] == 1);

  fx.restart();  // the move was one journal record
  client after(fx, connected);
  after.subscribe("d", "/queue/ActiveMQ.DLQ");
  REQUIRE(after.wait_messages(1));
  CHECK(after.bodies() == strings({"poison"}));
  fx.settle();
  CHECK(fx.destination("/queue/dl")["pending"] == 0);
}

TEST_CASE("a dead letter whose body read completes after a purge writes nothing, and no consumer gets it meanwhile") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client p(fx, connected), c(fx, connected);
  deliver_one(p, c, "/queue/dl", "client-individual", "poison");
  cold.disk.slow_reads(300ms);
  c.frame("NACK", {{"id", c.ack_id(0)}, {"receipt", "n"}});
  REQUIRE(cold.disk.wait_for_slow_read(2s));
  client other(fx, connected);  // a consumer that comes meanwhile does not get it
  other.subscribe("o", "/queue/dl");
  bool purged = false;
  REQUIRE(fx.eng->purge("/queue/dl", [&](std::error_code ec, std::uint64_t) { purged = !ec; }));
  cold.disk.slow_reads(0ms);
  REQUIRE(fx.pump([&] { return purged; }));
  REQUIRE(c.wait_receipt("n"));
  fx.settle();
  CHECK(other.messages().empty());
  CHECK(fx.destination("/queue/dl")["pending"] == 0);
  CHECK(fx.destination("/queue/dl")["dead_lettered"] == 0);  // it left by the purge
  const auto dlq = fx.destination("/queue/ActiveMQ.DLQ");
  CHECK((dlq.is_null() || dlq["pending"] == 0));

  fx.restart();  // nothing was journaled into the DLQ either
  fx.settle();
  const auto dlq_after = fx.destination("/queue/ActiveMQ.DLQ");
  CHECK((dlq_after.is_null() || dlq_after["pending"] == 0));
}

TEST_CASE("regression (issue 17, finding 8): a delayed redelivery whose body read hangs 5 s stalls no other session") {
  cold_fixture cold(with_redelivery("work.>", 500ms));
  auto& fx = cold.fx;
  client p(fx, connected), c(fx, connected);
  deliver_one(p, c, "/queue/work.a", "client-individual", "again");
  cold.disk.slow_reads(5s);
  const auto t0 = std::chrono::steady_clock::now();
  c.frame("NACK", {{"id", c.ack_id(0)}, {"receipt", "n"}});
  CHECK(other_send_while_hung(fx, cold.disk, t0) < 5s);
  cold.disk.slow_reads(0ms);
  REQUIRE(c.wait_receipt("n"));
  fx.settle();
  CHECK(c.messages().size() == 1);  // not before its delay
  fx.now_ms += 500;
  fx.eng->tick(std::chrono::steady_clock::now());
  REQUIRE(c.wait_messages(2));
  CHECK(c.messages()[1].body == "again");
  CHECK(c.messages()[1].get("redelivered") == "true");
  fx.settle();
  CHECK(fx.destination("/queue/work.a")["dead_lettered"] == 0);
}

TEST_CASE("regression (issue 17, finding 8): a queue browser whose body reads hang stalls no other session, "
          "and gets the queue in order") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client p(fx, connected);
  p.send("/queue/b", "p0", {{"persistent", "true"}});
  p.send("/queue/b", "m1", {{"persistent", "false"}});
  p.send("/queue/b", "p2", {{"persistent", "true"}});
  cold.disk.slow_reads(5s);
  client browser(fx, connected);
  const auto t0 = std::chrono::steady_clock::now();
  // Before the fix SUBSCRIBE browser:true read every body here, on the io thread.
  browser.frame("SUBSCRIBE", {{"id", "b"}, {"destination", "/queue/b"}, {"browser", "true"}});
  CHECK(other_send_while_hung(fx, cold.disk, t0) < 5s);
  CHECK(browser.messages().empty());  // "m1" (in memory) waits behind "p0"
  cold.disk.slow_reads(0ms);
  REQUIRE(browser.wait_messages(4));
  CHECK(browser.bodies() == strings({"p0", "m1", "p2", ""}));
  CHECK(browser.messages()[3].get("browser") == "end");
  fx.settle();
  CHECK(fx.destination("/queue/b")["pending"] == 3);  // nothing consumed
}

TEST_CASE("a browser skips a message consumed while its body was read") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client p(fx, connected);
  p.send("/queue/b", "p0", {{"persistent", "true"}});
  p.send("/queue/b", "p1", {{"persistent", "true"}});
  cold.disk.slow_reads(300ms);
  client browser(fx, connected);
  browser.frame("SUBSCRIBE", {{"id", "b"}, {"destination", "/queue/b"}, {"browser", "true"}});
  REQUIRE(cold.disk.wait_for_slow_read(2s));
  bool purged = false;
  REQUIRE(fx.eng->purge("/queue/b", [&](std::error_code ec, std::uint64_t) { purged = !ec; }));
  cold.disk.slow_reads(0ms);
  REQUIRE(fx.pump([&] { return purged; }));
  REQUIRE(browser.wait_messages(1));
  fx.settle();
  CHECK(browser.bodies() == strings({""}));  // only browser:end: both were purged
}

TEST_CASE("regression (issue 17, finding 8): an admin browse whose body reads hang stalls no other session") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client p(fx, connected);
  p.send("/queue/b", "p0", {{"persistent", "true"}});
  p.send("/queue/b", "m1", {{"persistent", "false"}});
  p.send("/queue/b", "p2", {{"persistent", "true"}});
  cold.disk.slow_reads(5s);
  nlohmann::json slice;
  bool done = false;
  const auto t0 = std::chrono::steady_clock::now();
  // Before the fix browse_json read both journaled bodies here, on the io thread (10 s).
  REQUIRE(fx.eng->browse_json("/queue/b", 0, 10, 16, [&](nlohmann::json s) {
    slice = std::move(s);
    done = true;
  }));
  CHECK(other_send_while_hung(fx, cold.disk, t0) < 5s);
  CHECK(!done);
  cold.disk.slow_reads(0ms);
  REQUIRE(fx.pump([&] { return done; }));
  std::vector<std::string> bodies;
  for (const auto& m : slice["messages"]) bodies.push_back(m["body_preview"]);
  CHECK(bodies == strings({"p0", "m1", "p2"}));
  CHECK(slice["more"] == false);
  CHECK(slice["next"] == slice["messages"][2]["seq"]);
  fx.settle();
  CHECK(fx.destination("/queue/b")["pending"] == 3);  // nothing consumed
}

TEST_CASE("an admin browse leaves out a message purged while its body was read, and says where to go on") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client p(fx, connected);
  p.send("/queue/b", "p0", {{"persistent", "true"}});
  p.send("/queue/b", "p1", {{"persistent", "true"}});
  cold.disk.slow_reads(300ms);
  nlohmann::json slice;
  bool done = false;
  REQUIRE(fx.eng->browse_json("/queue/b", 0, 1, 16, [&](nlohmann::json s) {
    slice = std::move(s);
    done = true;
  }));
  REQUIRE(cold.disk.wait_for_slow_read(2s));
  bool purged = false;
  REQUIRE(fx.eng->purge("/queue/b", [&](std::error_code ec, std::uint64_t) { purged = !ec; }));
  cold.disk.slow_reads(0ms);
  REQUIRE(fx.pump([&] { return purged && done; }));
  fx.settle();
  CHECK(slice["messages"].empty());  // p0 was purged meanwhile: gone, not shown
  CHECK(slice["more"] == true);
  CHECK(slice["next"].get<std::uint64_t>() > 0);  // past p0: the next slice starts after it
}

TEST_CASE("regression (issue 17, finding 8): the admin list of scheduled jobs whose entry reads hang stalls no other "
          "session") {
  cold_fixture cold;
  auto& fx = cold.fx;
  {
    client p(fx, connected);
    p.send("/queue/sched", "later", {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "60000"}});
  }
  fx.settle();
  cold.disk.slow_reads(5s);
  nlohmann::json page;
  bool done = false;
  const auto t0 = std::chrono::steady_clock::now();
  // Before the fix scheduled_json read each entry of the page here, on the io thread.
  fx.eng->scheduled_json(0, 10, [&](nlohmann::json j) {
    page = std::move(j);
    done = true;
  });
  CHECK(other_send_while_hung(fx, cold.disk, t0) < 5s);
  CHECK(!done);
  cold.disk.slow_reads(0ms);
  REQUIRE(fx.pump([&] { return done; }));
  CHECK(page["total"] == 1);
  REQUIRE(page["items"].size() == 1);
  CHECK(page["items"][0]["destination"] == "/queue/sched");
  CHECK(page["items"][0]["delay_ms"] == "60000");
  CHECK(page["items"][0]["body_bytes"] == 5);
}

TEST_CASE("regression (issue 17, finding 8): a scheduled firing whose entry read hangs 5 s stalls no other session") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client c(fx, connected);
  c.subscribe("s", "/queue/sched");
  const auto t0 = fire_while_reads_wait(cold, "later", 5s);
  CHECK(other_send_while_hung(fx, cold.disk, t0) < 5s);
  CHECK(c.messages().empty());
  cold.disk.slow_reads(0ms);
  REQUIRE(c.wait_messages(1));
  fx.settle();
  CHECK(c.bodies() == strings({"later"}));
  CHECK(!fx.eng->next_schedule_ms());
  fx.restart();  // fired once: the entry is gone from the store
  CHECK(!fx.eng->next_schedule_ms());
}

TEST_CASE("a firing whose entry read is cut by a failover fires once, on the new master") {
  cold_fixture cold;
  auto& fx = cold.fx;
  fire_while_reads_wait(cold, "once", 300ms);
  REQUIRE(cold.disk.wait_for_slow_read(2s));
  cold.disk.slow_reads(0ms);
  fx.restart();  // the old engine never sees its read's answer
  CHECK(fx.eng->next_schedule_ms() == fx.now_ms);  // nothing was written: still due
  fx.eng->fire_schedules();
  client c(fx, connected);
  c.subscribe("s", "/queue/sched");
  REQUIRE(c.wait_messages(1));
  fx.settle();
  CHECK(c.bodies() == strings({"once"}));
  fx.restart();
  fx.settle();
  CHECK(!fx.eng->next_schedule_ms());
  CHECK(fx.destination("/queue/sched")["pending"] == 0);
}

TEST_CASE("a job cancelled while its entry is read does not fire, and its entry is removed") {
  cold_fixture cold;
  auto& fx = cold.fx;
  client c(fx, connected);
  c.subscribe("s", "/queue/sched");
  fire_while_reads_wait(cold, "never", 300ms);
  REQUIRE(cold.disk.wait_for_slow_read(2s));
  std::uint64_t cancelled = 0;
  fx.eng->cancel_scheduled("", [&](std::error_code, std::uint64_t n) { cancelled = n; });
  CHECK(cancelled == 1);
  cold.disk.slow_reads(0ms);
  fx.settle();
  CHECK(c.messages().empty());
  fx.restart();
  CHECK(!fx.eng->next_schedule_ms());
}

}  // namespace tandem::broker::test
