// Issue 16, ActiveMQ.Scheduler.Management over STOMP in the engine (with a real journal):
// BROWSE copies the pending entries to reply-to, REMOVE and REMOVEALL cancel through the
// admin API's path (durably: a restart keeps the removal), a bad request changes nothing.
#include "tests/unit/broker/engine_fixture.h"

#include <nlohmann/json.hpp>

using namespace tandem::broker;
using namespace tandem::broker::test;

namespace {

constexpr const char* management = "/topic/ActiveMQ.Scheduler.Management";

// Three entries due at t0 + 3 s, + 1 s, + 2 s (bodies "c", "a", "b").
void schedule_three(fixture& fx) {
  client p(fx, connected);
  p.send("/queue/work", "c", {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "3000"}, {"custom", "3"}});
  p.send("/queue/work", "a", {{"AMQ_SCHEDULED_DELAY", "1000"}, {"custom", "1"}});
  p.send("/queue/work", "b", {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "2000"}, {"custom", "2"}});
}

std::uint64_t pending(fixture& fx) { return fx.scheduled_page(0, 10)["total"]; }

std::vector<std::string> jobs_of(const client& c) {
  std::vector<std::string> out;
  for (const auto& m : c.messages()) out.emplace_back(m.get("scheduledJobId").value_or(""));
  return out;
}

// A request from `c`, waiting for its RECEIPT.
void request(client& c, headers h) {
  h.emplace_back("destination", management);
  auto rid = c.next_receipt();
  h.emplace_back("receipt", rid);
  c.frame("SEND", h);
  REQUIRE(c.wait_receipt(rid));
}

// BROWSE to `reply` from `c` (subscribed to it).
void browse(client& c, const std::string& reply, headers extra = {}) {
  extra.emplace_back("AMQ_SCHEDULER_ACTION", "BROWSE");
  extra.emplace_back("reply-to", reply);
  request(c, std::move(extra));
}

// `c` subscribes to `queue` and BROWSEs the schedules there; returns once `n` copies came.
void browse_into(client& c, const std::string& queue, std::size_t n) {
  c.subscribe("s", queue);
  browse(c, queue);
  REQUIRE(c.wait_messages(n));
}

}  // namespace

