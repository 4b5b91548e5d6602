// The engine on a store whose disk answers late: no session waits for another's read
// (issue 17, finding 8). The store is on tests/support's fault_file_system with slow reads,
// as on a hung NFS or CephFS mount; the test thread is the io thread (engine_fixture.h).
#include <chrono>

#include "tests/support/fault_file_system.h"
#include "tests/unit/broker/engine_fixture.h"

namespace tandem::broker::test {

using namespace std::chrono_literals;

namespace {

// Three persistent messages on /queue/cold, then a restart: the body cache is empty, so a
// consumer's first delivery must read its body from the segment.
void fill_cold_queue(fixture& fx) {
  client producer(fx, connected);
  for (int i = 0; i < 3; ++i) producer.send("/queue/cold", "body " + std::to_string(i), {{"persistent", "true"}});
  producer.close();
  fx.restart();
}

}  // namespace

TEST_CASE("regression (issue 17, finding 8): a body read blocked 5 s stalls no other session") {
  tandem::test::fault_file_system disk;
  fixture fx(fixture::default_config(), true, disk);
  fill_cold_queue(fx);
  disk.slow_reads(5s);

  client consumer(fx, connected);
  client other(fx, connected);
  const auto t0 = std::chrono::steady_clock::now();
  consumer.frame("SUBSCRIBE", {{"id", "s"}, {"destination", "/queue/cold"}, {"ack", "auto"}});
  // Before the fix the pread ran here, on the io thread, and this waited the full 5 s.
  REQUIRE(disk.wait_for_slow_read(2s));
  other.send("/queue/other", "while the disk hangs", {{"persistent", "true"}});
  const auto took = std::chrono::steady_clock::now() - t0;
  MESSAGE("SEND->RECEIPT while a read hangs: "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(disk.slow_reads_waiting() > 0);  // the RECEIPT came while the read still waited
  CHECK(took < 5s);
  CHECK(consumer.messages().empty());

  disk.slow_reads(0ms);
  REQUIRE(consumer.wait_messages(3));
  CHECK(consumer.bodies() == strings({"body 0", "body 1", "body 2"}));
}

TEST_CASE("a backlog read off the io thread is delivered whole and in order, in client mode too") {
  tandem::test::fault_file_system disk;
  fixture fx(fixture::default_config(), true, disk);
  {
    client producer(fx, connected);
    for (int i = 0; i < 200; ++i)
      producer.send("/queue/backlog", "m" + std::to_string(i), {{"persistent", "true"}});
  }
  fx.restart();
  client consumer(fx, connected);
  consumer.subscribe("s", "/queue/backlog", "client-individual", {{"activemq.prefetchSize", "1000"}});
  REQUIRE(consumer.wait_messages(200));
  auto bodies = consumer.bodies();
  for (int i = 0; i < 200; ++i) CHECK(bodies[static_cast<std::size_t>(i)] == "m" + std::to_string(i));
  CHECK(disk.count(tandem::test::op::read) > 0);  // they were read from the segment
  consumer.frame("ACK", {{"id", consumer.ack_id(0)}});
  fx.settle();
  CHECK(fx.destination("/queue/backlog")["inflight"] == 199);
}

TEST_CASE("a selector consumer on a cold queue gets its messages read off the io thread") {
  tandem::test::fault_file_system disk;
  fixture fx(fixture::default_config(), true, disk);
  {
    client producer(fx, connected);
    for (int i = 0; i < 10; ++i)
      producer.send("/queue/sel", "m" + std::to_string(i),
                    {{"persistent", "true"}, {"colour", i % 2 == 0 ? "red" : "blue"}});
  }
  fx.restart();
  disk.slow_reads(300ms);
  client consumer(fx, connected);
  consumer.subscribe("s", "/queue/sel", "auto", {{"selector", "colour = 'blue'"}});
  REQUIRE(consumer.wait_messages(5));
  CHECK(consumer.bodies() == strings({"m1", "m3", "m5", "m7", "m9"}));
}

}  // namespace tandem::broker::test
