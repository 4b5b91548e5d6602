// broker/stomp/utf8: strict UTF-8 and the \xNN form of invalid bytes.
// Regression (issue 17, finding 5): a non-UTF-8 destination name was accepted and journaled,
// then broke GET /api/destinations and /metrics.
#include <string>

#include <doctest/doctest.h>

#include "broker/stomp/utf8.h"

using namespace tandem::stomp;

TEST_CASE("valid UTF-8 passes, including 2, 3 and 4 byte sequences") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("/queue/orders"));
  CHECK(valid_utf8("/queue/caf\xc3\xa9"));             // é
  CHECK(valid_utf8("/queue/\xe2\x82\xac"));             // €
  CHECK(valid_utf8("/queue/\xf0\x9f\x93\xa6"));         // U+1F4E6
  CHECK(valid_utf8("\xf4\x8f\xbf\xbf"));                // U+10FFFF
}

TEST_CASE("invalid UTF-8 is refused") {
  CHECK_FALSE(valid_utf8("/queue/\xff"));
  CHECK_FALSE(valid_utf8("/queue/\xc3"));                // truncated
  CHECK_FALSE(valid_utf8("\xc0\xaf"));                   // overlong '/'
  CHECK_FALSE(valid_utf8("\xe0\x80\xaf"));               // overlong
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));               // surrogate U+D800
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));           // above U+10FFFF
  CHECK_FALSE(valid_utf8("\x80"));                       // lone continuation
}

TEST_CASE("long ASCII runs are checked 8 bytes at a time, whatever lies at any position") {
  // The fast path must neither skip a bad byte nor cut a sequence at a word boundary.
  for (std::size_t length : {7u, 8u, 9u, 16u, 33u, 1024u}) {
    const std::string ascii(length, 'a');
    CHECK(valid_utf8(ascii));
    for (std::size_t at = 0; at < length; ++at) {
      std::string bad = ascii;
      bad[at] = '\xff';
      CHECK_FALSE(valid_utf8(bad));
      std::string good = ascii;
      good.insert(at, "\xe2\x82\xac");  // a 3-byte sequence straddling any boundary
      CHECK(valid_utf8(good));
      good.erase(at + 2, 1);  // now truncated
      CHECK_FALSE(valid_utf8(good));
    }
  }
}

TEST_CASE("printable_utf8 keeps valid text and shows invalid bytes as \\xNN") {
  CHECK(printable_utf8("/queue/caf\xc3\xa9") == "/queue/caf\xc3\xa9");
  CHECK(printable_utf8("/queue/\xff\xfe") == "/queue/\\xff\\xfe");
  CHECK(printable_utf8("a\xc3") == "a\\xc3");
  CHECK(valid_utf8(printable_utf8("\xed\xa0\x80x\xc0")));
}
