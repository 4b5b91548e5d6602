// Issue 16: who gets a queue's messages beyond round robin (broker/engine/consumers.cpp):
// exclusive consumers (activemq.exclusive), consumer priority (activemq.priority) and
// message groups (JMSXGroupID, JMSXGroupSeq, JMSXGroupFirstForConsumer), as ActiveMQ 5.17.
#include <map>
#include <set>

#include "engine_fixture.h"

using namespace tandem::broker;
using namespace tandem::broker::test;

namespace {

void ack(client& c, std::size_t i) {
  auto r = c.next_receipt();
  c.frame("ACK", {{"id", c.ack_id(i)}, {"receipt", r}});
  REQUIRE(c.wait_receipt(r));
}

void unsubscribe(client& c, const std::string& id) {
  auto r = c.next_receipt();
  c.frame("UNSUBSCRIBE", {{"id", id}, {"receipt", r}});
  REQUIRE(c.wait_receipt(r));
}

void send_in_group(client& p, const std::string& dest, const std::string& group, const std::string& body,
                   const std::string& group_seq = "") {
  headers hs{{"persistent", "true"}, {"JMSXGroupID", group}};
  if (!group_seq.empty()) hs.emplace_back("JMSXGroupSeq", group_seq);
  p.send(dest, body, hs);
}

// The groups of the MESSAGEs a client got, in order.
std::vector<std::string> groups_of(const client& c) {
  std::vector<std::string> out;
  for (const auto& m : c.messages()) out.emplace_back(m.get("JMSXGroupID").value_or(""));
  return out;
}

std::vector<bool> first_flags(const client& c) {
  std::vector<bool> out;
  for (const auto& m : c.messages()) out.push_back(m.get("JMSXGroupFirstForConsumer") == "true");
  return out;
}

const headers exclusive{{"activemq.exclusive", "true"}};

}  // namespace

TEST_CASE("issue 16: an exclusive consumer gets every message, the others none") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/ex", "auto", exclusive);
  b.subscribe("s", "/queue/ex", "auto");
  for (int i = 0; i < 6; ++i) p.send("/queue/ex", "m" + std::to_string(i), {{"persistent", "true"}});
  REQUIRE(a.wait_messages(6));
  CHECK(a.bodies() == strings({"m0", "m1", "m2", "m3", "m4", "m5"}));
  CHECK(b.messages().empty());
}

TEST_CASE("issue 16: the next exclusive consumer takes over with the unacked messages first, in order") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/ex", "client-individual", {{"activemq.exclusive", "true"}, {"activemq.prefetchSize", "2"}});
  b.subscribe("s", "/queue/ex", "client-individual", exclusive);
  for (int i = 0; i < 5; ++i) p.send("/queue/ex", "m" + std::to_string(i), {{"persistent", "true"}});
  REQUIRE(a.wait_messages(2));
  CHECK(a.bodies() == strings({"m0", "m1"}));
  ack(a, 0);
  REQUIRE(a.wait_messages(3));
  CHECK(b.messages().empty());  // a has prefetch room again and stays the only one
  SUBCASE("by UNSUBSCRIBE") { unsubscribe(a, "s"); }
  SUBCASE("by disconnecting") { a.close(); }
  REQUIRE(b.wait_messages(4));
  CHECK(b.bodies() == strings({"m1", "m2", "m3", "m4"}));
  CHECK(b.messages()[0].get("redelivered") == "true");
  CHECK(b.messages()[1].get("redelivered") == "true");
  CHECK_FALSE(b.messages()[2].get("redelivered"));
}

TEST_CASE("issue 16: a later exclusive consumer of higher priority takes over, and gives back when it goes") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/ex", "auto", exclusive);
  p.send("/queue/ex", "m0");
  REQUIRE(a.wait_messages(1));
  b.subscribe("s", "/queue/ex", "auto", {{"activemq.exclusive", "true"}, {"activemq.priority", "9"}});
  p.send("/queue/ex", "m1");
  REQUIRE(b.wait_messages(1));
  CHECK(b.bodies() == strings({"m1"}));
  b.close();
  p.send("/queue/ex", "m2");
  REQUIRE(a.wait_messages(2));
  CHECK(a.bodies() == strings({"m0", "m2"}));
}

TEST_CASE("issue 16: a higher priority consumer gets messages while it has prefetch room") {
  fixture fx;
  client low(fx, connected), high(fx, connected), p(fx, connected);
  low.subscribe("s", "/queue/pr", "client-individual", {{"activemq.priority", "1"}, {"activemq.prefetchSize", "2"}});
  high.subscribe("s", "/queue/pr", "client-individual", {{"activemq.priority", "5"}, {"activemq.prefetchSize", "2"}});
  for (int i = 0; i < 6; ++i) p.send("/queue/pr", "m" + std::to_string(i));
  REQUIRE(low.wait_messages(2));
  CHECK(high.bodies() == strings({"m0", "m1"}));
  CHECK(low.bodies() == strings({"m2", "m3"}));
  ack(high, 0);  // room on the high one again: it gets the next
  REQUIRE(high.wait_messages(3));
  CHECK(high.bodies()[2] == "m4");
  CHECK(low.messages().size() == 2);
}

