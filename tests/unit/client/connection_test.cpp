// client::connection against a fake broker: an in-process STOMP server on a loopback
// ephemeral port, driven by the same single-threaded io_context as the client. The fake
// broker records every frame it reads and answers as each test tells it; nothing sleeps:
// each step waits for a condition with a deadline.
#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

#include "broker/asio.h"
#include "broker/stomp/encoder.h"
#include "broker/stomp/parser.h"
#include "tests/support/async_wait_until.h"
#include "tools/bench/load_generator.h"
#include "tools/client/connection.h"
#include "tools/client/errc.h"

using namespace tandem;
using asio::awaitable;
using asio::ip::tcp;
using boost_error = boost::system::error_code;

namespace {

using tandem::test::async_wait_until;

struct fake_session {
  std::shared_ptr<tcp::socket> socket;
  int number = 0;
  bool open = true;

  void send(const stomp::frame& f) {
    std::string bytes;
    REQUIRE_FALSE(stomp::encode(f, stomp::version::v1_2, bytes));
    boost_error ec;
    asio::write(*socket, asio::buffer(bytes), ec);  // loopback, small: never blocks for long
  }
  void close() {
    boost_error ignored;
    socket->close(ignored);
    open = false;
  }
};

struct received_frame {
  int session;
  stomp::frame frame;
};

// A STOMP server good enough to script: CONNECT gets CONNECTED (or what `on_connect` says),
// any frame with a receipt header gets a RECEIPT when auto_receipt is on.
class fake_broker {
 public:
  explicit fake_broker(asio::io_context& io) : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "127.0.0.1:" + std::to_string(port_); }
  void stop_listening() {
    boost_error ignored;
    acceptor_.close(ignored);
  }

  std::vector<received_frame> frames;
  std::vector<std::shared_ptr<fake_session>> sessions;
  int heartbeats = 0;
  bool auto_receipt = true;
  std::string connected_heart_beat = "0,0";
  // Called for every frame after it is recorded and before the automatic answers; return
  // false to suppress them.
  std::function<bool(fake_session&, const stomp::frame&)> on_frame;

  std::size_t count(std::string_view command) const {
    std::size_t n = 0;
    for (const auto& f : frames) n += f.frame.command == command;
    return n;
  }
  const stomp::frame* last(std::string_view command) const {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
      if (it->frame.command == command) return &it->frame;
    }
    return nullptr;
  }

 private:
  awaitable<void> accept_loop() {
    port_ = acceptor_.local_endpoint().port();
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(acceptor_.get_executor());
      boost_error ec;
      co_await acceptor_.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      auto session = std::make_shared<fake_session>();
      session->socket = socket;
      session->number = static_cast<int>(sessions.size());
      sessions.push_back(session);
      asio::co_spawn(acceptor_.get_executor(), serve(session), asio::detached);
    }
  }

  awaitable<void> serve(std::shared_ptr<fake_session> session) {
    stomp::parser parser(stomp::direction::from_client);
    std::vector<char> buffer(4096);
    for (;;) {
      boost_error ec;
      std::size_t n = co_await session->socket->async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        session->open = false;
        co_return;
      }
      std::span<const char> in(buffer.data(), n);
      while (!in.empty()) {
        auto [used, status] = parser.feed(in);
        in = in.subspan(used);
        if (status == stomp::parse_status::heartbeat) ++heartbeats;
        if (status == stomp::parse_status::error) {
          session->close();
          co_return;
        }
        if (status != stomp::parse_status::frame_ready) continue;
        stomp::frame f = parser.take_frame();
        frames.push_back({session->number, f});
        if (f.command == "CONNECT" || f.command == "STOMP") parser.set_version(stomp::version::v1_2);
        if (on_frame && !on_frame(*session, f)) continue;
        if (!session->open) co_return;
        if (f.command == "CONNECT" || f.command == "STOMP") {
          stomp::frame reply;
          reply.command = "CONNECTED";
          reply.add("version", "1.2");
          reply.add("heart-beat", connected_heart_beat);
          reply.add("server", "fake");
          session->send(reply);
        } else if (auto receipt = f.get("receipt"); receipt && auto_receipt) {
          stomp::frame reply;
          reply.command = "RECEIPT";
          reply.add("receipt-id", std::string(*receipt));
          session->send(reply);
        }
      }
    }
  }

  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
};

