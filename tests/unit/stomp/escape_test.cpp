// <ostream> first: doctest prints std::error_code through operator<<, which needs it.
#include <ostream>

#include <doctest/doctest.h>

#include <string>

#include "broker/stomp/errc.h"
#include "broker/stomp/escape.h"

using namespace std::string_literals;

namespace tandem::stomp {
namespace {

std::string unescaped(std::string_view in, escaping e) {
  std::string out = "junk";
  REQUIRE(unescape(in, e, out));
  return out;
}

std::string escaped(std::string_view in, escaping e, header_part part = header_part::value) {
  std::string out = ">";
  REQUIRE(!escape_append(in, e, part, out));
  return out.substr(1);
}

TEST_CASE("escaping depends on version and command") {
  CHECK(escaping_for(version::v1_0, command::send) == escaping::none);
  CHECK(escaping_for(version::v1_1, command::send) == escaping::v1_1);
  CHECK(escaping_for(version::v1_2, command::message) == escaping::v1_2);
  for (version v : {version::v1_0, version::v1_1, version::v1_2}) {
    CHECK(escaping_for(v, command::connect) == escaping::none);
    CHECK(escaping_for(v, command::stomp) == escaping::none);
    CHECK(escaping_for(v, command::connected) == escaping::none);
  }
}

TEST_CASE("each escape decodes in the versions that define it") {
  CHECK(unescaped("\\\\", escaping::v1_1) == "\\");
  CHECK(unescaped("\\n", escaping::v1_1) == "\n");
  CHECK(unescaped("\\c", escaping::v1_1) == ":");
  CHECK(unescaped("\\\\", escaping::v1_2) == "\\");
  CHECK(unescaped("\\n", escaping::v1_2) == "\n");
  CHECK(unescaped("\\c", escaping::v1_2) == ":");
  CHECK(unescaped("\\r", escaping::v1_2) == "\r");
  CHECK(unescaped("\\r\\n\\c\\\\", escaping::none) == "\\r\\n\\c\\\\");
  CHECK(unescaped("plain", escaping::v1_2) == "plain");
  CHECK(unescaped("", escaping::v1_2) == "");
}

TEST_CASE("undefined escapes report the offset of their backslash") {
  std::string out;
  std::size_t at = 99;
  CHECK(!unescape("ab\\r", escaping::v1_1, out, &at));
  CHECK(at == 2);
  CHECK(!unescape("\\n\\t", escaping::v1_2, out, &at));
  CHECK(at == 2);
  CHECK(!unescape("abc\\", escaping::v1_2, out, &at));
  CHECK(at == 3);
  CHECK(!unescape("\\", escaping::v1_1, out));
}

TEST_CASE("each special octet is escaped in the versions that can") {
  CHECK(escaped("a\\b\nc:d\re", escaping::v1_2) == "a\\\\b\\nc\\cd\\re");
  CHECK(escaped("a\\b\nc:d\re", escaping::v1_1) == "a\\\\b\\nc\\cd\re");
  CHECK(escaped("a\\b:c\rd", escaping::none) == "a\\b:c\rd");
  CHECK(escaped("", escaping::v1_2) == "");
  CHECK(escaped("plain", escaping::v1_2) == "plain");
}

TEST_CASE("octets a version cannot carry are refused without output") {
  std::string out = "keep";
  CHECK(escape_append("a\nb", escaping::none, header_part::value, out) == errc::unencodable_header);
  CHECK(escape_append("a:b", escaping::none, header_part::name, out) == errc::unencodable_header);
  CHECK(escape_append("ab\r", escaping::none, header_part::value, out) == errc::unencodable_header);
  CHECK(escape_append("ab\r", escaping::v1_1, header_part::value, out) == errc::unencodable_header);
  CHECK(out == "keep");
  CHECK(!escape_append("ab\r", escaping::v1_1, header_part::name, out));
  CHECK(!escape_append("ab\r", escaping::v1_2, header_part::value, out));
}

TEST_CASE("escaping then unescaping gives the original for every octet") {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  for (escaping e : {escaping::v1_1, escaping::v1_2}) {
    CHECK(unescaped(escaped(all, e, header_part::name), e) == all);
  }
}

}  // namespace
}  // namespace tandem::stomp
