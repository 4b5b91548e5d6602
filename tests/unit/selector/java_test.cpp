// Java's conversions, which decide how a STOMP header compares with a number.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "broker/selector/detail/java.h"

namespace tandem::selector::detail {
namespace {

std::string format(double d) {
  char buf[java_double_chars];
  return std::string(buf, java_format_double(d, buf));
}

TEST_CASE("Integer.valueOf and Long.valueOf") {
  CHECK(java_parse_int("0") == 0);
  CHECK(java_parse_int("-12") == -12);
  CHECK(java_parse_int("+12") == 12);
  CHECK(java_parse_int("2147483647") == 2147483647);
  CHECK(java_parse_int("-2147483648") == std::numeric_limits<std::int32_t>::min());
  CHECK_FALSE(java_parse_int("2147483648"));
  CHECK_FALSE(java_parse_int(""));
  CHECK_FALSE(java_parse_int("-"));
  CHECK_FALSE(java_parse_int(" 1"));
  CHECK_FALSE(java_parse_int("1.0"));
  CHECK_FALSE(java_parse_int("0x1"));
  CHECK(java_parse_long("9223372036854775807") == std::numeric_limits<std::int64_t>::max());
  CHECK(java_parse_long("-9223372036854775808") == std::numeric_limits<std::int64_t>::min());
  CHECK_FALSE(java_parse_long("9223372036854775808"));
  CHECK(java_parse_long("007") == 7);
}

TEST_CASE("Double.valueOf") {
  CHECK(java_parse_double("1") == 1.0);
  CHECK(java_parse_double(" 1.5 ") == 1.5);
  CHECK(java_parse_double("-.5") == -0.5);
  CHECK(java_parse_double("5.") == 5.0);
  CHECK(java_parse_double("1e3") == 1000.0);
  CHECK(java_parse_double("1E-3") == 0.001);
  CHECK(java_parse_double("2.5f") == 2.5);
  CHECK(java_parse_double("2.5D") == 2.5);
  CHECK(java_parse_double("0x1.8p1") == 3.0);
  CHECK(java_parse_double("0X10P0") == 16.0);
  CHECK(std::isnan(*java_parse_double("NaN")));
  CHECK(java_parse_double("-Infinity") == -std::numeric_limits<double>::infinity());
  CHECK(java_parse_double("1e999") == std::numeric_limits<double>::infinity());
  CHECK(java_parse_double("1e-999") == 0.0);
  CHECK_FALSE(java_parse_double(""));
  CHECK_FALSE(java_parse_double("."));
  CHECK_FALSE(java_parse_double("1e"));
  CHECK_FALSE(java_parse_double("1.5ff"));
  CHECK_FALSE(java_parse_double("nan"));
  CHECK_FALSE(java_parse_double("0x1.8"));  // a hex float needs its p exponent
  CHECK_FALSE(java_parse_double("1,5"));
}

TEST_CASE("Boolean.valueOf") {
  CHECK(java_parse_boolean("true"));
  CHECK(java_parse_boolean("TrUe"));
  CHECK_FALSE(java_parse_boolean("yes"));
  CHECK_FALSE(java_parse_boolean("1"));
  CHECK_FALSE(java_parse_boolean(" true"));
}

TEST_CASE("Double.toString") {
  CHECK(format(1.0) == "1.0");
  CHECK(format(1.5) == "1.5");
  CHECK(format(100.0) == "100.0");
  CHECK(format(1234567.0) == "1234567.0");
  CHECK(format(1e7) == "1.0E7");
  CHECK(format(12345678.9) == "1.23456789E7");
  CHECK(format(0.001) == "0.001");
  CHECK(format(0.0001) == "1.0E-4");
  CHECK(format(-2.5e-5) == "-2.5E-5");
  CHECK(format(0.1) == "0.1");
  CHECK(format(1e300) == "1.0E300");
  CHECK(format(0.0) == "0.0");
  CHECK(format(-0.0) == "-0.0");
  CHECK(format(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(format(-std::numeric_limits<double>::infinity()) == "-Infinity");
  CHECK(format(std::numeric_limits<double>::max()) == "1.7976931348623157E308");
}

TEST_CASE("Double.compare and String.compareTo") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(java_compare_double(1, 2) < 0);
  CHECK(java_compare_double(-0.0, 0.0) < 0);
  CHECK(java_compare_double(nan, nan) == 0);
  CHECK(java_compare_double(nan, std::numeric_limits<double>::infinity()) > 0);
  CHECK(java_compare_string("a", "b") < 0);
  CHECK(java_compare_string("ab", "a") > 0);
  CHECK(java_compare_string("", "") == 0);
  CHECK(java_compare_string("é", "z") > 0);
  CHECK(java_compare_string("\xF0\x9F\x98\x80", "\xEF\xBC\xA1") < 0);  // U+1F600 < U+FF21 in UTF-16
  CHECK(java_compare_string("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x81") < 0);
}

}  // namespace
}  // namespace tandem::selector::detail