// Runs `body` on `io` until it finishes; rethrows what it threw (doctest REQUIREs included).
void run_test(asio::io_context& io, awaitable<void> body) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
    done = true;
    error = e;
    io.stop();
  });
  io.run_for(std::chrono::seconds(60));
  REQUIRE_MESSAGE(done, "the test coroutine did not finish");
  if (error) std::rethrow_exception(error);
}

client::connect_options options_for(std::string url) {
  client::connect_options o;
  auto list = client::parse_broker_list(url);
  REQUIRE(list.has_value());
  o.brokers = list.value();
  o.connect_timeout = std::chrono::seconds(5);
  return o;
}

stomp::frame make_send(std::string destination, std::string body) {
  stomp::frame f;
  f.command = "SEND";
  f.add("destination", std::move(destination));
  f.body = std::move(body);
  return f;
}

}  // namespace

TEST_CASE("connect negotiates 1.2 and sends login, client-id and heart-beat in CONNECT") {
  asio::io_context io;
  fake_broker broker(io);
  run_test(io, [&]() -> awaitable<void> {
    auto o = options_for("tcp://" + broker.url());
    o.login = "alice";
    o.passcode = "secret";
    o.client_id = "bench-1";
    o.heartbeat_send = std::chrono::milliseconds(1000);
    auto conn = client::connection::create(io.get_executor(), o, {});
    auto ec = co_await conn->async_connect();
    REQUIRE_FALSE(ec);
    CHECK(conn->is_connected());
    CHECK(conn->protocol_version() == stomp::version::v1_2);
    CHECK(conn->generation() == 1);
    CHECK(conn->connected_frame().get("server") == "fake");
    const stomp::frame* connect = broker.last("CONNECT");
    REQUIRE(connect);
    CHECK(connect->get("accept-version") == "1.0,1.1,1.2");
    CHECK(connect->get("login") == "alice");
    CHECK(connect->get("passcode") == "secret");
    CHECK(connect->get("client-id") == "bench-1");
    CHECK(connect->get("heart-beat") == "1000,0");
    CHECK(connect->get("host") == "127.0.0.1");
    CHECK_FALSE(co_await conn->async_disconnect());
    CHECK(broker.count("DISCONNECT") == 1);
    CHECK(conn->current_state() == client::connection::state::closed);
  }());
}

TEST_CASE("pipelined receipts stop at the window and come back in order") {
  asio::io_context io;
  fake_broker broker(io);
  broker.auto_receipt = false;
  run_test(io, [&]() -> awaitable<void> {
    auto o = options_for(broker.url());
    o.receipt_window = 4;
    std::vector<std::uint64_t> receipts;
    client::handlers h;
    h.on_receipt = [&](const client::receipt_event& e) {
      CHECK_FALSE(e.error);
      receipts.push_back(e.id);
    };
    auto conn = client::connection::create(io.get_executor(), o, h);
    REQUIRE_FALSE(co_await conn->async_connect());

    int sent = 0;
    std::vector<std::uint64_t> ids;
    bool producer_done = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      for (int i = 0; i < 10; ++i) {
        auto f = make_send("/queue/a", "m" + std::to_string(i));
        auto r = co_await conn->async_send(f, true);
        REQUIRE(r.has_value());
        ids.push_back(r.value());
        ++sent;
      }
      producer_done = true;
    }, asio::detached);

    co_await async_wait_until([&] { return broker.count("SEND") == 4; }, "4 SENDs");
    // The fifth async_send cannot return before a receipt frees a slot.
    CHECK(sent == 4);
    CHECK(conn->outstanding_receipts() == 4);
    CHECK(broker.count("SEND") == 4);

    // Answer every SEND so far, and from now on answer at once.
    broker.auto_receipt = true;
    for (const auto& rf : broker.frames) {
      if (rf.frame.command != "SEND") continue;
      stomp::frame reply;
      reply.command = "RECEIPT";
      reply.add("receipt-id", std::string(*rf.frame.get("receipt")));
      broker.sessions[0]->send(reply);
    }
    co_await async_wait_until([&] { return producer_done && receipts.size() == 10; }, "10 receipts");
    CHECK(receipts == ids);
    CHECK(std::is_sorted(ids.begin(), ids.end()));
    CHECK(broker.count("SEND") == 10);
    CHECK(broker.last("SEND")->body == "m9");
    CHECK_FALSE(co_await conn->async_flush());
    conn->close();
  }());
}

