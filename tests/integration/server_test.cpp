// broker/server + broker/connection on real loopback sockets, with the scripted engine
// (scripted_engine.h) in place of the real one: framing, ERROR on malformed input, the CONNECT
// deadline, heart-beats both ways, flow control, backlog draining and shutdown.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <functional>
#include <string>
#include <thread>

#include "broker/asio.h"
#include "broker/config.h"
#include "broker/engine.h"
#include "broker/server.h"
#include "scripted_engine.h"
#include "tests/support/wait.h"

using namespace tandem;
using namespace tandem::broker;
using namespace std::chrono_literals;

namespace {

using tandem::test::wait_until;

void reset_stats() {
  auto& s = broker::test::stats();
  s.opened = s.closed = s.ticks = s.writable = s.frames = s.resumed = 0;
  s.shut_down = false;
}

// TANDEM_SERVER_TEST_THREADS=2 (CTest broker_server_threads2_test): every connection runs
// on a second io_context and thread, as with `threads: 2` (docs/threads.md), so each case
// also proves the cross-thread seam of connection.h.
bool across_threads() {
  const char* v = std::getenv("TANDEM_SERVER_TEST_THREADS");
  return v && std::string_view(v) != "1";
}

// A broker server with the scripted engine on its own io thread (and its connections on a
// second one when across_threads()).
struct harness {
  explicit harness(const std::function<void(config&)>& tweak = {}) {
    reset_stats();
    cfg.listen = endpoint_address{"127.0.0.1", 0};
    cfg.engine.allow_anonymous = true;
    if (tweak) tweak(cfg);
    eng = std::make_unique<engine>(cfg.engine, nullptr);
    std::vector<asio::any_io_executor> connection_executors;
    if (across_threads()) connection_executors.push_back(connection_io.get_executor());
    srv = std::make_unique<server>(io.get_executor(), *eng, cfg, std::move(connection_executors));
    asio::ip::tcp::endpoint bound;
    REQUIRE_FALSE(srv->open(bound));
    port = bound.port();
    srv->start();
    thread = std::thread([this] { io.run(); });
    connection_thread = std::thread([this] { connection_io.run(); });
  }
  ~harness() {
    asio::post(io, [this] {
      srv->stop_accepting();
      srv->stop_connections("test over");
    });
    // Across threads the sessions end by posts back to io: keep io running until they have.
    wait_until([] { return broker::test::stats().closed.load() >= broker::test::stats().opened.load(); });
    io_work.reset();
    connection_work.reset();
    // Every coroutine ends once its socket and timers are closed; then run() returns.
    thread.join();
    connection_thread.join();
  }
  void post_and_wait(std::function<void()> f) {
    std::atomic<bool> done{false};
    asio::post(io, [&] {
      f();
      done = true;
    });
    REQUIRE(wait_until([&] { return done.load(); }));
  }

