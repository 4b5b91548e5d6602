// <ostream> first: doctest prints std::error_code through operator<<, which needs it.
#include <ostream>

#include <doctest/doctest.h>

#include <string>

#include "broker/stomp/encoder.h"
#include "broker/stomp/errc.h"
#include "grind.h"

using namespace std::string_literals;

namespace tandem::stomp {
namespace {

std::string encoded(const frame& f, version v = version::v1_2) {
  std::string out;
  REQUIRE(!encode(f, v, out));
  return out;
}

// Encodes then parses back with a parser of the receiving side, at every cut.
frame round_trip(const frame& f, version v) {
  const std::string bytes = encoded(f, v);
  const bool from_client = is_client_command(*command_from_name(f.command));
  const test::parser_setup setup{from_client ? direction::from_client : direction::from_server, v};
  const auto r = test::run_whole(setup, bytes);
  REQUIRE_MESSAGE(r.events.size() == 1, test::describe(r));
  REQUIRE(r.events[0].status == parse_status::frame_ready);
  test::grind(setup, bytes, 0);
  return r.events[0].f;
}

TEST_CASE("the worked example of frame.h is encoded octet for octet") {
  const frame f{"SEND", {{"destination", "/queue/a"}}, "a\0b"s};
  CHECK(encoded(f) == "SEND\ndestination:/queue/a\ncontent-length:3\n\na\0b\0"s);
}

TEST_CASE("content-length is written for every non-empty body and only then") {
  CHECK(encoded({"RECEIPT", {{"receipt-id", "7"}}, ""}) == "RECEIPT\nreceipt-id:7\n\n\0"s);
  CHECK(encoded({"ERROR", {{"message", "x"}}, "why"}) == "ERROR\nmessage:x\ncontent-length:3\n\nwhy\0"s);
  // A content-length in the frame is replaced by the real one, wherever it was.
  CHECK(encoded({"SEND", {{"content-length", "99"}, {"a", "b"}}, "12"}) == "SEND\na:b\ncontent-length:2\n\n12\0"s);
  CHECK(encoded({"SEND", {{"content-length", "5"}}, ""}) == "SEND\n\n\0"s);
}

TEST_CASE("headers are escaped for the version and never in CONNECT frames") {
  const frame send{"SEND", {{"k:1", "a\nb\\c\r"}}, ""};
  CHECK(encoded(send, version::v1_2) == "SEND\nk\\c1:a\\nb\\\\c\\r\n\n\0"s);
  const frame connected{"CONNECTED", {{"server", "a\\b"}, {"x", "p:q"}}, ""};
  CHECK(encoded(connected, version::v1_2) == "CONNECTED\nserver:a\\b\nx:p:q\n\n\0"s);
  const frame send11{"SEND", {{"k", "a\rb"}}, ""};
  CHECK(encoded(send11, version::v1_1) == "SEND\nk:a\rb\n\n\0"s);
}

TEST_CASE("frames that cannot be written are refused and nothing is appended") {
  std::string out = "earlier frame";
  CHECK(encode({"FOO", {}, ""}, version::v1_2, out) == errc::bad_command);
  CHECK(encode({"SEND", {{"", "v"}}, ""}, version::v1_2, out) == errc::unencodable_header);
  CHECK(encode({"SEND", {{"a", "b"}, {"k", "x\ny"}}, ""}, version::v1_0, out) == errc::unencodable_header);
  CHECK(encode({"CONNECT", {{"login", "x\ny"}}, ""}, version::v1_2, out) == errc::unencodable_header);
  CHECK(encode({"SEND", {{"k", "x\r"}}, ""}, version::v1_1, out) == errc::unencodable_header);
  CHECK(out == "earlier frame");
}

TEST_CASE("encoded frames of every type parse back unchanged in every version") {
  const std::string awkward = "a:b\\c\nd\re";
  for (version v : {version::v1_0, version::v1_1, version::v1_2}) {
    CAPTURE(version_name(v));
    for (int i = 0; i <= static_cast<int>(command::error); ++i) {
      const auto c = static_cast<command>(i);
      CAPTURE(command_name(c));
      frame f{std::string(command_name(c)), {{"id", "1"}, {"id", "2"}, {"empty", ""}}, "body\0with nul"s};
      const bool escaped = escaping_for(v, c) != escaping::none;
      if (escaped) f.add(awkward, awkward);
      frame back = round_trip(f, v);
      // The parser keeps the content-length the encoder added; the rest is identical.
      CHECK(back.get("content-length") == std::to_string(f.body.size()));
      std::erase_if(back.headers, [](const header& h) { return h.first == "content-length"; });
      CHECK(back == f);
    }
  }
}

TEST_CASE("the MESSAGE fast path writes the same octets as encode") {
  const std::vector<header> stored = {{"destination", "/queue/old"}, {"persistent", "true"},
                                      {"content-length", "3"},       {"note", "x:y"},
                                      {"message-id", "stale"},       {"ack", "stale"}};
  message_view m;
  m.destination = "/queue/a";
  m.message_id = "ID:tandem-1:42";
  m.subscription = "sub-0";
  m.ack = "ack-42";
  m.headers = stored;
  const std::string body = "a\0c"s;
  m.body = body;

  const frame equivalent{"MESSAGE",
                         {{"destination", "/queue/a"},
                          {"message-id", "ID:tandem-1:42"},
                          {"subscription", "sub-0"},
                          {"ack", "ack-42"},
                          {"persistent", "true"},
                          {"note", "x:y"}},
                         body};
  for (version v : {version::v1_0, version::v1_1, version::v1_2}) {
    CAPTURE(version_name(v));
    std::string fast = "prefix";
    REQUIRE(!encode_message(m, v, fast));
    CHECK(fast == "prefix" + encoded(equivalent, v));
  }
  m.ack = {};
  std::string no_ack;
  REQUIRE(!encode_message(m, version::v1_2, no_ack));
  CHECK(no_ack.find("\nack:") == std::string::npos);

  const std::vector<header> bad = {{"k", "line\nbreak"}};
  m.headers = bad;
  std::string out = "keep";
  CHECK(encode_message(m, version::v1_0, out) == errc::unencodable_header);
  CHECK(out == "keep");
}

TEST_CASE("the RECEIPT fast path writes the same octets as encode, errors included") {
  for (version v : {version::v1_0, version::v1_1, version::v1_2}) {
    CAPTURE(version_name(v));
    for (bool duplicate : {false, true}) {
      for (std::string id : {"r-1"s, "a:b\\c"s, "line\rend"s, "end\r"s}) {
        CAPTURE(id);
        frame equivalent{"RECEIPT", {{"receipt-id", id}}, ""};
        if (duplicate) equivalent.add("tandem-duplicate", "true");
        std::string slow;
        const auto slow_ec = encode(equivalent, v, slow);
        std::string fast = "prefix";
        CHECK(encode_receipt(id, duplicate, v, fast) == slow_ec);
        CHECK(fast == "prefix" + slow);
      }
    }
  }
}

}  // namespace
}  // namespace tandem::stomp