TEST_CASE("a frame sent without a receipt loses any receipt header it had") {
  asio::io_context io;
  fake_broker broker(io);
  run_test(io, [&]() -> awaitable<void> {
    auto conn = client::connection::create(io.get_executor(), options_for(broker.url()), {});
    REQUIRE_FALSE(co_await conn->async_connect());
    auto f = make_send("/queue/a", "x");
    f.add("receipt", "stale");
    auto r = co_await conn->async_send(f, false);
    REQUIRE(r.has_value());
    CHECK(r.value() == 0);
    co_await async_wait_until([&] { return broker.count("SEND") == 1; }, "the SEND");
    CHECK_FALSE(broker.last("SEND")->get("receipt").has_value());
    CHECK(conn->outstanding_receipts() == 0);
    conn->close();
  }());
}

TEST_CASE("a MESSAGE reaches on_message and its ACK and NACK use the 1.2 ack header") {
  asio::io_context io;
  fake_broker broker(io);
  broker.on_frame = [&](fake_session& s, const stomp::frame& f) {
    if (f.command == "SUBSCRIBE") {
      stomp::frame m;
      m.command = "MESSAGE";
      m.add("destination", std::string(*f.get("destination")));
      m.add("message-id", "mid-1");
      m.add("subscription", std::string(*f.get("id")));
      m.add("ack", "ack-7");
      m.body = "hello";
      s.send(m);
    }
    return true;
  };
  run_test(io, [&]() -> awaitable<void> {
    std::vector<client::message> got;
    client::handlers h;
    h.on_message = [&](client::message&& m) { got.push_back(std::move(m)); };
    auto conn = client::connection::create(io.get_executor(), options_for(broker.url()), h);
    REQUIRE_FALSE(co_await conn->async_connect());
    client::subscription sub;
    sub.destination = "/queue/in";
    sub.ack = client::ack_mode::client_individual;
    sub.prefetch = 10;
    auto r = conn->subscribe(sub, true);
    REQUIRE(r.has_value());
    CHECK(r.value() != 0);
    CHECK(sub.id == "1");
    CHECK_FALSE(co_await conn->async_flush());
    const stomp::frame* s = broker.last("SUBSCRIBE");
    REQUIRE(s);
    CHECK(s->get("ack") == "client-individual");
    CHECK(s->get("activemq.prefetchSize") == "10");
    co_await async_wait_until([&] { return got.size() == 1; }, "the MESSAGE");
    CHECK(got[0].frame.body == "hello");
    CHECK(got[0].generation == conn->generation());
    CHECK_FALSE(conn->ack(got[0]));
    CHECK_FALSE(conn->nack(got[0], "tx-1"));
    co_await async_wait_until([&] { return broker.count("NACK") == 1; }, "ACK and NACK");
    CHECK(broker.last("ACK")->get("id") == "ack-7");
    CHECK(broker.last("NACK")->get("transaction") == "tx-1");
    conn->close();
    CHECK(conn->ack(got[0]) == client::errc::not_connected);
  }());
}

