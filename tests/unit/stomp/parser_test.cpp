// <ostream> first: doctest prints std::error_code through operator<<, which needs it.
#include <ostream>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "broker/stomp/errc.h"
#include "broker/stomp/parser.h"
#include "grind.h"

using namespace std::string_literals;
using namespace std::string_view_literals;

namespace tandem::stomp {
namespace {

using test::event;
using test::grind;
using test::parser_setup;
using test::run_whole;

frame make(std::string command, std::vector<header> headers, std::string body = {}) {
  return frame{std::move(command), std::move(headers), std::move(body)};
}

event frame_event(frame f) {
  event e;
  e.status = parse_status::frame_ready;
  e.f = std::move(f);
  return e;
}

event heartbeat_event() {
  event e;
  e.status = parse_status::heartbeat;
  return e;
}

// The single frame `input` holds, ground at every cut.
frame parse_one(std::string_view input, parser_setup setup = {}) {
  const auto r = run_whole(setup, input);
  REQUIRE_MESSAGE(r.events.size() == 1, test::describe(r));
  REQUIRE_MESSAGE(r.events[0].status == parse_status::frame_ready, test::describe(r));
  grind(setup, input);
  return r.events[0].f;
}

// The error `input` ends in, ground at every cut.
event parse_error_of(std::string_view input, parser_setup setup = {}) {
  const auto r = run_whole(setup, input);
  REQUIRE_MESSAGE(!r.events.empty(), test::describe(r));
  REQUIRE_MESSAGE(r.events.back().status == parse_status::error, test::describe(r));
  grind(setup, input);
  return r.events.back();
}

TEST_CASE("every client frame type is parsed by a server-side parser") {
  for (std::string_view name : {"CONNECT", "STOMP", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN",
                                "COMMIT", "ABORT", "DISCONNECT"}) {
    CAPTURE(name);
    const std::string input = std::string(name) + "\nk:v\nreceipt:77\n\nbody\0"s;
    CHECK(parse_one(input) == make(std::string(name), {{"k", "v"}, {"receipt", "77"}}, "body"));
  }
}

TEST_CASE("every server frame type is parsed by a client-side parser") {
  const parser_setup setup{direction::from_server};
  for (std::string_view name : {"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"}) {
    CAPTURE(name);
    const std::string input = std::string(name) + "\nk:v\n\nbody\0"s;
    CHECK(parse_one(input, setup) == make(std::string(name), {{"k", "v"}}, "body"));
  }
}

TEST_CASE("a frame of the wrong side or an unknown command is a bad command") {
  CHECK(parse_error_of("MESSAGE\n\n\0"sv).error_name == "bad_command");
  CHECK(parse_error_of("SEND\n\n\0"sv, {direction::from_server}).error_name == "bad_command");
  const auto lower = parse_error_of("send\n\n\0"sv);
  CHECK(lower.error_name == "bad_command");
  CHECK(lower.reason == "unknown command");
  CHECK(lower.snippet == "send");
  CHECK(parse_error_of("SEND \n\n\0"sv).error_name == "bad_command");
  CHECK(parse_error_of("\0\n\n\0"sv).error_name == "bad_command");
}

TEST_CASE("the worked example of frame.h parses octet for octet") {
  const std::string input = "SEND\ndestination:/queue/a\ncontent-length:3\n\na\0b\0\n"s;
  parser p(direction::from_client, {}, version::v1_2);
  const auto first = p.feed(input);
  CHECK(first.status == parse_status::frame_ready);
  CHECK(first.consumed == 48);
  CHECK(p.current_frame() == make("SEND", {{"destination", "/queue/a"}, {"content-length", "3"}}, "a\0b"s));
  const auto second = p.feed(std::span<const char>(input).subspan(48));
  CHECK(second.status == parse_status::heartbeat);
  CHECK(second.consumed == 1);
}

TEST_CASE("CR LF line endings give the same frame as LF") {
  const frame lf = parse_one("SEND\ndestination:/queue/a\nx:\n\nhi\0"sv);
  const frame crlf = parse_one("SEND\r\ndestination:/queue/a\r\nx:\r\n\r\nhi\0"sv);
  CHECK(lf == crlf);
  CHECK(crlf.get("x") == "");
  // Only the CR right before the LF belongs to the EOL.
  CHECK(parse_one("SEND\nk:a\rb\r\r\n\n\0"sv, {direction::from_client, version::v1_1}).get("k") == "a\rb\r");
}

TEST_CASE("heart-beat EOLs between frames are reported one by one") {
  const std::string input = "\n\r\nSEND\n\n\0\n\r\n\nDISCONNECT\n\n\0"s;
  const auto r = run_whole({}, input);
  const std::vector<event> expected = {heartbeat_event(), heartbeat_event(), frame_event(make("SEND", {})),
                                       heartbeat_event(), heartbeat_event(), heartbeat_event(),
                                       frame_event(make("DISCONNECT", {}))};
  CHECK(r.events == expected);
  grind({}, input);
}

TEST_CASE("a CR not followed by LF between frames is bad_eol") {
  const auto e = parse_error_of("SEND\n\n\0\rSEND\n\n\0"sv);
  CHECK(e.error_name == "bad_eol");
  CHECK(e.snippet == "\\rS");
}

TEST_CASE("a content-length body may contain NULs and LFs") {
  const std::string body = "\0\n\0\0x\n\n"s;
  const std::string input = "SEND\ncontent-length:7\n\n"s + body + "\0"s;
  const frame f = parse_one(input);
  CHECK(f.body == body);
  CHECK(parse_one("SEND\ncontent-length:0\n\n\0"sv).body.empty());
  CHECK(parse_one("SEND\ncontent-length:000\n\n\0"sv).body.empty());
}

TEST_CASE("a content-length body not followed by NUL is missing_nul") {
  const auto e = parse_error_of("SEND\ncontent-length:2\n\nabc\0"sv);
  CHECK(e.error_name == "missing_nul");
  CHECK(e.snippet == "c");
  CHECK(parse_error_of("SEND\ncontent-length:0\n\nx\0"sv).error_name == "missing_nul");
}

TEST_CASE("a content-length that is not plain decimal digits is bad_content_length") {
  for (std::string_view value : {"-1", "+1", " 1", "1 ", "1a", "", "0x10", "99999999999999999999999"}) {
    CAPTURE(value);
    const std::string input = "SEND\ncontent-length:"s + std::string(value) + "\n\n\0"s;
    const auto e = parse_error_of(input);
    CHECK(e.error_name == "bad_content_length");
  }
}

TEST_CASE("repeated headers are all kept and the first one wins") {
  const frame f = parse_one("SEND\nk:first\nk:second\ncontent-length:1\ncontent-length:5\n\nx\0"sv);
  REQUIRE(f.headers.size() == 4);
  CHECK(f.headers[1] == header{"k", "second"});
  CHECK(f.get("k") == "first");
  CHECK(f.body == "x");
  CHECK(!f.get("K").has_value());
}

TEST_CASE("header lines split at the first colon and need a name") {
  const frame f = parse_one("SEND\nurl:http://x:80/\nempty:\n\n\0"sv, {direction::from_client, version::v1_0});
  CHECK(f.get("url") == "http://x:80/");
  CHECK(f.get("empty") == "");
  const auto no_colon = parse_error_of("SEND\ndestination\n\n\0"sv);
  CHECK(no_colon.error_name == "bad_header_line");
  CHECK(no_colon.reason == "header line has no ':'");
  CHECK(no_colon.snippet == "destination");
  CHECK(parse_error_of("SEND\n:v\n\n\0"sv).error_name == "bad_header_line");
}

TEST_CASE("STOMP 1.0 has no escaping: backslashes are kept") {
  const parser_setup v10{direction::from_client, version::v1_0};
  CHECK(parse_one("SEND\na\\cb:x\\ny\\\\z\\t\n\n\0"sv, v10) == make("SEND", {{"a\\cb", "x\\ny\\\\z\\t"}}));
}

TEST_CASE("STOMP 1.1 unescapes backslash, LF and colon and refuses \\r") {
  const parser_setup v11{direction::from_client, version::v1_1};
  CHECK(parse_one("SEND\na\\cb:x\\ny\\\\z\\c\n\n\0"sv, v11) == make("SEND", {{"a:b", "x\ny\\z:"}}));
  const auto e = parse_error_of("SEND\nk:a\\rb\n\n\0"sv, v11);
  CHECK(e.error_name == "bad_escape");
  CHECK(e.snippet == "k:a\\\\rb");
}

TEST_CASE("STOMP 1.2 unescapes backslash, LF, colon and CR") {
  const parser_setup v12{direction::from_client, version::v1_2};
  CHECK(parse_one("SEND\n\\r\\n\\c\\\\:\\\\\\c\\n\\r\n\n\0"sv, v12) == make("SEND", {{"\r\n:\\", "\\:\n\r"}}));
}

TEST_CASE("undefined escapes are fatal in 1.1 and 1.2") {
  for (version v : {version::v1_1, version::v1_2}) {
    CAPTURE(version_name(v));
    const parser_setup setup{direction::from_client, v};
    for (std::string_view line : {"k:\\t", "k:abc\\", "k\\:v", "\\x:v", "k:\\\\\\"}) {
      CAPTURE(line);
      const std::string input = "SEND\n"s + std::string(line) + "\n\n\0"s;
      CHECK(parse_error_of(input, setup).error_name == "bad_escape");
    }
  }
  // The snippet starts a little before the bad escape, not at the start of a long line.
  const auto e = parse_error_of("SEND\nlong-header-name:0123456789abcdef\\q\n\n\0"sv);
  CHECK(e.snippet == "89abcdef\\\\q");
}

TEST_CASE("CONNECT, STOMP and CONNECTED headers are never unescaped") {
  const parser_setup v12{direction::from_client, version::v1_2};
  CHECK(parse_one("CONNECT\nlogin:a\\b\npasscode:x\\c\n\n\0"sv, v12) ==
        make("CONNECT", {{"login", "a\\b"}, {"passcode", "x\\c"}}));
  CHECK(parse_one("STOMP\nlogin:a\\q\n\n\0"sv, v12).get("login") == "a\\q");
  const parser_setup client{direction::from_server, version::v1_2};
  CHECK(parse_one("CONNECTED\nserver:t\\1\n\n\0"sv, client).get("server") == "t\\1");
  CHECK(parse_one("MESSAGE\nk:a\\cb\n\n\0"sv, client).get("k") == "a:b");
}

TEST_CASE("set_version applies to the frames after it") {
  parser p(direction::from_client);
  const std::string input = "CONNECT\naccept-version:1.2\n\n\0SEND\nk:a\\cb\n\n\0"s;
  const auto first = p.feed(input);
  REQUIRE(first.status == parse_status::frame_ready);
  CHECK(p.get_version() == version::v1_0);
  p.set_version(version::v1_2);
  const auto second = p.feed(std::span<const char>(input).subspan(first.consumed));
  REQUIRE(second.status == parse_status::frame_ready);
  CHECK(p.take_frame().get("k") == "a:b");
}

TEST_CASE("the command length limit accepts exactly the limit and refuses one more") {
  parser_setup setup;
  setup.lim.max_command_bytes = 11;
  CHECK(parse_one("UNSUBSCRIBE\r\nid:1\n\n\0"sv, setup).command == "UNSUBSCRIBE");
  setup.lim.max_command_bytes = 10;
  const auto e = parse_error_of("UNSUBSCRIBE\nid:1\n\n\0"sv, setup);
  CHECK(e.error_name == "command_too_long");
  CHECK(e.reason == "command line longer than 10 octets");
  // Garbage without any LF is refused after the limit, without waiting for more.
  setup.lim.max_command_bytes = 64;
  CHECK(parse_error_of(std::string(200, 'A'), setup).error_name == "command_too_long");
}

TEST_CASE("the header line limit accepts exactly the limit and refuses one more") {
  const std::string line = "destination:/queue/a";  // 20 octets
  parser_setup setup;
  setup.lim.max_header_line_bytes = 20;
  CHECK(parse_one("SEND\n" + line + "\r\n\n\0"s, setup).get("destination") == "/queue/a");
  CHECK(parse_one("SEND\n" + line + "\n\n\0"s, setup).get("destination") == "/queue/a");
  setup.lim.max_header_line_bytes = 19;
  const auto e = parse_error_of("SEND\n" + line + "\n\n\0"s, setup);
  CHECK(e.error_name == "header_too_long");
  CHECK(e.snippet == "destination:/queue/a");
  CHECK(parse_error_of("SEND\n" + line + "\r\n\n\0"s, setup).error_name == "header_too_long");
  CHECK(parse_error_of("SEND\n" + line + line, setup).error_name == "header_too_long");
}

TEST_CASE("the header count limit accepts exactly the limit and refuses one more") {
  const std::string input = "SEND\na:1\nb:2\nc:3\n\n\0"s;
  parser_setup setup;
  setup.lim.max_header_count = 3;
  CHECK(parse_one(input, setup).headers.size() == 3);
  setup.lim.max_header_count = 2;
  const auto e = parse_error_of(input, setup);
  CHECK(e.error_name == "too_many_headers");
  CHECK(e.snippet == "c:3");
}

TEST_CASE("the frame size limit accepts exactly the limit and refuses one more") {
  parser_setup setup;
  SUBCASE("body read to NUL") {
    const std::string input = "SEND\nd:q\n\n0123456789\0"s;  // 21 octets
    setup.lim.max_frame_bytes = 21;
    CHECK(parse_one(input, setup).body == "0123456789");
    setup.lim.max_frame_bytes = 20;
    const auto e = parse_error_of(input, setup);
    CHECK(e.error_name == "frame_too_large");
    CHECK(e.snippet == "SEND");
  }
  SUBCASE("content-length body") {
    const std::string input = "SEND\ncontent-length:3\n\nabc\0"s;  // 27 octets
    setup.lim.max_frame_bytes = 27;
    CHECK(parse_one(input, setup).body == "abc");
    setup.lim.max_frame_bytes = 26;
    const auto e = parse_error_of(input, setup);
    CHECK(e.error_name == "frame_too_large");
    CHECK(e.reason == "content-length 3 exceeds the frame limit of 26 octets");
    // Refused at the blank line: no body octet needs to arrive.
    CHECK(parse_error_of("SEND\ncontent-length:3\n\n"sv, setup).error_name == "frame_too_large");
  }
  SUBCASE("headers alone") {
    setup.lim.max_frame_bytes = 8;
    CHECK(parse_error_of("SEND\nab:c\n\n\0"sv, setup).error_name == "frame_too_large");
    setup.lim.max_frame_bytes = 6;  // "SEND\n\n" fills it: no room for the NUL
    CHECK(parse_error_of("SEND\n\n\0"sv, setup).error_name == "frame_too_large");
    setup.lim.max_frame_bytes = 7;
    CHECK(parse_one("SEND\n\n\0"sv, setup).command == "SEND");
  }
}

TEST_CASE("the default limits take a 10 MiB body with headers") {
  const std::string body(limits::default_max_body_bytes, 'x');
  const std::string input = "SEND\ndestination:/queue/big\n\n" + body + "\0"s;
  const auto r = run_whole({}, input);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].f.body.size() == body.size());
  const std::string over(limits{}.max_frame_bytes, 'x');
  const auto e = run_whole({}, "SEND\n\n" + over + "\0"s);
  REQUIRE(e.events.size() == 1);
  CHECK(e.events[0].error_name == "frame_too_large");
}

