// Expiry on a store whose disk answers late (issue 17, finding 8): the body of an expired
// message that is not in memory (for the advisory and the dead-letter copy) is read on the
// store's reader thread, the message is held back from consumers meanwhile, and a read that
// completes after the message left the queue writes nothing. The test thread is the io thread.
#include <chrono>

#include "tests/support/fault_file_system.h"
#include "tests/unit/broker/engine_fixture.h"

namespace tandem::broker::test {

using namespace std::chrono_literals;

namespace {

engine_config expired_to_dlq() {
  auto cfg = fixture::default_config();
  cfg.expired_to_dlq = true;
  cfg.dead_letter_strategy = "individual";
  return cfg;
}

// Two persistent messages on /queue/exp, the first expiring in 1 s, then a restart (the body
// cache is empty) and 2 s later: the first is due to expire and its body is on disk only.
void fill_cold_expiring_queue(fixture& fx) {
  client producer(fx, connected);
  producer.send("/queue/exp", "stale", {{"persistent", "true"}, {"expires", std::to_string(fx.now_ms + 1000)}});
  producer.send("/queue/exp", "fresh", {{"persistent", "true"}});
  producer.close();
  fx.restart();
  fx.now_ms += 2000;
}

}  // namespace

TEST_CASE("regression (issue 17, finding 8): an expiry whose body read hangs 5 s stalls no other session") {
  tandem::test::fault_file_system disk;
  fixture fx(expired_to_dlq(), true, disk);
  fill_cold_expiring_queue(fx);
  disk.slow_reads(5s);

  client other(fx, connected);
  const auto t0 = std::chrono::steady_clock::now();
  // Before the fix the tick's expiry scan read the body here, on the io thread, for 5 s.
  fx.eng->tick(std::chrono::steady_clock::now());
  REQUIRE(disk.wait_for_slow_read(2s));
  other.send("/queue/other", "while the disk hangs", {{"persistent", "true"}});
  const auto took = std::chrono::steady_clock::now() - t0;
  MESSAGE("tick + SEND->RECEIPT while an expiry's read hangs: "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(disk.slow_reads_waiting() > 0);  // the RECEIPT came while the read still waited
  CHECK(took < 5s);

  // A consumer that arrives meanwhile never gets the expired message, and its dispatch does
  // not ask for the body a second time.
  client consumer(fx, connected);
  consumer.subscribe("s", "/queue/exp");
  disk.slow_reads(0ms);
  REQUIRE(consumer.wait_messages(1));
  fx.settle();
  CHECK(consumer.bodies() == strings({"fresh"}));
  CHECK(fx.destination("/queue/exp")["expired"] == 1);
  const auto dlq = fx.destination("/queue/DLQ.exp");
  REQUIRE(dlq.is_object());
  CHECK(dlq["pending"] == 1);

  // The move to the DLQ was journaled: it is there after a restart, and only there.
  fx.restart();
  client after(fx, connected);
  after.subscribe("d", "/queue/DLQ.exp");
  REQUIRE(after.wait_messages(1));
  CHECK(after.bodies() == strings({"stale"}));
  CHECK(after.messages()[0].get("dlqDeliveryFailureCause") == "expired");
  fx.settle();
  CHECK(fx.destination("/queue/exp")["pending"] == 0);  // "fresh" was consumed, "stale" moved
}

TEST_CASE("an expiry whose body read completes after a purge writes nothing") {
  tandem::test::fault_file_system disk;
  fixture fx(expired_to_dlq(), true, disk);
  fill_cold_expiring_queue(fx);
  disk.slow_reads(300ms);
  fx.eng->tick(std::chrono::steady_clock::now());
  REQUIRE(disk.wait_for_slow_read(2s));
  bool purged = false;
  REQUIRE(fx.eng->purge("/queue/exp", [&](std::error_code ec, std::uint64_t) { purged = !ec; }));
  disk.slow_reads(0ms);
  REQUIRE(fx.pump([&] { return purged; }));
  fx.settle();
  CHECK(fx.destination("/queue/exp")["pending"] == 0);
  CHECK(fx.destination("/queue/exp")["expired"] == 0);  // it left by the purge, not by expiry
  const auto dlq = fx.destination("/queue/DLQ.exp");
  CHECK((dlq.is_null() || dlq["pending"] == 0));

  fx.restart();  // nothing was journaled into the DLQ either
  fx.settle();
  const auto dlq_after = fx.destination("/queue/DLQ.exp");
  CHECK((dlq_after.is_null() || dlq_after["pending"] == 0));
}

}  // namespace tandem::broker::test