TEST_CASE("issue 16: consumers of equal priority share round robin") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/pr", "auto", {{"activemq.priority", "3"}});
  b.subscribe("s", "/queue/pr", "auto", {{"activemq.priority", "3"}});
  for (int i = 0; i < 4; ++i) p.send("/queue/pr", "m" + std::to_string(i));
  REQUIRE(b.wait_messages(2));
  CHECK(a.bodies() == strings({"m0", "m2"}));
  CHECK(b.bodies() == strings({"m1", "m3"}));
}

TEST_CASE("issue 16: activemq.priority outside 0-127 is refused") {
  fixture fx;
  client a(fx, connected);
  a.frame("SUBSCRIBE", {{"id", "s"}, {"destination", "/queue/pr"}, {"activemq.priority", "128"}});
  REQUIRE(a.last_error());
  CHECK(a.last_error()->get("message") == "bad priority header");
  CHECK(a.last_error()->body.find("activemq.priority '128'") != std::string::npos);
}

TEST_CASE("issue 16: a message group stays with the consumer that got its first message") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/g", "auto");
  b.subscribe("s", "/queue/g", "auto");
  for (int i = 0; i < 3; ++i)
    for (const char* g : {"x", "y", "z"}) send_in_group(p, "/queue/g", g, std::string(g) + std::to_string(i));
  REQUIRE(fx.pump([&] { return a.messages().size() + b.messages().size() == 9; }));
  std::map<std::string, std::set<int>> owners;  // group -> which consumers got it
  for (auto* c : {&a, &b})
    for (const auto& g : groups_of(*c)) owners[g].insert(c == &a ? 0 : 1);
  for (const auto& [g, who] : owners) CHECK_MESSAGE(who.size() == 1, "group " << g);
  // Each group's first message to its owner says so, and no other does.
  for (auto* c : {&a, &b}) {
    std::set<std::string> seen;
    auto gs = groups_of(*c);
    auto flags = first_flags(*c);
    for (std::size_t i = 0; i < gs.size(); ++i) CHECK(flags[i] == seen.insert(gs[i]).second);
  }
}

TEST_CASE("issue 16: JMSXGroupSeq -1 closes a group, and its next message may go to another consumer") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/g", "auto");
  b.subscribe("s", "/queue/g", "auto");
  send_in_group(p, "/queue/g", "x", "x1");
  REQUIRE(a.wait_messages(1));
  send_in_group(p, "/queue/g", "x", "x2", "-1");
  REQUIRE(a.wait_messages(2));  // still the owner's: -1 ends the group after it
  send_in_group(p, "/queue/g", "x", "x3");
  REQUIRE(b.wait_messages(1));  // round robin goes on after a
  CHECK(b.bodies() == strings({"x3"}));
  CHECK(b.messages()[0].get("JMSXGroupFirstForConsumer") == "true");
  CHECK(a.bodies() == strings({"x1", "x2"}));
}

TEST_CASE("issue 16: a full group owner holds back its group only") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/g", "client-individual", {{"activemq.prefetchSize", "1"}});
  b.subscribe("s", "/queue/g", "client-individual", {{"activemq.prefetchSize", "10"}});
  send_in_group(p, "/queue/g", "x", "x1");
  REQUIRE(a.wait_messages(1));
  send_in_group(p, "/queue/g", "x", "x2");
  send_in_group(p, "/queue/g", "y", "y1");
  send_in_group(p, "/queue/g", "y", "y2");
  REQUIRE(b.wait_messages(2));
  CHECK(b.bodies() == strings({"y1", "y2"}));
  CHECK(a.messages().size() == 1);
  ack(a, 0);
  REQUIRE(a.wait_messages(2));
  CHECK(a.bodies() == strings({"x1", "x2"}));
}