TEST_CASE("a stream of many frames gives the same frames at every cut") {
  const std::string input =
      "\nCONNECT\r\naccept-version:1.2\r\nhost:/\r\nlogin:a\\b\r\n\r\n\0\n"
      "SUBSCRIBE\nid:0\ndestination:/queue/a\nack:client-individual\n\n\0"
      "SEND\ndestination:/queue/a\ncontent-length:6\nk:v\\c\\\\\\n\\r\n\nab\0\ncd\0\r\n"
      "SEND\ndestination:/queue/a\n\ntext body\0"
      "BEGIN\ntransaction:t1\n\n\0ACK\nid:m-1\ntransaction:t1\n\n\0COMMIT\ntransaction:t1\n\n\0"
      "NACK\nid:m-2\n\n\0UNSUBSCRIBE\nid:0\n\n\0ABORT\ntransaction:t2\n\n\0"
      "DISCONNECT\nreceipt:99\n\n\0\n\n"s;
  const auto r = run_whole({}, input);
  REQUIRE(r.events.size() == 16);
  CHECK(r.events[4].f.body == "ab\0\ncd"s);
  CHECK(r.events[4].f.get("k") == "v:\\\n\r");
  CHECK(r.events[1].f.get("login") == "a\\b");
  CHECK(grind({}, input, 0) > input.size());
}

