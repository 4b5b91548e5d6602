#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tools/drill/history.h"

using namespace tandem::drill;

TEST_CASE("a body matches only its own producer, seq and size") {
  auto b = make_body(3, 42, 100);
  CHECK(b.size() == 100);
  CHECK(b.starts_with("p3:42:"));
  CHECK(body_matches(b, 3, 42, 100));
  CHECK_FALSE(body_matches(b, 3, 43, 100));
  CHECK_FALSE(body_matches(b, 2, 42, 100));
  CHECK_FALSE(body_matches(b, 3, 42, 99));
  auto flipped = b;
  flipped[70] ^= 1;
  CHECK_FALSE(body_matches(flipped, 3, 42, 100));
  // Smaller than the prefix: cut, still checked.
  CHECK(make_body(1, 123456, 4) == "p1:1");
  CHECK(body_matches(make_body(1, 123456, 4), 1, 123456, 4));
}

TEST_CASE("a receipted message that never arrives is lost") {
  history h(2);
  h.on_send(0, 1);
  h.on_send(0, 2);
  h.on_receipt(0, 1);
  h.on_receipt(0, 2);
  h.on_delivery(0, 0, 1, false, true);
  CHECK(h.receipted_undelivered() == 1);
  auto v = h.compute();
  CHECK(v.sent == 2);
  CHECK(v.receipted == 2);
  CHECK(v.delivered == 1);
  CHECK(v.lost == 1);
  REQUIRE(v.lost_examples.size() == 1);
  CHECK(v.lost_examples[0] == "p0:2");
  CHECK(v.failed());
}

TEST_CASE("an unreceipted message may be missing or delivered without failing the run") {
  history h(1);
  h.on_send(0, 1);
  h.on_send(0, 2);
  h.on_receipt(0, 1);
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(0, 0, 2, false, true);  // its RECEIPT was lost on the way back
  auto v = h.compute();
  CHECK(v.lost == 0);
  CHECK(v.delivered_unreceipted == 1);
  CHECK_FALSE(v.failed());
}

TEST_CASE("duplicates are counted and one without a flag fails the run") {
  history h(1);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    h.on_send(0, s);
    h.on_receipt(0, s);
  }
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(0, 0, 2, false, true);
  h.on_delivery(0, 0, 3, false, true);
  h.on_delivery(0, 0, 2, true, true);   // redelivered after a failover, flagged
  auto flagged_only = h.compute();
  CHECK(flagged_only.duplicates == 1);
  CHECK(flagged_only.duplicates_unflagged == 0);
  CHECK_FALSE(flagged_only.failed());
  h.on_delivery(0, 0, 3, false, true);  // not flagged: a consumer cannot tell it is a copy
  h.on_delivery(0, 0, 3, true, true);
  auto v = h.compute();
  CHECK(v.duplicates == 3);
  CHECK(v.duplicated_messages == 2);
  CHECK(v.duplicates_unflagged == 1);
  CHECK(v.unflagged_examples == std::vector<std::string>{"p0:3"});
  CHECK(v.duplicate_events.size() == 3);
  CHECK(v.deliveries == 6);
  CHECK(v.lost == 0);
  CHECK(v.failed());
}

TEST_CASE("the verdict keeps when each lost message was receipted and each duplicate delivered") {
  history h(1);
  const auto t0 = clock_type::now();
  for (std::uint64_t s = 1; s <= 3; ++s) h.on_send(0, s);
  h.on_receipt(0, 1, t0);
  h.on_receipt(0, 2, t0 + std::chrono::seconds(2));
  h.on_delivery(0, 0, 1, false, true, t0 + std::chrono::seconds(1));
  h.on_delivery(0, 0, 1, true, true, t0 + std::chrono::seconds(5));
  auto v = h.compute();
  REQUIRE(v.lost_receipt_times.size() == 1);
  CHECK(v.lost_receipt_times[0] == t0 + std::chrono::seconds(2));
  REQUIRE(v.duplicate_events.size() == 1);
  CHECK(v.duplicate_events[0].first == t0 + std::chrono::seconds(5));
  CHECK(v.duplicate_events[0].second);
}

TEST_CASE("a stream marked unordered is not checked for order") {
  history h(2);
  h.set_unordered(1);
  for (std::uint64_t s = 1; s <= 3; ++s) h.on_send(1, s);
  h.on_delivery(0, 1, 3, false, true);
  h.on_delivery(0, 1, 1, false, true);
  CHECK(h.compute().order_violations == 0);
}

TEST_CASE("a first delivery behind a later seq of the same producer is an order violation") {
  history h(1);
  for (std::uint64_t s = 1; s <= 4; ++s) h.on_send(0, s);
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(0, 0, 3, false, true);
  h.on_delivery(0, 0, 2, false, true);  // out of order, not flagged
  h.on_delivery(0, 0, 4, false, true);
  auto v = h.compute();
  CHECK(v.order_violations == 1);
  REQUIRE(v.order_examples.size() == 1);
  CHECK(v.order_examples[0] == "p0:2 after p0:3 on consumer 0");
  CHECK(v.failed());
}

