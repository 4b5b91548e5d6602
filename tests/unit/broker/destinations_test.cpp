// broker/engine/destinations.h: ActiveMQ's wildcard, composite, virtual topic and temporary
// destination names (issue 15).
#include <doctest/doctest.h>

#include "broker/engine/destinations.h"

using namespace tandem::broker::detail;

TEST_CASE("a '*' element matches exactly one element") {
  CHECK(wildcard_matches("/topic/a.*", "/topic/a.b"));
  CHECK_FALSE(wildcard_matches("/topic/a.*", "/topic/a.b.c"));
  CHECK_FALSE(wildcard_matches("/topic/a.*", "/topic/a"));
  CHECK(wildcard_matches("/topic/*.b", "/topic/x.b"));
  CHECK_FALSE(wildcard_matches("/topic/*.b", "/topic/x.c"));
}

TEST_CASE("a final '>' matches one or more elements, not zero (ActiveMQ's PrefixDestinationFilter)") {
  CHECK(wildcard_matches("/topic/a.>", "/topic/a.b"));
  CHECK(wildcard_matches("/topic/a.>", "/topic/a.b.c"));
  CHECK_FALSE(wildcard_matches("/topic/a.>", "/topic/a"));
  CHECK_FALSE(wildcard_matches("/topic/a.>", "/topic/ab.c"));
  CHECK(wildcard_matches("/topic/>", "/topic/anything.at.all"));
}

TEST_CASE("wildcards match only within the same kind and only whole elements") {
  CHECK_FALSE(wildcard_matches("/topic/a.*", "/queue/a.b"));
  CHECK_FALSE(wildcard_matches("/topic/a*", "/topic/ab"));
  CHECK(wildcard_matches("/topic/a.b", "/topic/a.b"));
  CHECK(has_wildcard("/topic/a.*"));
  CHECK(has_wildcard("/queue/>"));
  CHECK_FALSE(has_wildcard("/topic/a*b.c"));
}

TEST_CASE("a composite destination splits at commas") {
  auto parts = split_composite("/queue/a,/topic/b");
  REQUIRE(parts.size() == 2);
  CHECK(parts[0] == "/queue/a");
  CHECK(parts[1] == "/topic/b");
  CHECK(split_composite("/queue/a").size() == 1);
}

TEST_CASE("a composite subscription covers each queue a part names or matches") {
  CHECK(subscription_covers("/queue/a", "/queue/a"));
  CHECK_FALSE(subscription_covers("/queue/a", "/queue/ab"));
  CHECK(subscription_covers("/queue/a,/queue/b", "/queue/b"));
  CHECK(subscription_covers("/queue/a,/queue/jobs.>", "/queue/jobs.eu"));
  CHECK_FALSE(subscription_covers("/queue/a,/queue/jobs.>", "/queue/jobs"));
  CHECK_FALSE(subscription_covers("/queue/a,/queue/b", "/queue/a,/queue/b"));  // the whole is no queue
  CHECK_FALSE(subscription_covers("/queue/a,/queue/b", "/topic/a"));
}

TEST_CASE("virtual topic consumer queues are Consumer.<one element>.VirtualTopic.X") {
  CHECK(virtual_topic_name("/topic/VirtualTopic.Orders") == "VirtualTopic.Orders");
  CHECK(virtual_topic_name("/topic/Orders").empty());
  CHECK(virtual_topic_name("/queue/VirtualTopic.Orders").empty());
  CHECK(is_virtual_topic_queue("/queue/Consumer.A.VirtualTopic.Orders", "VirtualTopic.Orders"));
  CHECK_FALSE(is_virtual_topic_queue("/queue/Consumer.A.B.VirtualTopic.Orders", "VirtualTopic.Orders"));
  CHECK_FALSE(is_virtual_topic_queue("/queue/Consumer..VirtualTopic.Orders", "VirtualTopic.Orders"));
  CHECK_FALSE(is_virtual_topic_queue("/queue/Consumer.A.VirtualTopic.Other", "VirtualTopic.Orders"));
}

TEST_CASE("a connection's temporary destination gets a broker-wide name") {
  CHECK(global_temp_name("/temp-queue/replies", "ID:b-1-7") == "/remote-temp-queue/ID:b-1-7.replies");
  CHECK(global_temp_name("/temp-topic/t", "ID:b-1-7") == "/remote-temp-topic/ID:b-1-7.t");
  CHECK(global_temp_name("/queue/x", "ID:b-1-7") == "/queue/x");
  CHECK(is_temporary("/remote-temp-queue/ID:b-1-7.replies"));
  CHECK_FALSE(is_temporary("/queue/x"));
}
