// Issue 16: advisory topics (broker/engine/advisory.cpp): JSON messages on ActiveMQ.Advisory.*
// about connections, consumers, producers, destinations, expired and dead-lettered messages,
// and the retained master-change advisory.
#include <nlohmann/json.hpp>

#include "engine_fixture.h"

using namespace tandem::broker;
using namespace tandem::broker::test;
using nlohmann::json;

namespace {

std::vector<json> bodies_json(const client& c) {
  std::vector<json> out;
  for (const auto& m : c.messages()) out.push_back(json::parse(m.body));
  return out;
}

}  // namespace

TEST_CASE("issue 16: consumer advisories carry the consumer count, added and removed") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Consumer.Queue.orders");
  client a(fx, connected), b(fx, connected);
  a.subscribe("s", "/queue/orders");
  b.subscribe("s", "/queue/orders", "auto", {{"activemq.exclusive", "true"}});
  b.close();
  REQUIRE(watcher.wait_messages(3));
  auto got = bodies_json(watcher);
  CHECK(got[0]["event"] == "added");
  CHECK(got[0]["consumerCount"] == 1);
  CHECK(got[0]["destination"] == "/queue/orders");
  CHECK(got[1]["consumerCount"] == 2);
  CHECK(got[1]["exclusive"] == true);
  CHECK(got[2]["event"] == "removed");
  CHECK(got[2]["consumerCount"] == 1);
  CHECK(watcher.messages()[0].get("consumerCount") == "1");
  CHECK(watcher.messages()[0].get("content-type") == "application/json");
  CHECK(watcher.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Consumer.Queue.orders");
}

TEST_CASE("issue 16: a wildcard consumer gives no advisory of its own but counts on each queue") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Consumer.>");
  client a(fx, connected), b(fx, connected), p(fx, connected);
  p.send("/queue/w.x", "m");  // the queue exists before the wildcard consumer
  a.subscribe("s", "/queue/w.>");
  b.subscribe("s", "/queue/w.x");
  REQUIRE(watcher.wait_messages(1));
  fx.settle();
  REQUIRE(watcher.messages().size() == 1);
  CHECK(watcher.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Consumer.Queue.w.x");
  CHECK(bodies_json(watcher)[0]["consumerCount"] == 2);
}

TEST_CASE("issue 16: topic consumer advisories count the topic's subscribers") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Consumer.Topic.news");
  client a(fx, connected), b(fx, connected);
  a.subscribe("s", "/topic/news");
  b.subscribe("s", "/topic/news");
  REQUIRE(watcher.wait_messages(2));
  CHECK(bodies_json(watcher)[1]["consumerCount"] == 2);
}

TEST_CASE("issue 16: connection advisories on CONNECT and when the connection goes") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Connection");
  {
    client a(fx);
    a.connect({{"client-id", "app-1"}});
  }
  REQUIRE(watcher.wait_messages(3));
  auto got = bodies_json(watcher);
  CHECK(got[0]["event"] == "added");  // the replay: the watcher's own connection was there
  CHECK(got[0]["clientId"] == "");
  CHECK(got[1]["event"] == "added");
  CHECK(got[1]["clientId"] == "app-1");
  CHECK(got[2]["event"] == "removed");
  CHECK(got[1]["connectionId"] == got[2]["connectionId"]);
}

TEST_CASE("issue 16: a producer is a connection that sent to the destination, advised once, removed when it goes") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Producer.>");
  {
    client p(fx, connected), q(fx, connected);
    p.send("/queue/work", "1");
    p.send("/queue/work", "2");
    q.send("/queue/work", "3");
    REQUIRE(watcher.wait_messages(2));
    auto got = bodies_json(watcher);
    CHECK(got[0]["event"] == "added");
    CHECK(got[0]["producerCount"] == 1);
    CHECK(got[1]["producerCount"] == 2);
    CHECK(watcher.messages().size() == 2);
    CHECK(watcher.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Producer.Queue.work");
  }
  REQUIRE(watcher.wait_messages(4));
  auto got = bodies_json(watcher);
  CHECK(got[2]["event"] == "removed");
  CHECK(got[3]["producerCount"] == 0);
}

TEST_CASE("issue 16: destination advisories when a queue is made") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Queue");
  client p(fx, connected);
  p.send("/queue/new.one", "x");
  REQUIRE(watcher.wait_messages(1));
  auto got = bodies_json(watcher);
  CHECK(got[0]["event"] == "created");
  CHECK(got[0]["destination"] == "/queue/new.one");
}

