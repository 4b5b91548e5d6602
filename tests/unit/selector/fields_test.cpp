// JMS-mapped names read the STOMP headers ActiveMQ's STOMP converter maps them from (the
// table in broker/selector/message_view.h).
#include <doctest/doctest.h>

#include "test_message.h"

namespace tandem::selector::test {
namespace {

TEST_CASE("JMSPriority: the priority header as an int, 4 by default") {
  CHECK(matches("JMSPriority = 4"));
  CHECK(matches("JMSPriority = 7", {{"priority", "7"}}));
  CHECK(matches("JMSPriority > 5", {{"priority", "7"}}));
  CHECK(matches("JMSPriority = 4", {{"priority", "high"}}));  // unconvertible: the default
  CHECK(matches("JMSPriority = 9", {{"priority", "7"}, {"JMSPriority", "9"}}));  // the JMS name wins
}

TEST_CASE("headers ActiveMQ consumes are no properties") {
  const test_message m{{"priority", "7"}, {"type", "t"}, {"persistent", "true"}, {"expires", "5"},
                       {"timestamp", "5"}, {"destination", "/queue/x"}, {"receipt", "r"},
                       {"redelivered", "true"}, {"subscription", "s"}, {"transaction", "tx"}};
  for (const char* name : {"priority", "type", "persistent", "expires", "timestamp", "destination",
                           "receipt", "redelivered", "subscription", "transaction"}) {
    CAPTURE(name);
    CHECK(matches(std::string(name) + " IS NULL", m));
  }
}

TEST_CASE("JMSType and JMSCorrelationID are strings from type and correlation-id") {
  CHECK(matches("JMSType = 'order'", {{"type", "order"}}));
  CHECK(matches("JMSType IS NULL"));
  CHECK(matches("JMSType = 'x'", {{"type", "order"}, {"JMSType", "x"}}));
  CHECK(matches("JMSCorrelationID = 'c-1'", {{"correlation-id", "c-1"}}));
  CHECK(matches("JMSCorrelationID LIKE 'c-%'", {{"correlation-id", "c-1"}}));
  CHECK(matches("JMSCorrelationID IS NULL"));
}

TEST_CASE("JMSTimestamp and JMSExpiration are longs from timestamp and expires") {
  CHECK(matches("JMSTimestamp = 1700000000000", {{"timestamp", "1700000000000"}}));
  CHECK(matches("JMSTimestamp > 0", {{"timestamp", "1700000000000"}}));
  CHECK(matches("JMSExpiration = 0"));
  CHECK(matches("JMSExpiration BETWEEN 1 AND 2000000000000", {{"expires", "1700000000000"}}));
}

TEST_CASE("JMSDeliveryMode is PERSISTENT when persistent is exactly true") {
  CHECK(matches("JMSDeliveryMode = 'PERSISTENT'", {{"persistent", "true"}}));
  CHECK(matches("JMSDeliveryMode = 'NON_PERSISTENT'", {{"persistent", "false"}}));
  CHECK(matches("JMSDeliveryMode = 'NON_PERSISTENT'", {{"persistent", "TRUE"}}));
  CHECK(matches("JMSDeliveryMode = 'NON_PERSISTENT'"));
  CHECK(matches("JMSDeliveryMode = 'PERSISTENT'", {{"JMSDeliveryMode", "2"}}));
  CHECK(matches("JMSDeliveryMode = 'PERSISTENT'", {{"JMSDeliveryMode", "persistent"}}));
  CHECK(matches("JMSDeliveryMode = 'NON_PERSISTENT'", {{"persistent", "true"}, {"JMSDeliveryMode", "1"}}));
}

TEST_CASE("JMSDestination and JMSReplyTo are in ActiveMQ's form") {
  test_message m{{"reply-to", "/temp-queue/r1"}};
  CHECK(matches("JMSDestination = 'queue://orders'", m));
  CHECK(matches("JMSDestination LIKE 'queue://%'", m));
  CHECK(matches("JMSReplyTo = 'temp-queue://r1'", m));
  m.destination_ = "/topic/prices.eu";
  CHECK(matches("JMSDestination = 'topic://prices.eu'", m));
  CHECK(matches("JMSReplyTo IS NULL"));
  CHECK(matches("JMSReplyTo IS NULL", {{"reply-to", "nowhere"}}));
  m.destination_ = std::string(2000, 'q');  // longer than the scratch area: still right
  CHECK(matches("JMSDestination = 'queue://" + std::string(2000, 'q') + "'", m));
  CHECK(to_jms_destination("/queue/a") == "queue://a");
  CHECK(to_jms_destination("/topic/a.b") == "topic://a.b");
  CHECK(to_jms_destination("/temp-topic/t") == "temp-topic://t");
  CHECK(to_jms_destination("/remote-temp-queue/t") == "temp-queue://t");
  CHECK(to_jms_destination("plain") == "queue://plain");
}

TEST_CASE("JMSMessageID, JMSRedelivered and JMSXDeliveryCount come from the broker") {
  test_message m;
  CHECK(matches("JMSMessageID = 'ID:tandem-1'", m));
  CHECK(matches("JMSRedelivered = FALSE", m));
  CHECK(matches("NOT JMSRedelivered", m));
  CHECK(matches("JMSXDeliveryCount = 1", m));
  m.redeliveries_ = 2;
  CHECK(matches("JMSRedelivered", m));
  CHECK(matches("JMSXDeliveryCount = 3", m));
  CHECK(matches("JMSXDeliveryCount > 2", m));
}

TEST_CASE("message groups: JMSXGroupID and JMSXGroupSeq") {
  CHECK(matches("JMSXGroupID = 'g1'", {{"JMSXGroupID", "g1"}}));
  CHECK(matches("JMSXGroupID IS NULL"));
  CHECK(matches("JMSXGroupSeq = 0"));
  CHECK(matches("JMSXGroupSeq = 3", {{"JMSXGroupSeq", "3"}}));
  CHECK(matches("NOT JMSXGroupFirstForConsumer"));
}

TEST_CASE("JMS names are case sensitive: other spellings are headers") {
  CHECK(matches("jmspriority IS NULL"));
  CHECK(matches("jmspriority = 9", {{"jmspriority", "9"}}));
  CHECK(matches("JMSXUserID IS NULL", {{"JMSXUserID", "mallory"}}));
}

}  // namespace
}  // namespace tandem::selector::test
