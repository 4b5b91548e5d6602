// The grammar of ActiveMQ's SelectorParser.jj, token by token and operator by operator.
#include <doctest/doctest.h>

#include "test_message.h"

namespace tandem::selector::test {
namespace {

TEST_CASE("boolean literals are keywords in any case") {
  CHECK(matches("TRUE"));
  CHECK(matches("true"));
  CHECK(matches("tRuE"));
  CHECK_FALSE(matches("FALSE"));
  CHECK(truth_of("NULL") == truth::unknown);
}

TEST_CASE("integer literals: decimal, hex, octal, and the l suffix") {
  CHECK(matches("31 = 31"));
  CHECK(matches("0x1F = 31"));
  CHECK(matches("0X1f = 31"));
  CHECK(matches("017 = 15"));
  CHECK(matches("0 = 0"));
  CHECK(matches("31L = 31"));
  CHECK(matches("31l = 31"));
  // Beyond Integer: a Long, still equal to its own value and ordered against ints.
  CHECK(matches("2147483648 > 2147483647"));
  CHECK(matches("0xFFFFFFFF = 4294967295"));
  CHECK(matches("9223372036854775807 > 0"));
  CHECK(matches("-9223372036854775808 < 0"));
  CHECK(matches("-9223372036854775808 = -9223372036854775807 - 1"));
}

TEST_CASE("floating literals: point, leading point, exponent") {
  CHECK(matches("1.5 = 1.5"));
  CHECK(matches(".5 = 0.5"));
  CHECK(matches("5. = 5"));
  CHECK(matches("1e3 = 1000"));
  CHECK(matches("1E+3 = 1000.0"));
  CHECK(matches("2.5e-1 = 0.25"));
  CHECK(matches("019.5 = 19.5"));  // not octal: the longest token is the float
  CHECK(matches("1E999 > 1E308"));  // Double.valueOf overflows to Infinity
}

TEST_CASE("string literals double their quotes") {
  CHECK(matches("a = 'it''s'", {{"a", "it's"}}));
  CHECK(matches("a = ''", {{"a", ""}}));
  CHECK(matches("a = 'x y'", {{"a", "x y"}}));
  CHECK(matches("a = 'été'", {{"a", "été"}}));
}

TEST_CASE("identifiers are case sensitive and may use $ and _") {
  const test_message m{{"Color", "red"}, {"$x", "1"}, {"_y2", "2"}};
  CHECK(matches("Color = 'red'", m));
  CHECK(truth_of("color = 'red'", m) == truth::unknown);
  CHECK(matches("$x = 1", m));
  CHECK(matches("_y2 = 2", m));
}

TEST_CASE("whitespace and comments are skipped") {
  CHECK(matches(" \t\r\n\fTRUE\n"));
  CHECK(matches("/* a comment */ TRUE /**/"));
  CHECK(matches("TRUE -- a comment\n"));
  CHECK(matches("-- first line\r\nTRUE"));
}

TEST_CASE("a -- with no line break after it is two minus signs, as in ActiveMQ") {
  CHECK(matches("2 = 1 --1"));        // 1 - (-1)
  CHECK_FALSE(matches("2 = 1 --1\n"));  // a comment: 2 = 1
}

TEST_CASE("comparison operators on numbers") {
  CHECK(matches("1 = 1"));
  CHECK(matches("1 <> 2"));
  CHECK(matches("1 < 2"));
  CHECK(matches("2 <= 2"));
  CHECK(matches("3 > 2"));
  CHECK(matches("2 >= 2"));
  CHECK_FALSE(matches("2 < 2"));
  CHECK_FALSE(matches("1 > 2"));
}

TEST_CASE("arithmetic follows Java: int, long, double, and division in double") {
  CHECK(matches("1 + 2 * 3 = 7"));
  CHECK(matches("(1 + 2) * 3 = 9"));
  CHECK(matches("7 - 2 - 1 = 4"));  // left-associative
  CHECK(matches("1 / 2 = 0.5"));   // ArithmeticExpression.divide is always double
  CHECK(matches("7 % 3 = 1"));
  CHECK(matches("-7 % 3 = -1"));   // Java's % keeps the dividend's sign
  CHECK(matches("7.5 % 2 = 1.5"));
  CHECK(matches("-(3) = 0 - 3"));
  CHECK(matches("+3 = 3"));
  CHECK(matches("- -3 = 3"));
  CHECK(matches("2147483647 + 1 < 0"));  // Integer overflow wraps
  CHECK(matches("2147483648 + 1 = 2147483649"));
  CHECK(matches("9223372036854775807 + 1 < 0"));  // Long overflow wraps
  CHECK(matches("1 / 0 > 1E308"));       // Infinity
  CHECK(matches("0.0 / 0 = 0.0 / 0"));   // NaN equals itself (Double.compareTo)
  CHECK(matches("0.0 / 0 > 1E308"));     // and is above everything
  CHECK_FALSE(matches("0.0 = -0.0"));    // Double.compareTo: -0.0 < 0.0
  CHECK(matches("-0.0 < 0.0"));
}

TEST_CASE("AND binds tighter than OR; comparisons tighter than AND") {
  CHECK(matches("TRUE OR TRUE AND FALSE"));
  CHECK_FALSE(matches("(TRUE OR TRUE) AND FALSE"));
  CHECK(matches("1 = 1 AND 2 = 2"));
  CHECK(matches("1 < 2 = TRUE"));  // = is below < in the grammar: (1 < 2) = TRUE
}

TEST_CASE("BETWEEN and NOT BETWEEN are inclusive") {
  const test_message m{{"n", "5"}};
  CHECK(matches("n BETWEEN 1 AND 10", m));
  CHECK(matches("n BETWEEN 5 AND 5", m));
  CHECK_FALSE(matches("n BETWEEN 6 AND 10", m));
  CHECK(matches("n NOT BETWEEN 6 AND 10", m));
  CHECK_FALSE(matches("n NOT BETWEEN 5 AND 10", m));
  CHECK(matches("n BETWEEN 1 AND 10 AND TRUE", m));  // the second AND is the logical one
  CHECK(matches("2.5 BETWEEN 2 AND 3"));
}

TEST_CASE("IN and NOT IN take string literals") {
  const test_message m{{"c", "red"}};
  CHECK(matches("c IN ('red', 'green')", m));
  CHECK_FALSE(matches("c IN ('blue')", m));
  CHECK(matches("c NOT IN ('blue', 'green')", m));
  CHECK_FALSE(matches("c NOT IN ('red')", m));
  CHECK(matches("(c) IN ('red')", m));  // parentheses keep the property
}

TEST_CASE("a long IN list is a set") {
  std::string selector = "c IN (";
  for (int i = 0; i < 500; ++i) selector += (i ? ", '" : "'") + std::to_string(i * 7) + "'";
  selector += ")";
  const auto e = parsed(selector);
  CHECK(e.matches(test_message{{"c", "693"}}));
  CHECK_FALSE(e.matches(test_message{{"c", "694"}}));
  CHECK(e.matches(test_message{{"c", "0"}}));
  CHECK(e.matches(test_message{{"c", "3493"}}));
}

TEST_CASE("LIKE: % any run, _ one character, anchored at both ends") {
  const auto like = [](std::string_view pattern, std::string value) {
    return matches("v LIKE '" + std::string(pattern) + "'", test_message{{"v", std::move(value)}});
  };
  CHECK(like("ab%", "abc"));
  CHECK(like("ab%", "ab"));
  CHECK_FALSE(like("ab%", "xab"));
  CHECK(like("%b%", "abc"));
  CHECK(like("a_c", "abc"));
  CHECK_FALSE(like("a_c", "ac"));
  CHECK_FALSE(like("a_c", "abbc"));
  CHECK(like("%", ""));
  CHECK(like("", ""));
  CHECK_FALSE(like("", "a"));
  CHECK(like("%a%a%a%b", "xaxaxaab"));
  CHECK_FALSE(like("%a%a%a%b", std::string(5000, 'a')));  // no exponential backtracking
  CHECK(like("a%b", "a\nb"));   // DOTALL
  CHECK(like("a.b", "a.b"));    // regex characters are literal
  CHECK_FALSE(like("a.b", "axb"));
  CHECK(like("[x]*", "[x]*"));
  CHECK(like("_", "é"));        // one character, two octets
  CHECK(like("_", "😀"));       // one character above U+FFFF, four octets
  CHECK(like("é_", "éa"));
  CHECK(matches("v NOT LIKE 'a%'", test_message{{"v", "b"}}));
}

TEST_CASE("LIKE ESCAPE makes the next _ % or escape literal, and nothing else") {
  const auto like = [](std::string_view clause, std::string value) {
    return matches("v LIKE " + std::string(clause), test_message{{"v", std::move(value)}});
  };
  CHECK(like(R"('a\_b' ESCAPE '\')", "a_b"));
  CHECK_FALSE(like(R"('a\_b' ESCAPE '\')", "axb"));
  CHECK(like(R"('100\%' ESCAPE '\')", "100%"));
  CHECK_FALSE(like(R"('100\%' ESCAPE '\')", "1000"));
  CHECK(like(R"('a\\b' ESCAPE '\')", R"(a\b)"));
  CHECK(like(R"('a\b' ESCAPE '\')", R"(a\b)"));  // before 'b' the escape is itself
  CHECK(like(R"('a\' ESCAPE '\')", R"(a\)"));    // and at the end
  CHECK(like("'a!%' ESCAPE '!'", "a%"));
  CHECK(like("'aé_' ESCAPE 'é'", "a_"));        // a two-octet escape character
  CHECK(like(R"('a\_b')", R"(a\xb)"));            // no ESCAPE: backslash is ordinary
}

TEST_CASE("IS NULL and IS NOT NULL") {
  const test_message m{{"a", "x"}};
  CHECK(matches("b IS NULL", m));
  CHECK_FALSE(matches("a IS NULL", m));
  CHECK(matches("a IS NOT NULL", m));
  CHECK_FALSE(matches("b IS NOT NULL", m));
  CHECK(matches("NULL IS NULL"));
  CHECK_FALSE(matches("1 IS NULL"));
  CHECK(matches("b + 1 IS NULL", m));
  CHECK(matches("a = 'y' IS NOT NULL", m));  // (a = 'y') IS NOT NULL
}

TEST_CASE("NOT binds tighter than comparison, as in ActiveMQ's grammar") {
  // NOT a = 'x' is (NOT a) = 'x': a boolean compared with a string, which ActiveMQ aborts
  // with conversion on; so it never matches. NOT (a = 'x') is what users mean.
  const test_message x{{"a", "x"}}, y{{"a", "y"}};
  CHECK(truth_of("NOT a = 'x'", x) == truth::unknown);
  CHECK(truth_of("NOT a = 'x'", y) == truth::unknown);
  CHECK_FALSE(matches("NOT (a = 'x')", x));
  CHECK(matches("NOT (a = 'x')", y));
}

}  // namespace
}  // namespace tandem::selector::test