TEST_CASE("issue 16: expired and dead-lettered messages are advised on their destination's topic") {
  fixture fx;
  client watcher(fx, connected);
  watcher.subscribe("w1", "/topic/ActiveMQ.Advisory.Expired.Queue.q");
  watcher.subscribe("w2", "/topic/ActiveMQ.Advisory.MessageDLQd.Queue.q");
  client p(fx, connected);
  p.send("/queue/q", "old", {{"expires", std::to_string(fx.now_ms + 1000)}, {"persistent", "true"}});
  fx.now_ms += 5000;
  client c(fx, connected);
  c.subscribe("s", "/queue/q", "client-individual");  // dispatch finds it expired
  REQUIRE(watcher.wait_messages(1));
  p.send("/queue/q", "bad", {{"persistent", "true"}});
  REQUIRE(c.wait_messages(1));
  auto r = c.next_receipt();
  c.frame("NACK", {{"id", c.ack_id(0)}, {"receipt", r}});
  REQUIRE(c.wait_receipt(r));
  REQUIRE(watcher.wait_messages(2));
  auto got = bodies_json(watcher);
  CHECK(watcher.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Expired.Queue.q");
  CHECK(got[0]["destination"] == "/queue/q");
  CHECK(watcher.messages()[1].get("destination") == "/topic/ActiveMQ.Advisory.MessageDLQd.Queue.q");
  CHECK(got[1]["messageId"] == std::string(*c.messages()[0].get("message-id")));
}

TEST_CASE("issue 16: the master-change advisory is kept for later subscribers") {
  fixture fx;
  master_change mc;
  mc.broker = "b2";
  mc.previous_broker = "b1";
  mc.epoch = 7;
  mc.previous_epoch = 6;
  mc.took_ms = 42;
  mc.at_ms = fx.now_ms;
  fx.eng->announce_master(mc);
  client a(fx, connected);
  a.subscribe("s", "/topic/ActiveMQ.Advisory.Tandem.MasterChange");
  REQUIRE(a.wait_messages(1));
  auto got = bodies_json(a)[0];
  CHECK(got["broker"] == "b2");
  CHECK(got["previousBroker"] == "b1");
  CHECK(got["epoch"] == 7);
  CHECK(got["failoverMs"] == 42);
  CHECK(a.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Tandem.MasterChange");
  client b(fx, connected);
  b.subscribe("s", "/topic/ActiveMQ.Advisory.>");
  REQUIRE(b.wait_messages(1));
  CHECK(json::parse(b.messages()[0].body)["epoch"] == 7);
  client other(fx, connected);
  other.subscribe("s", "/topic/ActiveMQ.Advisory.Connection");
  fx.settle();
  for (const auto& m : other.messages())  // the connections' replay, not the retained one
    CHECK(m.get("destination") == "/topic/ActiveMQ.Advisory.Connection");
}

// ActiveMQ's AdvisoryBroker tells a new advisory consumer what exists (issue 16: "a monitor
// learns the current state"); before, a monitor started after its consumers saw nothing
// until one came or went.
TEST_CASE("issue 16: a new consumer-advisory subscriber gets one 'added' per existing consumer, alone") {
  fixture fx;
  client early(fx, connected);
  early.subscribe("w", "/topic/ActiveMQ.Advisory.Consumer.Queue.orders");
  client a(fx, connected), b(fx, connected);
  a.subscribe("s", "/queue/orders");
  b.subscribe("s", "/queue/orders", "auto", {{"activemq.priority", "5"}});
  a.subscribe("t", "/queue/other");
  REQUIRE(early.wait_messages(2));
  client watcher(fx, connected);
  watcher.subscribe("w", "/topic/ActiveMQ.Advisory.Consumer.Queue.orders");
  REQUIRE(watcher.wait_messages(2));
  fx.settle();
  auto got = bodies_json(watcher);
  REQUIRE(got.size() == 2);
  for (const auto& g : got) {
    CHECK(g["event"] == "added");
    CHECK(g["destination"] == "/queue/orders");
    CHECK(g["consumerCount"] == 2);  // the count of now, as ActiveMQ's replay
  }
  CHECK((got[0]["priority"] == 5) != (got[1]["priority"] == 5));  // b's, whichever comes first
  CHECK(watcher.messages()[0].get("consumerCount") == "2");
  CHECK(watcher.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Consumer.Queue.orders");
  CHECK(early.messages().size() == 2);  // nothing replayed to the subscriber that saw them live
}

TEST_CASE("issue 16: a new destination-advisory subscriber gets one 'created' per existing queue or topic") {
  fixture fx;
  client p(fx, connected);
  p.send("/queue/a", "x");
  p.send("/queue/b", "x");
  p.send("/topic/t", "x");
  client w(fx, connected);
  w.subscribe("q", "/topic/ActiveMQ.Advisory.Queue");
  w.subscribe("t", "/topic/ActiveMQ.Advisory.Topic");
  REQUIRE(w.wait_messages(3));
  fx.settle();
  std::vector<std::pair<std::string, std::string>> seen;
  for (const auto& m : w.messages())
    seen.emplace_back(std::string(*m.get("destination")), json::parse(m.body)["destination"].get<std::string>());
  CHECK(seen == std::vector<std::pair<std::string, std::string>>{
                    {"/topic/ActiveMQ.Advisory.Queue", "/queue/a"},
                    {"/topic/ActiveMQ.Advisory.Queue", "/queue/b"},
                    {"/topic/ActiveMQ.Advisory.Topic", "/topic/t"}});  // no advisory topic itself
  for (const auto& b : bodies_json(w)) CHECK(b["event"] == "created");
}

TEST_CASE("issue 16: a wildcard advisory subscriber gets the replay of what it covers; /topic/> gets none") {
  fixture fx;
  client a(fx, connected);
  a.subscribe("s", "/queue/jobs");
  a.subscribe("t", "/topic/news");
  client w(fx, connected);
  w.subscribe("w", "/topic/ActiveMQ.Advisory.Consumer.>");
  REQUIRE(w.wait_messages(2));
  fx.settle();
  CHECK(w.messages().size() == 2);
  CHECK(w.messages()[0].get("destination") == "/topic/ActiveMQ.Advisory.Consumer.Queue.jobs");
  CHECK(w.messages()[1].get("destination") == "/topic/ActiveMQ.Advisory.Consumer.Topic.news");
  client all(fx, connected);
  all.subscribe("all", "/topic/>");
  fx.settle();
  CHECK(all.messages().empty());
}
