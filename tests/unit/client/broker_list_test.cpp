#include <doctest/doctest.h>

#include "tools/client/broker_list.h"
#include "tools/client/errc.h"

using namespace tandem::client;

namespace {

broker_list parse_ok(std::string_view url) {
  std::string why;
  auto r = parse_broker_list(url, &why);
  INFO(url, " -> ", why);
  REQUIRE(r.has_value());
  return r.value();
}

std::error_code parse_error(std::string_view url, std::string* why_out = nullptr) {
  std::string why;
  auto r = parse_broker_list(url, &why);
  INFO(url);
  REQUIRE(r.has_error());
  CHECK_FALSE(why.empty());
  if (why_out) *why_out = why;
  return r.error();
}

}  // namespace

TEST_CASE("a single tcp URL is one broker without failover") {
  auto list = parse_ok("tcp://127.0.0.1:61690");
  REQUIRE(list.brokers.size() == 1);
  CHECK(list.brokers[0] == broker_address{"127.0.0.1", 61690});
  CHECK_FALSE(list.failover);
}

TEST_CASE("stomp:// and a bare host:port mean the same as tcp://") {
  CHECK(parse_ok("stomp://broker.example:1234").brokers[0] == broker_address{"broker.example", 1234});
  CHECK(parse_ok("localhost:61613").brokers[0] == broker_address{"localhost", 61613});
  CHECK(parse_ok("TCP://h:1").brokers[0] == broker_address{"h", 1});
}

TEST_CASE("the port defaults to the STOMP port") {
  CHECK(parse_ok("tcp://h").brokers[0].port == default_stomp_port);
  CHECK(parse_ok("h").brokers[0].port == default_stomp_port);
}

TEST_CASE("bracketed IPv6 addresses keep their colons") {
  auto list = parse_ok("tcp://[::1]:61613");
  CHECK(list.brokers[0].host == "::1");
  CHECK(list.brokers[0].port == 61613);
  CHECK(list.brokers[0].to_string() == "[::1]:61613");
  CHECK(parse_ok("[fe80::1]").brokers[0].port == default_stomp_port);
}

TEST_CASE("ws:// is STOMP over WebSocket, with an optional path, in failover lists too") {
  auto one = parse_ok("ws://127.0.0.1:61614");
  CHECK(one.brokers[0].websocket);
  CHECK(one.brokers[0].path == "/");
  CHECK(one.brokers[0].port == 61614);
  CHECK(parse_ok("ws://h:1/stomp").brokers[0].path == "/stomp");
  CHECK_FALSE(parse_ok("tcp://h:1").brokers[0].websocket);
  auto list = parse_ok("failover:(ws://a:1,ws://b:2)?maxReconnectDelay=100");
  REQUIRE(list.brokers.size() == 2);
  CHECK(list.brokers[1].websocket);
  CHECK(list.brokers[1].host == "b");
  CHECK(list.failover);
  CHECK(parse_error("wss://h:1") == errc::bad_url);  // not implemented in the tools' client
}

TEST_CASE("a failover URL lists brokers in order with the given options") {
  auto list = parse_ok("failover:(tcp://a:1,tcp://b:2)?initialReconnectDelay=5&maxReconnectDelay=100&maxReconnectAttempts=3"
                       "&backOffMultiplier=1.5&randomize=true&startupMaxReconnectAttempts=-1");
  REQUIRE(list.brokers.size() == 2);
  CHECK(list.brokers[0] == broker_address{"a", 1});
  CHECK(list.brokers[1] == broker_address{"b", 2});
  CHECK(list.failover);
  CHECK(list.initial_reconnect_delay == std::chrono::milliseconds(5));
  CHECK(list.max_reconnect_delay == std::chrono::milliseconds(100));
  CHECK(list.max_reconnect_attempts == 3);
  CHECK(list.startup_max_reconnect_attempts == -1);
  CHECK(list.backoff_multiplier == doctest::Approx(1.5));
  CHECK(list.randomize);
}

TEST_CASE("failover without parentheses and with one broker still fails over") {
  auto list = parse_ok("failover:tcp://a:1,tcp://b:2?maxReconnectDelay=70");
  REQUIRE(list.brokers.size() == 2);
  CHECK(list.max_reconnect_delay == std::chrono::milliseconds(70));
  auto one = parse_ok("failover:(tcp://a:1)");
  CHECK(one.failover);
  CHECK(one.brokers.size() == 1);
}

TEST_CASE("a bare comma list means failover with default options") {
  auto list = parse_ok("a:1, b:2 ,tcp://c:3");
  REQUIRE(list.brokers.size() == 3);
  CHECK(list.brokers[1] == broker_address{"b", 2});
  CHECK(list.failover);
  CHECK(list.max_reconnect_attempts == -1);
  CHECK_FALSE(list.randomize);
}

TEST_CASE("a max delay below the initial delay is raised to it") {
  auto list = parse_ok("failover:(a:1)?initialReconnectDelay=500&maxReconnectDelay=10");
  CHECK(list.max_reconnect_delay == std::chrono::milliseconds(500));
}

TEST_CASE("malformed URLs are refused with a reason") {
  CHECK(parse_error("") == errc::bad_url);
  CHECK(parse_error("   ") == errc::bad_url);
  CHECK(parse_error("http://a:1") == errc::bad_url);
  CHECK(parse_error("tcp://:1") == errc::bad_url);
  CHECK(parse_error("tcp://a:") == errc::bad_url);
  CHECK(parse_error("tcp://a:0") == errc::bad_url);
  CHECK(parse_error("tcp://a:65536") == errc::bad_url);
  CHECK(parse_error("tcp://a:12x") == errc::bad_url);
  CHECK(parse_error("::1:61613") == errc::bad_url);
  CHECK(parse_error("[::1") == errc::bad_url);
  CHECK(parse_error("[::1]x") == errc::bad_url);
  CHECK(parse_error("a:1,,b:2") == errc::bad_url);
  CHECK(parse_error("failover:(a:1") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)x") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)?") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)?maxReconnectDelay") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)?maxReconnectDelay=-5") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)?maxReconnectAttempts=-2") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)?backOffMultiplier=0.5") == errc::bad_url);
  CHECK(parse_error("failover:(a:1)?randomize=yes") == errc::bad_url);
}

TEST_CASE("unknown options are refused by name, never ignored") {
  std::string why;
  CHECK(parse_error("failover:(a:1)?timeout=5", &why) == errc::unknown_url_option);
  CHECK(why.find("timeout") != std::string::npos);
  CHECK(parse_error("tcp://a:1?wireFormat.maxFrameSize=5") == errc::unknown_url_option);
}

TEST_CASE("error codes have the client category and a message") {
  std::error_code ec = errc::receipt_lost;
  CHECK(std::string(ec.category().name()) == "tandem.client");
  CHECK(ec.message().find("RECEIPT") != std::string::npos);
}