TEST_CASE("order is per consumer and a flagged redelivery may come back out of order") {
  history h(1);
  for (std::uint64_t s = 1; s <= 4; ++s) h.on_send(0, s);
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(1, 0, 3, false, true);
  h.on_delivery(0, 0, 2, false, true);  // consumer 0 has seen only 1
  h.on_delivery(1, 0, 4, false, true);
  CHECK(h.compute().order_violations == 0);

  history g(1);
  for (std::uint64_t s = 1; s <= 3; ++s) g.on_send(0, s);
  g.on_delivery(0, 0, 3, false, true);
  g.on_delivery(0, 0, 1, true, true);
  CHECK(g.compute().order_violations == 0);
}

TEST_CASE("a message never sent, or with a different body, fails the run") {
  history h(2);
  h.on_send(0, 1);
  h.on_delivery(0, 0, 2, false, true);
  h.on_delivery(0, 7, 1, false, true);
  h.on_delivery(0, 0, 1, false, false);
  auto v = h.compute();
  CHECK(v.unexpected == 2);
  CHECK(v.corrupted == 1);
  CHECK(v.failed());
}

TEST_CASE("resends count as attempts of one message and a second receipt changes nothing") {
  history h(1);
  h.on_send(0, 1);
  h.on_send(0, 1);
  h.on_receipt(0, 1);
  h.on_receipt(0, 1);
  CHECK(h.receipted() == 1);
  auto v = h.compute();
  CHECK(v.sent == 1);
  CHECK(v.send_attempts == 2);
  CHECK(v.receipted == 1);
}

// --workload scheduled (policy_workload.h): a repeating schedule must fire n times.
TEST_CASE("a message expected n times is lost below n and duplicated beyond n unflagged deliveries") {
  history h(1);
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    h.on_send(0, seq, 3);
    h.on_receipt(0, seq);
  }
  // seq 1: three firings, one flagged copy of the first in between: all fine.
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(0, 0, 1, true, true);
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(0, 0, 1, false, true);
  // seq 2: two firings only.
  h.on_delivery(0, 0, 2, false, true);
  h.on_delivery(0, 0, 2, false, true);
  // seq 3: four unflagged deliveries: a firing done twice.
  for (int i = 0; i < 4; ++i) h.on_delivery(0, 0, 3, false, true);
  CHECK(h.receipted_undelivered() == 1);
  auto v = h.compute();
  CHECK(v.lost == 1);
  REQUIRE(v.lost_examples.size() == 1);
  CHECK(v.lost_examples[0] == "p0:2");
  CHECK(v.duplicates == 2);  // seq 1's flagged copy and seq 3's fourth delivery
  CHECK(v.duplicates_unflagged == 1);
  REQUIRE(v.unflagged_examples.size() == 1);
  CHECK(v.unflagged_examples[0] == "p0:3");
  // The events the drill attributes to fault kinds say the same: one unflagged, seq 3's.
  REQUIRE(v.duplicate_events.size() == 2);
  CHECK(v.duplicate_events[0].second);
  CHECK_FALSE(v.duplicate_events[1].second);
  CHECK(v.failed());
}

TEST_CASE("order is checked per scope and not at all with no_order_check") {
  history h(1);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) h.on_send(0, seq);
  // Scope 7 (a message group), delivered by whichever consumer: 3 then 1 is a violation.
  h.on_delivery(7, 0, 3, false, true);
  h.on_delivery(7, 0, 1, false, true);
  // The DLQ: any order.
  h.on_delivery(history::no_order_check, 0, 4, false, true);
  h.on_delivery(history::no_order_check, 0, 2, false, true);
  auto v = h.compute();
  CHECK(v.order_violations == 1);
}

TEST_CASE("a policy violation fails the run") {
  history h(1);
  h.on_send(0, 1);
  h.on_receipt(0, 1);
  h.on_delivery(0, 0, 1, false, true);
  CHECK_FALSE(h.compute().failed());
  h.on_policy_violation("p0:1 dead-lettered, although NACKed at most once");
  auto v = h.compute();
  CHECK(v.policy_violations == 1);
  CHECK(v.failed());
}

TEST_CASE("a message delivered again after its ACK was receipted fails the run, even flagged") {
  history h(1);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    h.on_send(0, s);
    h.on_receipt(0, s);
    h.on_delivery(0, 0, s, false, true);
  }
  // seq 1: ACK receipted, then back (flagged redelivered: a consumer could tell, but the
  // broker had promised it was gone). seq 2: ACK not receipted (connection lost), back: fine.
  h.on_ack_receipted(0, 1);
  h.on_delivery(0, 0, 1, true, true);
  h.on_delivery(0, 0, 2, true, true);
  h.on_ack_receipted(0, 3);
  auto v = h.compute();
  CHECK(v.acks_receipted == 2);
  CHECK(v.acked_redelivered == 1);
  REQUIRE(v.acked_redelivered_examples.size() == 1);
  CHECK(v.acked_redelivered_examples[0] == "p0:1");
  CHECK(v.acked_redelivered_times.size() == 1);
  CHECK(v.duplicates == 2);
  CHECK(v.duplicates_unflagged == 0);
  CHECK(v.failed());
}

TEST_CASE("a message expected several times may come back after a receipted ACK") {
  history h(1);
  h.on_send(0, 1, 3);
  h.on_receipt(0, 1);
  h.on_delivery(0, 0, 1, false, true);
  h.on_ack_receipted(0, 1);
  h.on_delivery(0, 0, 1, false, true);
  h.on_delivery(0, 0, 1, false, true);
  auto v = h.compute();
  CHECK(v.acked_redelivered == 0);
  CHECK_FALSE(v.failed());
}
