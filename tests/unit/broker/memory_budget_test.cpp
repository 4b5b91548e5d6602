// broker/memory_budget.h: the accounting of max_memory_bytes over messages, partial frames and
// write queues, and the waiters it wakes; then the engine's use of it (issue 17).
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "broker/memory_budget.h"
#include "broker/read_buffer.h"
#include "engine_fixture.h"

namespace tandem::broker {
namespace {

TEST_CASE("the budget sums messages, partial frames and write queues against one limit") {
  std::uint64_t messages = 100;
  memory_budget b(1000, [&] { return messages; });
  CHECK(b.used() == 100);
  std::uint64_t held = 0;
  held = b.reading(held, 300);
  held = b.reading(held, 500);  // the same frame grew: replaced, not added
  CHECK(held == 500);
  CHECK(b.partial_frame_bytes() == 500);
  b.queued(200);
  CHECK(b.write_queue_bytes() == 200);
  CHECK(b.connection_bytes() == 700);
  CHECK(b.used() == 800);
  CHECK_FALSE(b.full());
  messages = 300;  // the engine's count is read, not copied
  CHECK(b.used() == 1000);
  CHECK(b.full());
  b.written(150);
  CHECK(b.used() == 850);
  held = b.reading(held, 0);  // the frame completed
  CHECK(b.partial_frame_bytes() == 0);
  CHECK(b.used() == 350);
  std::uint64_t buffer = 0;
  buffer = b.buffering(buffer, 4096);  // a connection's read buffer counts too
  buffer = b.buffering(buffer, 65536);
  CHECK(b.read_buffer_bytes() == 65536);
  CHECK(b.connection_bytes() == 50 + 65536);
  CHECK(b.used() == 300 + 50 + 65536);
  b.buffering(buffer, 0);  // closed
  CHECK(b.read_buffer_bytes() == 0);
}

TEST_CASE("max_memory_counts_baseline: the process's RSS at serving start counts against the limit") {
  std::uint64_t messages = 0;
  memory_budget b(1000, [&] { return messages; });
  b.reserve_baseline(600);
  CHECK(b.baseline_bytes() == 600);
  CHECK(b.used() == 600);
  CHECK_FALSE(b.full());
  messages = 399;
  CHECK_FALSE(b.full());
  b.reading(0, 1);  // one byte of a partial frame: 600 + 399 + 1
  CHECK(b.full());
  CHECK(b.connection_bytes() == 1);  // the baseline is not a connection's
}

TEST_CASE("TLS and WebSocket buffers count against the limit and wake a waiter when given back") {
  memory_budget b(200 * 1024, [] { return std::uint64_t{0}; });
  std::uint64_t tls = 0, ws = 0;
  tls = b.transport_buffering(tls, 4 * 17 * 1024);  // a TLS connection after its handshake
  ws = b.transport_buffering(ws, 1536);              // a WebSocket one after its upgrade
  ws = b.transport_buffering(ws, 64 * 1024 + 1536);  // ... and its first read
  CHECK(b.transport_buffer_bytes() == 4 * 17 * 1024 + 64 * 1024 + 1536);
  CHECK(b.connection_bytes() == b.transport_buffer_bytes());
  CHECK(b.used() == 4 * 17 * 1024 + 64 * 1024 + 1536);
  std::uint64_t frame = 0;
  frame = b.reading(frame, 200 * 1024 - b.used());
  CHECK(b.full());
  bool woken = false;
  b.wait([&] { woken = true; });
  tls = b.transport_buffering(tls, 0);  // the TLS connection closed
  CHECK(woken);
  CHECK(b.transport_buffer_bytes() == 64 * 1024 + 1536);
  CHECK_FALSE(b.full());
}

TEST_CASE("a read buffer starts small, grows when a read fills it, shrinks after a run of small reads") {
  read_buffer rb;
  CHECK(rb.capacity() == read_buffer::small_bytes);
  CHECK(rb.prepare(false).size() == read_buffer::small_bytes);
  rb.filled(100);  // a heart-beat, an ACK: stays small
  CHECK(rb.prepare(false).size() == read_buffer::small_bytes);
  rb.filled(read_buffer::small_bytes);  // filled: the client streams
  CHECK(rb.prepare(false).size() == read_buffer::large_bytes);
  for (unsigned i = 0; i + 1 < read_buffer::shrink_after_small_reads; ++i) {
    rb.filled(200);
    CHECK(rb.prepare(false).size() == read_buffer::large_bytes);  // a pause between bursts keeps it
  }
  rb.filled(200);
  CHECK(rb.prepare(false).size() == read_buffer::small_bytes);  // the run of small reads gives it back
}

TEST_CASE("a medium read ends a run of small ones; a full budget shrinks at once and stops growth") {
  read_buffer rb;
  rb.filled(read_buffer::small_bytes);
  CHECK(rb.prepare(false).size() == read_buffer::large_bytes);
  for (unsigned i = 0; i + 1 < read_buffer::shrink_after_small_reads; ++i) rb.filled(10);
  rb.filled(read_buffer::small_bytes + 1);  // more than the small buffer holds: still streaming
  rb.filled(10);
  CHECK(rb.prepare(false).size() == read_buffer::large_bytes);
  CHECK(rb.prepare(true).size() == read_buffer::small_bytes);  // memory is short: give it back
  rb.filled(read_buffer::small_bytes);
  CHECK(rb.prepare(true).size() == read_buffer::small_bytes);  // and do not grow while short
  CHECK(rb.prepare(false).size() == read_buffer::small_bytes);  // the fill was seen while short: forgotten
  auto bytes = rb.prepare(false);
  bytes[0] = 'x';
  auto got = rb.filled(1);
  CHECK(got.size() == 1);
  CHECK(got.data() == bytes.data());
}

TEST_CASE("releases never take a count below zero") {
  memory_budget b(1000, [] { return std::uint64_t{0}; });
  b.queued(10);
  b.written(50);
  CHECK(b.write_queue_bytes() == 0);
  b.reading(40, 0);
  CHECK(b.partial_frame_bytes() == 0);
  b.buffering(4096, 0);
  CHECK(b.read_buffer_bytes() == 0);
}

TEST_CASE("waiters are woken once, oldest first, only when the budget has room") {
  std::uint64_t messages = 1000;
  memory_budget b(1000, [&] { return messages; });
  std::vector<int> woken;
  b.wait([&] { woken.push_back(1); });
  auto second = b.wait([&] { woken.push_back(2); });
  b.wait([&] { woken.push_back(3); });
  CHECK(b.waiting() == 3);
  CHECK(b.waits_total() == 3);
  b.cancel(second);  // a connection that closed while waiting
  b.wake_if_room();
  CHECK(woken.empty());  // still full
  messages = 999;
  b.wake_if_room();
  CHECK(woken == std::vector<int>{1, 3});
  CHECK(b.waiting() == 0);
  b.wake_if_room();
  CHECK(woken.size() == 2);  // woken once
}

TEST_CASE("bytes written or a frame completed wake the waiters") {
  memory_budget b(100, [] { return std::uint64_t{0}; });
  b.queued(100);
  int wakes = 0;
  b.wait([&] { ++wakes; });
  b.written(1);
  CHECK(wakes == 1);
  std::uint64_t held = b.reading(0, 10);
  b.wait([&] { ++wakes; });
  b.reading(held, 0);
  CHECK(wakes == 2);
}

TEST_CASE("shared across threads (threads > 1): counts from many threads add up, a waiter is woken from another thread") {
  std::uint64_t messages = 100;  // the owner's count: read on this (the owner's) thread only
  memory_budget b(1 << 20, [&] { return messages; });
  b.share_across_threads();
  CHECK(b.shared());
  std::vector<std::thread> connections;
  std::atomic<bool> below_messages{false};
  for (int t = 0; t < 4; ++t) {
    connections.emplace_back([&b, &below_messages] {
      std::uint64_t held = 0, buffer = 0;
      for (int i = 0; i < 20000; ++i) {
        held = b.reading(held, static_cast<std::uint64_t>(i % 97));
        buffer = b.buffering(buffer, i % 2 ? 4096 : 65536);
        b.queued(10);
        b.written(10);
        if (b.used() < 100) below_messages = true;  // others see the owner's count as last looked at
      }
      b.reading(held, 0);
      b.buffering(buffer, 0);
    });
  }
  for (auto& t : connections) t.join();
  CHECK_FALSE(below_messages.load());
  CHECK(b.connection_bytes() == 0);
  CHECK(b.used() == 100);

  // Full, a waiter registers; another thread gives bytes back and the wake runs there.
  std::uint64_t big = b.reading(0, 1 << 20);
  REQUIRE(b.full());
  std::atomic<int> woken{0};
  b.wait([&] { ++woken; });
  CHECK(b.waiting() == 1);
  std::thread releaser([&] { big = b.reading(big, 0); });
  releaser.join();
  CHECK(woken.load() == 1);
  CHECK(b.waiting() == 0);
  // Room already there when it registers (freed between full() and wait()): woken at once.
  b.wait([&] { ++woken; });
  CHECK(woken.load() == 2);
}

TEST_CASE("a non-persistent SEND waits while connections' buffers fill the budget, and goes on when they drain") {
  auto cfg = test::fixture::default_config();
  cfg.max_memory_bytes = 4096;
  cfg.send_timeout = std::chrono::milliseconds(5000);
  test::fixture fx(cfg);
  test::client p(fx, test::connected);
  auto& budget = fx.eng->memory();
  // Another connection holds a partial frame as large as the whole budget.
  std::uint64_t held = budget.reading(0, 4096);
  p.frame("SEND", {{"destination", "/queue/nonp"}, {"receipt", "1"}}, "hello");
  CHECK(p.sink.paused);
  CHECK_FALSE(p.has_receipt("1"));
  auto conns = fx.eng->connections_json();
  REQUIRE(conns.size() == 1);
  CHECK(conns[0]["blocked_on"].get<std::string>().find("partial frames") != std::string::npos);
  // A persistent SEND is not held in memory: the budget does not stop it.
  test::client q(fx, test::connected);
  q.send("/queue/pers", "durable", {{"persistent", "true"}});
  // The partial frame completes (or its connection closes): the held SEND is taken.
  budget.reading(held, 0);
  fx.eng->tick(std::chrono::steady_clock::now());
  REQUIRE(p.wait_receipt("1"));
  CHECK_FALSE(p.sink.paused);
  CHECK(budget.message_bytes() > 0);  // the message is held now, and counted
}

TEST_CASE("the engine wakes connections waiting on the budget when an ACK frees messages") {
  auto cfg = test::fixture::default_config();
  cfg.max_memory_bytes = 2048;
  test::fixture fx(cfg);
  test::client p(fx, test::connected), c(fx, test::connected);
  p.send("/queue/held", std::string(3000, 'x'));  // taken below the limit, now above it
  auto& budget = fx.eng->memory();
  REQUIRE(budget.full());
  int wakes = 0;
  budget.wait([&] { ++wakes; });
  c.subscribe("s", "/queue/held", "client");
  REQUIRE(c.wait_messages(1));
  CHECK(wakes == 0);  // delivered, not acked: still held
  c.frame("ACK", {{"id", c.ack_id()}});
  CHECK_FALSE(budget.full());
  CHECK(wakes == 1);
}

}  // namespace
}  // namespace tandem::broker