TEST_CASE("transactions: BEGIN, COMMIT with a receipt, ABORT") {
  asio::io_context io;
  fake_broker broker(io);
  run_test(io, [&]() -> awaitable<void> {
    auto conn = client::connection::create(io.get_executor(), options_for(broker.url()), {});
    REQUIRE_FALSE(co_await conn->async_connect());
    CHECK_FALSE(conn->begin("t1"));
    auto f = make_send("/queue/a", "x");
    f.add("transaction", "t1");
    REQUIRE((co_await conn->async_send(f, false)).has_value());
    auto c = conn->commit("t1", true);
    REQUIRE(c.has_value());
    CHECK(c.value() != 0);
    CHECK((conn->abort("t2")).has_value());
    CHECK_FALSE(co_await conn->async_flush());
    co_await async_wait_until([&] { return broker.count("ABORT") == 1; }, "ABORT");
    CHECK(broker.count("BEGIN") == 1);
    CHECK(broker.last("COMMIT")->get("transaction") == "t1");
    CHECK(broker.last("SEND")->get("transaction") == "t1");
    conn->close();
  }());
}

TEST_CASE("a lost connection fails its receipts, then the client fails over and re-subscribes") {
  asio::io_context io;
  fake_broker a(io), b(io);
  a.auto_receipt = false;
  run_test(io, [&]() -> awaitable<void> {
    auto o = options_for("failover:(tcp://" + a.url() + ",tcp://" + b.url() + ")?initialReconnectDelay=1&maxReconnectDelay=20");
    std::vector<client::receipt_event> receipts;
    std::vector<std::pair<std::error_code, bool>> losses;
    std::vector<client::reconnect_event> reconnects;
    client::handlers h;
    h.on_receipt = [&](const client::receipt_event& e) { receipts.push_back(e); };
    h.on_connection_lost = [&](std::error_code ec, bool final) { losses.emplace_back(ec, final); };
    h.on_reconnect = [&](const client::reconnect_event& e) { reconnects.push_back(e); };
    auto conn = client::connection::create(io.get_executor(), o, h);
    REQUIRE_FALSE(co_await conn->async_connect());
    CHECK(conn->current_broker().port == a.port());
    client::subscription sub;
    sub.destination = "/queue/work";
    sub.ack = client::ack_mode::client;
    REQUIRE(conn->subscribe(sub).has_value());
    for (int i = 0; i < 3; ++i) {
      auto f = make_send("/queue/work", "m");
      REQUIRE((co_await conn->async_send(f, true)).has_value());
    }
    co_await async_wait_until([&] { return a.count("SEND") == 3; }, "3 SENDs on A");
    // A dies: no listener any more, the live session closed.
    a.stop_listening();
    a.sessions[0]->close();

    co_await async_wait_until([&] { return reconnects.size() == 1; }, "the reconnect");
    REQUIRE(receipts.size() == 3);
    for (const auto& r : receipts) CHECK(r.error == client::errc::receipt_lost);
    REQUIRE(losses.size() == 1);
    CHECK_FALSE(losses[0].second);
    CHECK(reconnects[0].broker_index == 1);
    CHECK(reconnects[0].broker.port == b.port());
    CHECK(reconnects[0].receipts_lost == 3);
    CHECK(reconnects[0].resubscribed == 1);
    CHECK(reconnects[0].connected_at >= reconnects[0].lost_at);
    CHECK(conn->generation() == 2);
    co_await async_wait_until([&] { return b.count("SUBSCRIBE") == 1; }, "SUBSCRIBE on B");
    CHECK(b.last("SUBSCRIBE")->get("id") == sub.id);
    CHECK(b.last("SUBSCRIBE")->get("ack") == "client");
    CHECK(b.last("SUBSCRIBE")->get("destination") == "/queue/work");

    auto f = make_send("/queue/work", "after");
    auto r = co_await conn->async_send(f, true);
    REQUIRE(r.has_value());
    CHECK_FALSE(co_await conn->async_flush());
    REQUIRE(receipts.size() == 4);
    CHECK_FALSE(receipts[3].error);
    CHECK(receipts[3].id == r.value());
    CHECK_FALSE(co_await conn->async_disconnect());
    REQUIRE(losses.size() == 2);
    CHECK(losses[1].second);
  }());
}

