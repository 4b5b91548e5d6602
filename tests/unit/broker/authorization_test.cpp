// broker/engine/authorization: ActiveMQ-style wildcard entries and the groups they allow.
// Regression (issue 17, finding 7): any login could read any queue, dead-letter queues too.
#include <doctest/doctest.h>

#include "broker/engine/authorization.h"

using namespace tandem::broker;

TEST_CASE("patterns match element by element: '*' one, '>' the rest") {
  CHECK(destination_matches("orders", "orders"));
  CHECK_FALSE(destination_matches("orders", "orders.eu"));
  CHECK(destination_matches("orders.*", "orders.eu"));
  CHECK_FALSE(destination_matches("orders.*", "orders.eu.fr"));
  CHECK_FALSE(destination_matches("orders.*", "orders"));
  CHECK(destination_matches("orders.>", "orders.eu.fr"));
  CHECK(destination_matches("orders.>", "orders"));
  CHECK(destination_matches(">", "anything.at.all"));
  CHECK(destination_matches("*.eu", "orders.eu"));
  CHECK_FALSE(destination_matches("*.eu", "orders.us"));
  CHECK_FALSE(destination_matches("DLQ.>", "orders"));
  CHECK(destination_matches("DLQ.>", "DLQ.orders"));
}

TEST_CASE("groups of every matching entry are united; queues and topics are apart") {
  authorization_map m({{false, ">", {"ops"}, {"ops"}, {"ops"}},
                       {false, "orders.>", {"shipping"}, {"shop"}, {"shop"}},
                       {true, "prices.*", {"anonymous"}, {"pricer"}, {"pricer"}}});
  CHECK(m.allowed("/queue/orders.eu", permission::read) == std::set<std::string>{"ops", "shipping"});
  CHECK(m.allowed("/queue/DLQ.orders.eu", permission::read) == std::set<std::string>{"ops"});
  CHECK(m.permits({"shipping"}, "/queue/orders.eu", permission::read));
  CHECK_FALSE(m.permits({"shipping"}, "/queue/orders.eu", permission::write));
  CHECK_FALSE(m.permits({"shipping"}, "/queue/DLQ.orders.eu", permission::read));
  CHECK(m.permits({"anonymous"}, "/topic/prices.eur", permission::read));
  CHECK_FALSE(m.permits({"anonymous"}, "/queue/prices.eur", permission::read));  // a queue, not the topic
  CHECK(m.allowed("/topic/news", permission::read).empty());  // no entry: nobody
  CHECK_FALSE(m.permits({}, "/queue/orders", permission::read));
}