  config cfg;
  asio::io_context connection_io;  // before io: a handler left on io may hold a connection of it
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> io_work{io.get_executor()};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> connection_work{
      connection_io.get_executor()};
  std::unique_ptr<engine> eng;
  std::unique_ptr<server> srv;
  std::uint16_t port = 0;
  std::thread thread;
  std::thread connection_thread;
};

// A blocking client with a receive timeout, so a test can never hang.
struct client {
  explicit client(std::uint16_t port, int rcvbuf = 0) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~client() {
    if (fd >= 0) ::close(fd);
  }
  void send(std::string_view data) {
    while (!data.empty()) {
      auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  // Reads until `buffer` holds a NUL-terminated frame (leading EOLs dropped); returns it, or
  // "" at EOF / timeout.
  std::string frame() {
    for (;;) {
      while (!buffer.empty() && (buffer[0] == '\n' || buffer[0] == '\r')) buffer.erase(0, 1);
      auto nul = buffer.find('\0');
      if (nul != std::string::npos) {
        std::string f = buffer.substr(0, nul);
        buffer.erase(0, nul + 1);
        return f;
      }
      if (!fill()) return {};
    }
  }
  bool fill() {
    char tmp[65536];
    auto n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buffer.append(tmp, static_cast<std::size_t>(n));
    return true;
  }
  // True when the peer closes (EOF) before the receive timeout.
  bool closed_by_peer() {
    for (;;) {
      char tmp[4096];
      auto n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      buffer.append(tmp, static_cast<std::size_t>(n));
    }
  }
  std::string connect(std::string_view heart_beat = "0,0") {
    send("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:" + std::string(heart_beat) + "\n\n" + std::string(1, '\0'));
    return frame();
  }
  int fd = -1;
  std::string buffer;
};

std::string nul_frame(std::string text) { return text + std::string(1, '\0'); }

}  // namespace

TEST_CASE("a client gets CONNECTED and its receipts in order") {
  harness h;
  client c(h.port);
  CHECK(c.connect().rfind("CONNECTED\n", 0) == 0);
  c.send(nul_frame("SEND\ndestination:/queue/a\nreceipt:1\n\nx") + nul_frame("SEND\ndestination:/queue/a\nreceipt:2\n\ny"));
  CHECK(c.frame().find("receipt-id:1") != std::string::npos);
  CHECK(c.frame().find("receipt-id:2") != std::string::npos);
}

TEST_CASE("a malformed frame gets an ERROR quoting the bytes, then a close; others are unaffected") {
  harness h;
  client good(h.port);
  REQUIRE(good.connect().rfind("CONNECTED", 0) == 0);
  client bad(h.port);
  bad.send(nul_frame("CONNECT\naccept-version:1.2\nthis-line-has-no-colon\n\n"));
  std::string error = bad.frame();
  CHECK(error.rfind("ERROR\n", 0) == 0);
  CHECK(error.find("\nmessage:") != std::string::npos);
  CHECK(error.find("this-line-has-no-colon") != std::string::npos);
  CHECK(bad.closed_by_peer());
  good.send(nul_frame("SEND\ndestination:/queue/a\nreceipt:still\n\n"));
  CHECK(good.frame().find("receipt-id:still") != std::string::npos);
  CHECK(wait_until([] { return broker::test::stats().closed.load() == 1; }));
}

TEST_CASE("a client that never sends CONNECT is closed after connect_timeout") {
  harness h([](config& c) { c.connect_timeout = 200ms; });
  client c(h.port);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(c.closed_by_peer());
  CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
  CHECK(wait_until([] { return broker::test::stats().closed.load() == 1; }));
}

TEST_CASE("a client silent for expect_every times the grace is closed") {
  harness h([](config& c) { c.engine.heartbeat_grace = 1.5; });
  client c(h.port);
  REQUIRE(c.connect("100,0").rfind("CONNECTED", 0) == 0);  // the client promises a beat every 100 ms
  auto t0 = std::chrono::steady_clock::now();
  CHECK(c.closed_by_peer());
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 140ms);
  CHECK(took < 5s);
}

TEST_CASE("a client that keeps beating stays connected") {
  harness h;
  client c(h.port);
  REQUIRE(c.connect("100,0").rfind("CONNECTED", 0) == 0);
  auto end = std::chrono::steady_clock::now() + 600ms;
  while (std::chrono::steady_clock::now() < end) {
    c.send("\n");
    std::this_thread::sleep_for(30ms);  // the client's own beat period
  }
  c.send(nul_frame("SEND\ndestination:/q\nreceipt:alive\n\n"));
  CHECK(c.frame().find("receipt-id:alive") != std::string::npos);
}

TEST_CASE("the broker sends an EOL when idle for send_every") {
  harness h;
  client c(h.port);
  REQUIRE(c.connect("0,50").rfind("CONNECTED", 0) == 0);
  c.buffer.clear();
  REQUIRE(wait_until([&] { return c.fill() && std::count(c.buffer.begin(), c.buffer.end(), '\n') >= 3; }, 5s));
  CHECK(c.buffer.find_first_not_of('\n') == std::string::npos);
}

TEST_CASE("a paused session reads nothing until the engine resumes it") {
  harness h;
  client c(h.port);
  REQUIRE(c.connect().rfind("CONNECTED", 0) == 0);
  c.send(nul_frame("SEND\ndestination:/q\npause:1\n\n") + nul_frame("SEND\ndestination:/q\nreceipt:after\n\n"));
  CHECK(c.frame().find("receipt-id:after") != std::string::npos);
  CHECK(broker::test::stats().resumed.load() >= 1);  // the receipt could only come after the tick resumed
}

TEST_CASE("a backlog above the session limit calls on_writable once it drains") {
  harness h([](config& c) { c.engine.max_session_backlog_bytes = 64 * 1024; });
  client c(h.port, 4096);
  REQUIRE(c.connect().rfind("CONNECTED", 0) == 0);
  std::string body(4096, 'b');
  c.send(nul_frame("SEND\ndestination:/q\necho:200\n\n" + body));
  int messages = 0;
  while (messages < 200) {
    auto f = c.frame();
    REQUIRE_FALSE(f.empty());
    if (f.rfind("MESSAGE", 0) == 0) ++messages;
  }
  CHECK(wait_until([] { return broker::test::stats().writable.load() >= 1; }));
}

TEST_CASE("DISCONNECT with a receipt gets the RECEIPT, then the close") {
  harness h;
  client c(h.port);
  REQUIRE(c.connect().rfind("CONNECTED", 0) == 0);
  c.send(nul_frame("DISCONNECT\nreceipt:bye\n\n"));
  CHECK(c.frame().find("receipt-id:bye") != std::string::npos);
  CHECK(c.closed_by_peer());
}

TEST_CASE("stop_connections closes every client and ends every session") {
  harness h;
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<client>(h.port));
    REQUIRE(clients.back()->connect().rfind("CONNECTED", 0) == 0);
  }
  h.post_and_wait([&] { h.srv->stop_connections("test"); });
  for (auto& c : clients) CHECK(c->closed_by_peer());
  CHECK(wait_until([] { return broker::test::stats().closed.load() == 5; }));
}

TEST_CASE("connections over max_connections get an ERROR and are closed") {
  harness h([](config& c) { c.engine.max_connections = 2; });
  client a(h.port), b(h.port);
  REQUIRE(a.connect().rfind("CONNECTED", 0) == 0);
  REQUIRE(b.connect().rfind("CONNECTED", 0) == 0);
  client c(h.port);
  auto f = c.frame();
  CHECK(f.rfind("ERROR\n", 0) == 0);
  CHECK(f.find("too many connections") != std::string::npos);
  CHECK(c.closed_by_peer());
}

TEST_CASE("the engine is ticked about every 100 ms") {
  harness h;
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(wait_until([] { return broker::test::stats().ticks.load() >= 3; }, 5s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
}
