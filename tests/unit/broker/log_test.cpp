// broker/log: the one-line key=value format.
#include <doctest/doctest.h>

#include <chrono>

#include "broker/log.h"

using namespace tandem::broker;

TEST_CASE("a log line is component, message, then key=value fields in order") {
  auto line = log::format_line("server", "master", {log::kv("epoch", 3), log::kv("recovered", 120), log::kv("took_ms", 41)});
  CHECK(line == "server master epoch=3 recovered=120 took_ms=41");
}

TEST_CASE("values with spaces, quotes, equals or control bytes are quoted and escaped") {
  CHECK(log::quote_value("plain") == "plain");
  CHECK(log::quote_value("") == "\"\"");
  CHECK(log::quote_value("two words") == "\"two words\"");
  CHECK(log::quote_value("a=b") == "\"a=b\"");
  CHECK(log::quote_value("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(log::quote_value("line\nbreak") == "\"line\\nbreak\"");
  CHECK(log::quote_value(std::string("nul\0x", 5)) == "\"nul\\x00x\"");
}

TEST_CASE("booleans and strings become readable field values") {
  CHECK(log::kv("ok", true).value == "true");
  CHECK(log::kv("name", std::string("b1")).value == "b1");
  CHECK(log::kv("ratio", 1.5).value == "1.5");
}

TEST_CASE("log levels parse by name") {
  log::level l{};
  CHECK(log::parse_level("warn", l));
  CHECK(l == log::level::warn);
  CHECK(log::parse_level("debug", l));
  CHECK(l == log::level::debug);
  CHECK_FALSE(log::parse_level("loud", l));
}

TEST_CASE("the rate limiter lets the first line through and counts what it suppresses") {
  log::rate_limiter limiter(std::chrono::hours(1));
  std::uint64_t suppressed = 99;
  CHECK(limiter.allow(suppressed));
  CHECK(suppressed == 0u);
  CHECK_FALSE(limiter.allow(suppressed));
  CHECK_FALSE(limiter.allow(suppressed));
  log::rate_limiter open(std::chrono::nanoseconds(0));
  CHECK(open.allow(suppressed));
  CHECK(open.allow(suppressed));
}
