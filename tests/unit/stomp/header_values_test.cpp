// <ostream> first: doctest prints std::error_code through operator<<, which needs it.
#include <ostream>

#include <doctest/doctest.h>

#include "broker/stomp/errc.h"
#include "broker/stomp/header_values.h"

using namespace std::chrono_literals;

namespace tandem::stomp {
namespace {

TEST_CASE("content-length accepts decimal digits only") {
  CHECK(parse_content_length("0").value() == 0);
  CHECK(parse_content_length("00012").value() == 12);
  CHECK(parse_content_length("18446744073709551615").value() == 18446744073709551615ull);
  for (std::string_view bad : {"", "-1", "+1", " 1", "1 ", "1.0", "0x1", "18446744073709551616"}) {
    CAPTURE(bad);
    CHECK(parse_content_length(bad).error() == errc::bad_content_length);
  }
}

TEST_CASE("the highest common version is chosen") {
  CHECK(choose_version(std::nullopt).value() == version::v1_0);
  CHECK(choose_version("1.0").value() == version::v1_0);
  CHECK(choose_version("1.1,1.0").value() == version::v1_1);
  CHECK(choose_version("1.0,1.1,1.2").value() == version::v1_2);
  CHECK(choose_version(" 1.2 , 2.0").value() == version::v1_2);
  CHECK(choose_version("1.2,1.0").value() == version::v1_2);
  CHECK(choose_version("2.0,3.1").error() == errc::no_common_version);
  CHECK(choose_version("").error() == errc::no_common_version);
  CHECK(choose_version(",,").error() == errc::no_common_version);
}

TEST_CASE("heart-beat headers parse and format") {
  CHECK(parse_heart_beat("0,0").value() == heart_beat{});
  CHECK(parse_heart_beat("1000, 5000").value() == heart_beat{1000ms, 5000ms});
  CHECK(parse_heart_beat("4294967295,1").value() == heart_beat{4294967295ms, 1ms});
  for (std::string_view bad : {"", "0", "1,", ",1", "a,b", "-1,0", "1,2,3", "1;2", "4294967296,0"}) {
    CAPTURE(bad);
    CHECK(parse_heart_beat(bad).error() == errc::bad_heart_beat);
  }
  CHECK(format_heart_beat({10000ms, 0ms}) == "10000,0");
  CHECK(parse_heart_beat(format_heart_beat({7ms, 9ms})).value() == heart_beat{7ms, 9ms});
}

TEST_CASE("heart-beat negotiation takes the larger period unless a side says 0") {
  const heart_beat server{10000ms, 10000ms};
  CHECK(negotiate_heart_beat(server, {0ms, 0ms}) == heart_beat_periods{0ms, 0ms});
  CHECK(negotiate_heart_beat(server, {4000ms, 0ms}) == heart_beat_periods{0ms, 10000ms});
  CHECK(negotiate_heart_beat(server, {0ms, 20000ms}) == heart_beat_periods{20000ms, 0ms});
  CHECK(negotiate_heart_beat(server, {30000ms, 1000ms}) == heart_beat_periods{10000ms, 30000ms});
  CHECK(negotiate_heart_beat({0ms, 0ms}, {1000ms, 1000ms}) == heart_beat_periods{0ms, 0ms});
  const heart_beat a{1500ms, 0ms};
  const heart_beat b{2500ms, 3000ms};
  CHECK(negotiate_heart_beat(a, b).send_every == negotiate_heart_beat(b, a).expect_every);
  CHECK(negotiate_heart_beat(a, b).expect_every == negotiate_heart_beat(b, a).send_every);
}

TEST_CASE("errors carry the stomp category and their enumerator names") {
  const std::error_code ec = errc::bad_escape;
  CHECK(ec.category().name() == std::string("stomp"));
  CHECK(ec.message() == "undefined escape sequence in header");
  CHECK(std::string(errc_name(errc::missing_nul)) == "missing_nul");
  CHECK(std::string(errc_name(static_cast<errc>(999))) == "unknown");
}

}  // namespace
}  // namespace tandem::stomp