TEST_CASE("without failover a lost connection is final and async_send fails") {
  asio::io_context io;
  fake_broker broker(io);
  run_test(io, [&]() -> awaitable<void> {
    std::vector<std::pair<std::error_code, bool>> losses;
    client::handlers h;
    h.on_connection_lost = [&](std::error_code ec, bool final) { losses.emplace_back(ec, final); };
    auto conn = client::connection::create(io.get_executor(), options_for(broker.url()), h);
    REQUIRE_FALSE(co_await conn->async_connect());
    broker.sessions[0]->close();
    co_await async_wait_until([&] { return !losses.empty(); }, "the loss");
    CHECK(losses[0].second);
    CHECK(conn->current_state() == client::connection::state::closed);
    auto f = make_send("/queue/a", "x");
    auto r = co_await conn->async_send(f, true);
    CHECK(r.error() == client::errc::closed);
  }());
}

TEST_CASE("an ERROR answering CONNECT is connect_refused and is not retried") {
  asio::io_context io;
  fake_broker broker(io);
  broker.on_frame = [](fake_session& s, const stomp::frame& f) {
    if (f.command != "CONNECT") return true;
    stomp::frame e;
    e.command = "ERROR";
    e.add("message", "bad credentials");
    s.send(e);
    s.close();
    return false;
  };
  run_test(io, [&]() -> awaitable<void> {
    std::string error_message;
    client::handlers h;
    h.on_error = [&](const stomp::frame& f) { error_message = std::string(f.get("message").value_or("")); };
    auto conn = client::connection::create(io.get_executor(), options_for(broker.url() + "," + broker.url()), h);
    auto ec = co_await conn->async_connect();
    CHECK(ec == client::errc::connect_refused);
    CHECK(error_message == "bad credentials");
    CHECK(broker.sessions.size() == 1);
    CHECK(conn->current_state() == client::connection::state::closed);
  }());
}

TEST_CASE("an ERROR carrying a receipt-id fails that receipt") {
  asio::io_context io;
  fake_broker broker(io);
  broker.on_frame = [](fake_session& s, const stomp::frame& f) {
    if (f.command != "SEND") return true;
    stomp::frame e;
    e.command = "ERROR";
    e.add("message", "not allowed");
    e.add("receipt-id", std::string(*f.get("receipt")));
    s.send(e);
    return false;
  };
  run_test(io, [&]() -> awaitable<void> {
    std::vector<client::receipt_event> receipts;
    int errors = 0;
    client::handlers h;
    h.on_receipt = [&](const client::receipt_event& e) { receipts.push_back(e); };
    h.on_error = [&](const stomp::frame&) { ++errors; };
    auto conn = client::connection::create(io.get_executor(), options_for(broker.url()), h);
    REQUIRE_FALSE(co_await conn->async_connect());
    auto f = make_send("/queue/forbidden", "x");
    REQUIRE((co_await conn->async_send(f, true)).has_value());
    co_await async_wait_until([&] { return !receipts.empty(); }, "the failed receipt");
    CHECK(receipts[0].error == client::errc::broker_error);
    CHECK(errors == 1);
    conn->close();
  }());
}

