// Issue 16: priority on a queue whose destination policy has prioritized_messages
// (ActiveMQ's prioritizedMessages): pending messages go out 9 first, FIFO within a
// priority, from the journal and from memory alike, after a restart too; a message put
// back goes out again by its priority. Without the policy a queue stays FIFO.
#include "engine_fixture.h"

using namespace tandem::broker;
using namespace tandem::broker::test;

namespace {

engine_config prioritized(const std::string& pattern) {
  auto cfg = fixture::default_config();
  destination_policy p;
  p.pattern = pattern;
  p.prioritized_messages = true;
  cfg.destination_policies.push_back(p);
  return cfg;
}

// Sends body "<priority><tag>" with that priority ("" = no header).
void send_with_priority(client& p, const std::string& dest, const std::string& priority, const std::string& tag,
                        const std::string& persistent = "true") {
  headers hs{{"persistent", persistent}};
  if (!priority.empty()) hs.emplace_back("priority", priority);
  p.send(dest, (priority.empty() ? "-" : priority) + tag, hs);
}

}  // namespace

TEST_CASE("issue 16: a prioritized queue delivers 9 first, FIFO within a priority, journaled and in memory") {
  fixture fx(prioritized("prio.>"));
  client p(fx, connected);
  send_with_priority(p, "/queue/prio.a", "1", "a");
  send_with_priority(p, "/queue/prio.a", "", "b", "false");  // no header: 4
  send_with_priority(p, "/queue/prio.a", "9", "c");
  send_with_priority(p, "/queue/prio.a", "4", "d");
  send_with_priority(p, "/queue/prio.a", "9", "e", "false");
  send_with_priority(p, "/queue/prio.a", "0", "f");
  fx.settle();
  client c(fx, connected);
  c.subscribe("s", "/queue/prio.a", "client-individual");
  REQUIRE(c.wait_messages(6));
  CHECK(c.bodies() == strings({"9c", "9e", "-b", "4d", "1a", "0f"}));
}

TEST_CASE("issue 16: without prioritized_messages a queue stays first in, first out") {
  fixture fx(prioritized("prio.>"));
  client p(fx, connected);
  send_with_priority(p, "/queue/plain", "1", "a");
  send_with_priority(p, "/queue/plain", "9", "b");
  client c(fx, connected);
  c.subscribe("s", "/queue/plain", "client-individual");
  REQUIRE(c.wait_messages(2));
  CHECK(c.bodies() == strings({"1a", "9b"}));
}

TEST_CASE("issue 16: priority order holds after a restart, and a returned message goes out by its priority") {
  fixture fx(prioritized(">"));
  {
    client p(fx, connected);
    for (auto [prio, tag] : {std::pair{"2", "a"}, {"7", "b"}, {"2", "c"}, {"7", "d"}, {"5", "e"}})
      send_with_priority(p, "/queue/r", prio, tag);
    fx.settle();
  }
  fx.restart();
  client c(fx, connected);
  c.subscribe("s", "/queue/r", "client-individual", {{"activemq.prefetchSize", "1"}});
  REQUIRE(c.wait_messages(1));
  CHECK(c.bodies() == strings({"7b"}));
  // The consumer goes away without acking: 7b comes back ahead of everything else.
  c.frame("UNSUBSCRIBE", {{"id", "s"}, {"receipt", "u"}});
  REQUIRE(c.wait_receipt("u"));
  client d(fx, connected);
  d.subscribe("s", "/queue/r", "auto");
  REQUIRE(d.wait_messages(5));
  CHECK(d.bodies() == strings({"7b", "7d", "5e", "2a", "2c"}));
  CHECK(d.messages()[0].get("redelivered") == "true");
  // New sends keep the order with what is left (nothing now).
  client p(fx, connected);
  send_with_priority(p, "/queue/r", "3", "f");
  REQUIRE(d.wait_messages(6));
  CHECK(d.messages()[5].body == "3f");
}

TEST_CASE("issue 16: a consumer with prefetch 1 takes higher priorities as they arrive") {
  fixture fx(prioritized(">"));
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/queue/live", "client-individual", {{"activemq.prefetchSize", "1"}});
  send_with_priority(p, "/queue/live", "1", "a");  // delivered at once
  REQUIRE(c.wait_messages(1));
  send_with_priority(p, "/queue/live", "1", "b");
  send_with_priority(p, "/queue/live", "8", "c");
  send_with_priority(p, "/queue/live", "4", "d", "false");
  for (std::size_t i = 0; i < 3; ++i) {
    c.frame("ACK", {{"id", c.ack_id(i)}, {"receipt", "a" + std::to_string(i)}});
    REQUIRE(c.wait_receipt("a" + std::to_string(i)));
    REQUIRE(c.wait_messages(i + 2));
  }
  CHECK(c.bodies() == strings({"1a", "8c", "4d", "1b"}));
}
