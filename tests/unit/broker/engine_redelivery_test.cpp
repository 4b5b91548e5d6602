// Issue 16: redelivery delay and back-off per destination policy (broker/engine/policy.h,
// redelivery.cpp): a NACKed message comes back after its delay, without holding up the
// messages behind it, its count and delay survive a restart, and after
// maximum_redeliveries it goes to the DLQ. The fixture's wall clock is moved by hand and
// tick() is called as the server's tick timer would.
#include "engine_fixture.h"

#include "broker/engine/policy.h"

using namespace tandem::broker;
using namespace tandem::broker::test;

namespace {

engine_config with_redelivery(const std::string& pattern, redelivery_settings r) {
  auto cfg = fixture::default_config();
  destination_policy p;
  p.pattern = pattern;
  p.redelivery = r;
  cfg.destination_policies.push_back(p);
  return cfg;
}

// Moves the fixture's wall clock on by `ms` and runs the engine's tick.
void advance(fixture& fx, std::int64_t ms) {
  fx.now_ms += ms;
  fx.eng->tick(std::chrono::steady_clock::now());
  fx.settle();
}

void nack_last(client& c, const std::string& receipt) {
  c.frame("NACK", {{"id", c.ack_id(c.messages().size() - 1)}, {"receipt", receipt}});
  REQUIRE(c.wait_receipt(receipt));
}

}  // namespace

TEST_CASE("issue 16: a redelivery delay follows ActiveMQ's rules") {
  redelivery_settings s;  // ActiveMQ's defaults
  CHECK(redelivery_delay(s, 0).count() == 1000);
  CHECK(redelivery_delay(s, 5).count() == 1000);
  s.initial_redelivery_delay = std::chrono::milliseconds(200);
  s.redelivery_delay = std::chrono::milliseconds(700);
  CHECK(redelivery_delay(s, 0).count() == 200);
  CHECK(redelivery_delay(s, 1).count() == 700);
  CHECK(redelivery_delay(s, 9).count() == 700);
  s.use_exponential_back_off = true;
  s.back_off_multiplier = 2.0;
  CHECK(redelivery_delay(s, 1).count() == 400);
  CHECK(redelivery_delay(s, 3).count() == 1600);
  s.maximum_redelivery_delay = std::chrono::milliseconds(1000);
  CHECK(redelivery_delay(s, 3).count() == 1000);
  // A cap below redelivery_delay gives redelivery_delay (ActiveMQ's Math.max).
  s.maximum_redelivery_delay = std::chrono::milliseconds(300);
  CHECK(redelivery_delay(s, 2).count() == 700);
  // No cap: it grows, saturating at a day instead of overflowing.
  s.maximum_redelivery_delay = std::chrono::milliseconds(-1);
  CHECK(redelivery_delay(s, 1000).count() == 24ll * 3600 * 1000);
  // A multiplier of 1 is no back-off.
  s.back_off_multiplier = 1.0;
  CHECK(redelivery_delay(s, 4).count() == 700);
  CHECK(redelivery_allowed(s, 5));
  CHECK_FALSE(redelivery_allowed(s, 6));
  s.maximum_redeliveries = -1;
  CHECK(redelivery_allowed(s, 1u << 30));
  s.maximum_redeliveries = 0;
  CHECK_FALSE(redelivery_allowed(s, 0));
}

TEST_CASE("issue 16: the most specific matching policy entry applies") {
  std::vector<destination_policy> entries(4);
  entries[0].pattern = ">";
  entries[1].pattern = "orders.>";
  entries[2].pattern = "orders.*.eu";
  entries[3].pattern = "prices";
  entries[3].topic = true;
  policy_map map(entries);
  CHECK(map.find("/queue/anything")->pattern == ">");
  CHECK(map.find("/queue/orders.new")->pattern == "orders.>");
  CHECK(map.find("/queue/orders.new.eu")->pattern == "orders.*.eu");
  CHECK(map.find("/topic/prices")->pattern == "prices");
  CHECK(map.find("/topic/other") == nullptr);  // topic entries only match topics
  CHECK(map.find("/temp-queue/x") == nullptr);
}

TEST_CASE("issue 16: a NACK under a redelivery policy comes back after the delay, not blocking the messages behind it") {
  redelivery_settings r;
  r.initial_redelivery_delay = std::chrono::milliseconds(500);
  fixture fx(with_redelivery("work.>", r));
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/queue/work.a", "client-individual");
  p.send("/queue/work.a", "first", {{"persistent", "true"}});
  REQUIRE(c.wait_messages(1));
  nack_last(c, "n1");
  p.send("/queue/work.a", "second", {{"persistent", "true"}});
  p.send("/queue/work.a", "third", {{"persistent", "false"}});
  REQUIRE(c.wait_messages(3));
  CHECK(c.bodies() == strings({"first", "second", "third"}));  // not held up behind "first"
  advance(fx, 400);
  CHECK(c.messages().size() == 3);  // not yet
  CHECK(fx.destination("/queue/ActiveMQ.DLQ").is_null());
  advance(fx, 100);
  REQUIRE(c.wait_messages(4));
  auto again = c.messages()[3];
  CHECK(again.body == "first");
  CHECK(again.get("redelivered") == "true");
  CHECK(fx.destination("/queue/work.a")["dead_lettered"] == 0);
}