TEST_CASE("issue 16: when a group's owner goes the next one gets its unacked messages first, in order") {
  fixture fx;
  client a(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/g", "client-individual");
  for (int i = 1; i <= 3; ++i) send_in_group(p, "/queue/g", "x", "x" + std::to_string(i));
  REQUIRE(a.wait_messages(3));
  ack(a, 0);
  client b(fx, connected);
  b.subscribe("s", "/queue/g", "client-individual");
  send_in_group(p, "/queue/g", "x", "x4");
  CHECK(b.messages().empty());  // x belongs to a
  SUBCASE("by disconnecting") { a.close(); }
  SUBCASE("by UNSUBSCRIBE") { unsubscribe(a, "s"); }
  REQUIRE(b.wait_messages(3));
  CHECK(b.bodies() == strings({"x2", "x3", "x4"}));
  CHECK(first_flags(b) == std::vector<bool>{true, false, false});
  CHECK(b.messages()[0].get("redelivered") == "true");
}

TEST_CASE("issue 16: groups are assigned again after a restart, each group in order") {
  fixture fx;
  {
    client a(fx, connected), p(fx, connected);
    a.subscribe("s", "/queue/g", "client-individual", {{"activemq.prefetchSize", "2"}});
    for (int i = 1; i <= 4; ++i)
      for (const char* g : {"x", "y"}) send_in_group(p, "/queue/g", g, std::string(g) + std::to_string(i));
    REQUIRE(a.wait_messages(2));
    ack(a, 0);  // x1 done; y1 stays unacked across the restart
    fx.settle();
  }
  fx.restart();
  client b(fx, connected), c(fx, connected);
  b.subscribe("s", "/queue/g", "auto");
  c.subscribe("s", "/queue/g", "auto");
  REQUIRE(fx.pump([&] { return b.messages().size() + c.messages().size() == 7; }));
  std::map<std::string, std::vector<std::string>> per_group;
  std::map<std::string, std::set<const client*>> owners;
  for (const client* k : {&b, &c})
    for (const auto& m : k->messages()) {
      auto g = std::string(m.get("JMSXGroupID").value_or(""));
      owners[g].insert(k);
      per_group[g].push_back(m.body);
    }
  CHECK(owners["x"].size() == 1);
  CHECK(owners["y"].size() == 1);
  CHECK(per_group["x"] == strings({"x2", "x3", "x4"}));
  CHECK(per_group["y"] == strings({"y1", "y2", "y3", "y4"}));
}

TEST_CASE("issue 16: groups on an exclusive queue all go to the exclusive consumer") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  b.subscribe("s", "/queue/g", "auto");
  a.subscribe("s", "/queue/g", "auto", exclusive);
  for (const char* g : {"x", "y", "z"}) send_in_group(p, "/queue/g", g, g);
  REQUIRE(a.wait_messages(3));
  CHECK(b.messages().empty());
}

// JMSXGroupFirstForConsumer in a selector is what the MESSAGE would carry for the consumer
// being matched: TRUE for the first message of a group to a new owner, FALSE for the rest.
// It was always FALSE before (issue 16, gap 2): x1 then went to b.
TEST_CASE("issue 16: a selector on JMSXGroupFirstForConsumer sees the header the message is delivered with") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  a.subscribe("s", "/queue/gf", "auto", {{"selector", "JMSXGroupFirstForConsumer = TRUE"}});
  b.subscribe("s", "/queue/gf", "auto");
  send_in_group(p, "/queue/gf", "x", "x1");
  REQUIRE(a.wait_messages(1));
  CHECK(a.bodies() == strings({"x1"}));
  CHECK(first_flags(a) == std::vector<bool>{true});
  // x2 belongs to a's group but is not a first: a's selector refuses it and the group's
  // owner is a, so it waits (ActiveMQ: a group's messages go to its owner only).
  send_in_group(p, "/queue/gf", "x", "x2");
  fx.settle();
  CHECK(a.messages().size() == 1);
  CHECK(b.messages().empty());
  // The owner goes: x2 is the first of the group for b, flagged so.
  unsubscribe(a, "s");
  REQUIRE(b.wait_messages(1));
  CHECK(b.bodies() == strings({"x2"}));
  CHECK(first_flags(b) == std::vector<bool>{true});
}

TEST_CASE("issue 16: NOT JMSXGroupFirstForConsumer takes a group's later messages, and ungrouped ones") {
  fixture fx;
  client a(fx, connected), b(fx, connected), p(fx, connected);
  b.subscribe("s", "/queue/gn", "auto", {{"selector", "JMSXGroupID IS NOT NULL"}});
  send_in_group(p, "/queue/gn", "y", "y1");  // b owns y
  REQUIRE(b.wait_messages(1));
  a.subscribe("s", "/queue/gn", "auto", {{"selector", "NOT JMSXGroupFirstForConsumer"}});
  p.send("/queue/gn", "plain", {{"persistent", "true"}});  // no group: FALSE for everyone
  send_in_group(p, "/queue/gn", "z", "z1");                // a new group: TRUE for a, so not a's
  fx.settle();
  CHECK(a.bodies() == strings({"plain"}));
  CHECK(b.bodies() == strings({"y1", "z1"}));
}