TEST_CASE("heart-beats: the client beats when idle and drops a silent broker") {
  asio::io_context io;
  fake_broker broker(io);
  broker.connected_heart_beat = "20,20";  // the broker promises beats every 20 ms, never sends one
  run_test(io, [&]() -> awaitable<void> {
    auto o = options_for(broker.url());
    o.heartbeat_send = std::chrono::milliseconds(20);
    o.heartbeat_expect = std::chrono::milliseconds(20);
    std::vector<std::pair<std::error_code, bool>> losses;
    client::handlers h;
    h.on_connection_lost = [&](std::error_code ec, bool final) { losses.emplace_back(ec, final); };
    auto conn = client::connection::create(io.get_executor(), o, h);
    REQUIRE_FALSE(co_await conn->async_connect());
    co_await async_wait_until([&] { return !losses.empty(); }, "the heart-beat timeout");
    CHECK(losses[0].first == client::errc::heartbeat_timeout);
    CHECK(losses[0].second);
    // 20 ms beats over the >= 40 ms of silence allowed: at least one EOL reached the broker.
    co_await async_wait_until([&] { return broker.heartbeats >= 1; }, "a client heart-beat");
  }());
}

TEST_CASE("connecting to a closed port fails at once without failover") {
  asio::io_context io;
  std::uint16_t port = 0;
  {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }
  run_test(io, [&]() -> awaitable<void> {
    auto conn = client::connection::create(io.get_executor(), options_for("tcp://127.0.0.1:" + std::to_string(port)), {});
    auto ec = co_await conn->async_connect();
    CHECK(ec);
    CHECK(conn->current_state() == client::connection::state::closed);
  }());
}

TEST_CASE("a failover list with no live broker gives up after the startup round") {
  asio::io_context io;
  std::uint16_t p1 = 0, p2 = 0;
  {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::acceptor b(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    p1 = a.local_endpoint().port();
    p2 = b.local_endpoint().port();
  }
  run_test(io, [&]() -> awaitable<void> {
    auto url = "failover:(127.0.0.1:" + std::to_string(p1) + ",127.0.0.1:" + std::to_string(p2) + ")?startupMaxReconnectAttempts=2&initialReconnectDelay=1";
    auto conn = client::connection::create(io.get_executor(), options_for(url), {});
    auto ec = co_await conn->async_connect();
    CHECK(ec == client::errc::no_broker_reachable);
  }());
}

// tandem-bench --receipt-log (issue 19): with keep_receipt_samples every RECEIPT of the run
// is kept with its two instants and its producer, ordered by arrival; without it none.
TEST_CASE("the load generator keeps every RECEIPT's instants only when asked") {
  asio::io_context io;
  fake_broker broker(io);
  io.poll();  // the accept loop runs up to its first accept: the port is known from here
  auto list = client::parse_broker_list(broker.url());
  REQUIRE(list.has_value());
  auto guard = asio::make_work_guard(io);
  std::thread broker_thread([&] { io.run(); });
  bench::bench_options o;
  o.producers = 2;
  o.consumers = 0;
  o.count = 10;
  o.receipt_every = 1;
  o.window = 1;
  o.keep_receipt_samples = true;
  auto kept = bench::run(o, list.value());
  o.keep_receipt_samples = false;
  auto not_kept = bench::run(o, list.value());
  guard.reset();
  io.stop();
  broker_thread.join();

  REQUIRE_FALSE(kept.failed);
  CHECK(kept.receipts == 10);
  REQUIRE(kept.receipt_samples.size() == 10);
  std::set<unsigned> producers;
  for (std::size_t i = 0; i < kept.receipt_samples.size(); ++i) {
    const auto& r = kept.receipt_samples[i];
    CHECK(r.sent_ns > 0);
    CHECK(r.received_ns >= r.sent_ns);
    if (i > 0) CHECK(r.received_ns >= kept.receipt_samples[i - 1].received_ns);
    producers.insert(r.producer);
  }
  CHECK(producers == std::set<unsigned>{0, 1});
  CHECK(not_kept.receipts == 10);
  CHECK(not_kept.receipt_samples.empty());
}