TEST_CASE("a server stream gives the same frames at every cut") {
  const std::string input =
      "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:tandem/0.1\n\n\0"
      "MESSAGE\ndestination:/queue/a\nmessage-id:1\nsubscription:0\nack:1\ncontent-length:2\n\n\0\0\0\n"
      "RECEIPT\nreceipt-id:7\n\n\0ERROR\nmessage:bad\\cthing\ncontent-length:4\n\noops\0"s;
  const parser_setup setup{direction::from_server};
  const auto r = run_whole(setup, input);
  REQUIRE(r.events.size() == 5);
  CHECK(r.events[4].f.get("message") == "bad:thing");
  grind(setup, input, 0);
}

TEST_CASE("every bad example gives the same error at every cut") {
  const parser_setup setup;
  for (std::string_view bad : {
           "SEND\n\n\0FOO\n\n\0"sv, "SEND\nno colon\n\n\0"sv, "SEND\nk:\\x\n\n\0"sv,
           "SEND\ncontent-length:2\n\nabc\0"sv, "SEND\ncontent-length:x\n\n\0"sv, "\r\r\n"sv,
           "MESSAGE\n\n\0"sv, "SEND\n:\n\n\0"sv}) {
    CAPTURE(bad);
    const auto r = run_whole(setup, bad);
    REQUIRE(!r.events.empty());
    CHECK(r.events.back().status == parse_status::error);
    grind(setup, bad);
  }
}