TEST_CASE("issue 16: BROWSE copies each pending schedule to reply-to in firing order and keeps them") {
  fixture fx;
  const auto t0 = fx.now_ms;
  schedule_three(fx);
  client c(fx, connected);
  browse_into(c, "/queue/jobs", 3);
  CHECK(c.bodies() == std::vector<std::string>{"a", "b", "c"});
  for (const auto& m : c.messages()) {
    CHECK(m.get("type") == "Advisory");
    CHECK(m.get("original-destination") == "/queue/work");
    CHECK(m.get("AMQ_SCHEDULED_DELAY").has_value());
    CHECK(!m.get("persistent"));
    CHECK(!m.get("tandem-schedule-destination"));
  }
  CHECK(c.messages()[0].get("custom") == "1");
  CHECK(pending(fx) == 3);  // browsing removes nothing

  // A range of next firing times, both ends included.
  client d(fx, connected);
  d.subscribe("s", "/queue/some");
  browse(d, "/queue/some",
         {{"ACTION_START_TIME", std::to_string(t0 + 1000)}, {"ACTION_END_TIME", std::to_string(t0 + 2000)}});
  fx.settle();
  CHECK(d.bodies() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("issue 16: BROWSE after a restart reads the entries off the io thread, to a temp queue") {
  fixture fx;
  schedule_three(fx);
  fx.restart();  // nothing cached: each body is read through the store's reader
  client c(fx, connected);
  c.subscribe("s", "/temp-queue/mine");
  browse(c, "/temp-queue/mine");
  REQUIRE(c.wait_messages(3));
  CHECK(c.bodies() == std::vector<std::string>{"a", "b", "c"});
  CHECK(c.messages()[0].get("destination") == "/temp-queue/mine");
}

TEST_CASE("issue 16: REMOVE and REMOVEALL cancel durably; nothing removed fires after a restart") {
  fixture fx;
  const auto t0 = fx.now_ms;
  schedule_three(fx);
  client c(fx, connected);
  browse_into(c, "/queue/jobs", 3);
  const auto jobs = jobs_of(c);  // a, b, c

  request(c, {{"AMQ_SCHEDULER_ACTION", "REMOVE"}, {"scheduledJobId", jobs[1]}});
  CHECK(pending(fx) == 2);
  request(c, {{"AMQ_SCHEDULER_ACTION", "REMOVE"}, {"scheduledJobId", "ID:no-such-job"}});  // as ActiveMQ: no error
  CHECK(pending(fx) == 2);
  fx.restart();
  CHECK(pending(fx) == 2);

  client d(fx, connected);
  request(d, {{"AMQ_SCHEDULER_ACTION", "REMOVEALL"},
              {"ACTION_START_TIME", std::to_string(t0 + 2500)},
              {"ACTION_END_TIME", std::to_string(t0 + 4000)}});
  CHECK(pending(fx) == 1);  // "c" went, "a" (t0 + 1 s) is outside the range
  fx.restart();
  CHECK(pending(fx) == 1);
  client e(fx, connected);
  request(e, {{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}});
  CHECK(pending(fx) == 0);
  fx.restart();
  CHECK(pending(fx) == 0);
  client w(fx, connected);
  w.subscribe("s", "/queue/work");
  fx.now_ms = t0 + 10'000;
  fx.eng->fire_schedules();
  fx.settle();
  CHECK(w.messages().empty());
}

TEST_CASE("issue 16: a bad scheduler request gets an ERROR and changes nothing") {
  fixture fx;
  schedule_three(fx);
  auto refused = [&](headers h, std::string_view code, std::string_view says) {
    client c(fx, connected);
    c.frame("SEND", h);
    REQUIRE(c.last_error());
    CHECK(c.last_error()->get("message") == code);
    CHECK_MESSAGE(c.last_error()->body.find(says) != std::string::npos, c.last_error()->body);
    CHECK(pending(fx) == 3);
  };
  refused({{"destination", management}, {"AMQ_SCHEDULER_ACTION", "REMOVEALL"},
           {"AMQ_SCHEDULER_ACTION_START_TIME", "0"}, {"AMQ_SCHEDULER_ACTION_END_TIME", "1"}},
          "bad scheduler request", "send ACTION_START_TIME");
  refused({{"destination", management}, {"AMQ_SCHEDULER_ACTION", "DROP"}}, "bad scheduler request", "'DROP'");
  refused({{"destination", management}, {"AMQ_SCHEDULER_ACTION", "BROWSE"}}, "bad scheduler request", "reply-to");
  refused({{"destination", management}, {"AMQ_SCHEDULER_ACTION", "BROWSE"}, {"reply-to", "/queue/a.>"}},
          "bad scheduler request", "not one destination");
  refused({{"destination", std::string("/queue/x,") + management}, {"AMQ_SCHEDULER_ACTION", "REMOVEALL"}},
          "bad scheduler request", "alone");
  {
    client c(fx, connected);
    c.frame("BEGIN", {{"transaction", "tx"}});
    c.frame("SEND", {{"destination", management}, {"transaction", "tx"}, {"AMQ_SCHEDULER_ACTION", "REMOVEALL"}});
    REQUIRE(c.last_error());
    CHECK(c.last_error()->body.find("transaction") != std::string::npos);
  }
  CHECK(pending(fx) == 3);
}

TEST_CASE("issue 16: a scheduler request is not delivered to subscribers of the management topic") {
  fixture fx;
  client c(fx, connected);
  c.subscribe("s", management);
  request(c, {{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}});
  fx.settle();
  CHECK(c.messages().empty());
}
