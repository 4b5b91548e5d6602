// broker/jolokia: ActiveMQ's Jolokia read shape on the admin port (issue 18), as KEDA's
// ActiveMQ scaler asks it.
#include <doctest/doctest.h>

#include "broker/jolokia.h"

using nlohmann::json;
namespace jolokia = tandem::broker::jolokia;

namespace {

json destinations() {
  return json::parse(R"([
    {"name": "/queue/orders", "type": "queue", "pending": 40, "inflight": 2, "consumers": 3, "enqueued": 100,
     "dequeued": 58, "expired": 1, "bytes": 4096},
    {"name": "/topic/prices", "type": "topic", "pending": 5, "inflight": 0, "consumers": 2, "enqueued": 7,
     "dequeued": 9, "bytes": 10},
    {"name": "/queue/a/b", "type": "queue", "pending": 1, "inflight": 0, "consumers": 0, "enqueued": 1,
     "dequeued": 0, "bytes": 1}
  ])");
}

json read(std::string_view target) { return jolokia::read(target, destinations(), "tandem-a", 1765000000); }

}  // namespace

TEST_CASE("KEDA's URL shape reads QueueSize as a plain number") {
  auto r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,destinationName=orders/QueueSize");
  CHECK(r["status"] == 200);
  CHECK(r["value"] == 42);  // pending + in flight, as ActiveMQ counts it
  CHECK(r["timestamp"] == 1765000000);
  CHECK(r["request"]["attribute"] == "QueueSize");
  CHECK(r["request"]["type"] == "read");
}

TEST_CASE("the broker's own name works, key properties in any order, query ignored") {
  auto r = read("/api/jolokia/read/org.apache.activemq:destinationName=orders,type=Broker,destinationType=Queue,brokerName=tandem-a/ConsumerCount?ignoreErrors=true");
  CHECK(r["status"] == 200);
  CHECK(r["value"] == 3);
}

TEST_CASE("without an attribute every attribute is returned") {
  auto r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Topic,destinationName=prices");
  REQUIRE(r["status"] == 200);
  CHECK(r["value"]["EnqueueCount"] == 7);
  CHECK(r["value"]["DequeueCount"] == 9);
  CHECK(r["value"]["QueueSize"] == 5);
  CHECK(r["value"]["Name"] == "prices");
}

TEST_CASE("the broker MBean sums every destination") {
  auto r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=tandem-a");
  REQUIRE(r["status"] == 200);
  CHECK(r["value"]["TotalMessageCount"] == 48);
  CHECK(r["value"]["TotalConsumerCount"] == 5);
  CHECK(r["value"]["TotalDestinationCount"] == 3);
  CHECK(r["value"]["BrokerName"] == "tandem-a");
}

TEST_CASE("escapes: percent-encoding and Jolokia's !/ for a slash in a name") {
  auto r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,destinationName=a!/b/QueueSize");
  CHECK(r["status"] == 200);
  CHECK(r["value"] == 1);
  r = read("/api/jolokia/read/org.apache.activemq:type=Broker%2CbrokerName=*%2CdestinationType=Queue%2CdestinationName=orders/QueueSize");
  CHECK(r["value"] == 42);
}

TEST_CASE("unknown MBeans, destinations, brokers and attributes are Jolokia errors") {
  auto r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,destinationName=nope/QueueSize");
  CHECK(r["status"] == 404);
  CHECK(r["error_type"] == "javax.management.InstanceNotFoundException");
  CHECK_FALSE(r.contains("value"));
  r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=other,destinationType=Queue,destinationName=orders/QueueSize");
  CHECK(r["status"] == 404);
  r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,destinationName=orders/Bogus");
  CHECK(r["status"] == 404);
  CHECK(r["error_type"] == "javax.management.AttributeNotFoundException");
  CHECK(r["error"].get<std::string>().find("QueueSize") != std::string::npos);
  r = read("/api/jolokia/read/java.lang:type=Memory/HeapMemoryUsage");
  CHECK(r["status"] == 404);
  r = read("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,destinationName=orders/QueueSize/inner");
  CHECK(r["status"] == 400);
  r = read("/api/jolokia/read/org.apache.activemq:type=Broker,bad/QueueSize");
  CHECK(r["status"] == 400);
  r = read("/api/jolokia/read/org.apache.activemq:type=Broker%zz");
  CHECK(r["status"] == 400);
}

TEST_CASE("issue 17: a pattern in destinationName reads every match, keyed by MBean name") {
  const std::string prefix = "/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,";
  auto r = read(prefix + "destinationName=*/QueueSize");
  REQUIRE(r["status"] == 200);
  CHECK(r["value"] == json{{"org.apache.activemq:brokerName=tandem-a,destinationName=orders,destinationType=Queue,type=Broker",
                            {{"QueueSize", 42}}},
                           {"org.apache.activemq:brokerName=tandem-a,destinationName=a/b,destinationType=Queue,type=Broker",
                            {{"QueueSize", 1}}}});
  CHECK(r["request"]["attribute"] == "QueueSize");
  r = read(prefix + "destinationName=ord%3Fr*");
  REQUIRE(r["status"] == 200);
  REQUIRE(r["value"].size() == 1);
  CHECK(r["value"].begin().value()["EnqueueCount"] == 100);  // no attribute: all of them
  CHECK(read(prefix + "destinationName=prices*")["status"] == 404);  // a topic, not a queue
  CHECK(read(prefix + "destinationName=*/Bogus")["status"] == 404);
  CHECK(jolokia::is_pattern("a*"));
  CHECK(jolokia::is_pattern("?"));
  CHECK_FALSE(jolokia::is_pattern("orders"));
}