TEST_CASE("issue 16: without a matching policy a NACK still dead-letters at once") {
  fixture fx(with_redelivery("work.>", {}));
  client p(fx, connected), c(fx, connected);
  deliver_one(p, c, "/queue/other", "client-individual", "m");
  nack_last(c, "n");
  fx.settle();
  CHECK(fx.destination("/queue/ActiveMQ.DLQ")["pending"] == 1);
}

TEST_CASE("issue 16: after maximum_redeliveries the next NACK dead-letters, with exponential delays between") {
  redelivery_settings r;
  r.maximum_redeliveries = 2;
  r.initial_redelivery_delay = std::chrono::milliseconds(100);
  r.use_exponential_back_off = true;
  r.back_off_multiplier = 3.0;
  fixture fx(with_redelivery(">", r));
  client p(fx, connected), c(fx, connected), dlq(fx, connected);
  deliver_one(p, c, "/queue/x", "client-individual", "poison");
  nack_last(c, "n1");  // redelivery 1 after 100 ms
  advance(fx, 99);
  CHECK(c.messages().size() == 1);
  advance(fx, 1);
  REQUIRE(c.wait_messages(2));
  nack_last(c, "n2");  // redelivery 2 after 300 ms
  advance(fx, 299);
  CHECK(c.messages().size() == 2);
  advance(fx, 1);
  REQUIRE(c.wait_messages(3));
  nack_last(c, "n3");  // redelivered twice already: DLQ
  fx.settle();
  dlq.subscribe("d", "/queue/ActiveMQ.DLQ");
  REQUIRE(dlq.wait_messages(1));
  CHECK(dlq.messages()[0].body == "poison");
  CHECK(dlq.messages()[0].get("dlqDeliveryFailureCause").value_or("").find("after 2 redeliveries") != std::string::npos);
  advance(fx, 10'000);
  CHECK(c.messages().size() == 3);
  CHECK(fx.store->index().messages("/queue/x") == nullptr);  // gone from its queue
}

TEST_CASE("issue 16: a delayed redelivery keeps its delay and count across a restart") {
  redelivery_settings r;
  r.maximum_redeliveries = 1;
  r.initial_redelivery_delay = std::chrono::milliseconds(5000);
  fixture fx(with_redelivery(">", r));
  {
    client p(fx, connected), c(fx, connected);
    deliver_one(p, c, "/queue/d", "client-individual", "m");
    nack_last(c, "n");
    p.send("/queue/d", "behind", {{"persistent", "true"}});
    REQUIRE(c.wait_messages(2));
    c.frame("ACK", {{"id", c.ack_id(1)}, {"receipt", "a0"}});
    REQUIRE(c.wait_receipt("a0"));
    p.send("/queue/d", "behind", {{"persistent", "true"}});
    fx.settle();
  }
  fx.restart();
  client c(fx, connected);
  c.subscribe("s", "/queue/d", "client-individual");
  REQUIRE(c.wait_messages(1));
  CHECK(c.bodies() == strings({"behind"}));  // the delayed one waits, "behind" does not
  c.frame("ACK", {{"id", c.ack_id(0)}, {"receipt", "a"}});
  REQUIRE(c.wait_receipt("a"));
  advance(fx, 4000);
  CHECK(c.messages().size() == 1);
  advance(fx, 1000);
  REQUIRE(c.wait_messages(2));
  CHECK(c.messages()[1].body == "m");
  CHECK(c.messages()[1].get("redelivered") == "true");
  // Redelivered once already (the count came back from the journal): this NACK is final.
  nack_last(c, "n2");
  fx.settle();
  CHECK(fx.destination("/queue/ActiveMQ.DLQ")["pending"] == 1);
}

TEST_CASE("issue 16: a non-persistent message is redelivered after its delay too") {
  redelivery_settings r;
  r.initial_redelivery_delay = std::chrono::milliseconds(300);
  fixture fx(with_redelivery(">", r));
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/queue/np", "client-individual");
  p.send("/queue/np", "m", {{"persistent", "false"}});
  REQUIRE(c.wait_messages(1));
  nack_last(c, "n");
  CHECK(fx.destination("/queue/np")["pending"] == 1);
  advance(fx, 300);
  REQUIRE(c.wait_messages(2));
  CHECK(c.messages()[1].body == "m");
  CHECK(c.messages()[1].get("redelivered") == "true");
}