TEST_CASE("errors are sticky until reset") {
  parser p(direction::from_client);
  CHECK(p.feed("BOGUS\n"sv).status == parse_status::error);
  CHECK(p.error().code == errc::bad_command);
  CHECK(p.error().code.category().name() == std::string("stomp"));
  const auto again = p.feed("SEND\n\n\0"sv);
  CHECK(again.status == parse_status::error);
  CHECK(again.consumed == 0);
  p.reset();
  const std::string good = "SEND\n\n\0"s;
  CHECK(p.feed(good).status == parse_status::frame_ready);
}

TEST_CASE("a taken frame does not leak into the next one") {
  parser p(direction::from_client, {}, version::v1_2);
  const std::string input = "SEND\na:1\n\nxyz\0ACK\nid:2\n\n\0"s;
  const auto first = p.feed(input);
  const frame one = p.take_frame();
  const auto second = p.feed(std::span<const char>(input).subspan(first.consumed));
  REQUIRE(second.status == parse_status::frame_ready);
  CHECK(one == make("SEND", {{"a", "1"}}, "xyz"));
  CHECK(p.take_frame() == make("ACK", {{"id", "2"}}));
}

TEST_CASE("between_frames tells a clean end of stream from a torn frame") {
  parser p(direction::from_client);
  CHECK(p.between_frames());
  const std::string input = "SEND\n\nbody\0\n"s;
  for (std::size_t i = 0; i < input.size(); ++i) {
    CAPTURE(i);
    p.feed(std::span<const char>(input).subspan(i, 1));
    // Octet i = 0..9 leaves the SEND unfinished; 10 is its NUL, 11 a heart-beat.
    CHECK(p.between_frames() == (i >= 10));
  }
}

TEST_CASE("an empty feed needs more and consumes nothing") {
  parser p(direction::from_client);
  const auto r = p.feed(std::span<const char>());
  CHECK(r.status == parse_status::need_more);
  CHECK(r.consumed == 0);
}

TEST_CASE("snippets escape control octets and are cut at 32 octets") {
  CHECK(snippet("a\n\r\t\0\\\x7f\xff"sv) == "a\\n\\r\\t\\0\\\\\\x7f\\xff");
  CHECK(snippet(std::string(40, 'z')) == std::string(32, 'z') + "...");
  CHECK(snippet("") == "");
}

}  // namespace
}  // namespace tandem::stomp
