// Refused selectors: the error code, where (offset, line, column) and the message that goes
// into the ERROR frame.
#include <doctest/doctest.h>

#include <string>

#include "broker/selector/errc.h"
#include "test_message.h"

namespace tandem::selector::test {
namespace {

void check_refused(std::string_view text, errc code, std::size_t column, std::string_view message,
                   const parse_options& options = {}) {
  CAPTURE(text);
  const parse_error e = refused(text, options);
  CHECK(errc_name(static_cast<errc>(e.code.value())) == std::string_view(errc_name(code)));
  CHECK(e.code == make_error_code(code));
  CHECK(e.column == column);
  CHECK(e.message == message);
}

TEST_CASE("syntax errors say what was expected, where, and what was found") {
  check_refused("a = (1", errc::syntax_error, 7, "expected ')' at column 7, found end of selector");
  check_refused("a = = 1", errc::syntax_error, 5, "expected an expression at column 5, found '='");
  check_refused("a = 1 b", errc::syntax_error, 7,
                "unexpected identifier 'b' at column 7: expected an operator or the end of the selector");
  check_refused("a IS 1", errc::syntax_error, 6, "expected NULL or NOT NULL after IS at column 6, found number 1");
  check_refused("a IS NOT 1", errc::syntax_error, 10, "expected NULL after IS NOT at column 10, found number 1");
  check_refused("a BETWEEN 1 OR 2", errc::syntax_error, 13,
                "expected AND between the bounds of BETWEEN at column 13, found 'OR'");
  check_refused("a IN 'x'", errc::syntax_error, 6, "expected '(' after IN at column 6, found string 'x'");
  check_refused("a IN ('x' 'y')", errc::syntax_error, 11,
                "expected ',' or ')' in the IN list at column 11, found string 'y'");
  check_refused("a IN (1)", errc::syntax_error, 7, "expected a string literal in the IN list at column 7, found number 1");
  check_refused("a LIKE 5", errc::syntax_error, 8, "expected a string literal after LIKE at column 8, found number 5");
  check_refused("a LIKE 'x' ESCAPE b", errc::syntax_error, 19,
                "expected a string literal after ESCAPE at column 19, found identifier 'b'");
  check_refused("", errc::syntax_error, 1, "expected an expression at column 1, found end of selector");
  check_refused("   ", errc::syntax_error, 4, "expected an expression at column 4, found end of selector");
  check_refused("a = 1 AND", errc::syntax_error, 10, "expected an expression at column 10, found end of selector");
  check_refused("a = 1.5f", errc::syntax_error, 8,
                "unexpected identifier 'f' at column 8: expected an operator or the end of the selector");
  check_refused("a = 08", errc::syntax_error, 6,
                "unexpected number 8 at column 6: expected an operator or the end of the selector");
}

TEST_CASE("lexical errors point at the character") {
  check_refused("a != 1", errc::bad_character, 3, "unexpected character '!' (at column 3)");
  check_refused("a = \"x\"", errc::bad_character, 5, "unexpected character '\"' (at column 5)");
  check_refused("a = 'x", errc::unterminated_string, 5, "string literal has no closing quote (at column 5)");
  check_refused("a = 1 .", errc::bad_character, 7, "unexpected character '.' (at column 7)");
  // Columns count characters, not octets.
  check_refused("'été' = a AND !", errc::bad_character, 15, "unexpected character '!' (at column 15)");
  check_refused("é = 1", errc::bad_character, 1, "unexpected character octet 0xc3 (at column 1)");
}

TEST_CASE("an error on a later line names the line") {
  const parse_error e = refused("a = 1\nAND (b = 2");
  CHECK(e.line == 2);
  CHECK(e.column == 11);
  CHECK(e.offset == 16);
  CHECK(e.message == "expected ')' at column 11 of line 2, found end of selector");
}

TEST_CASE("ActiveMQ's parse-time type checks") {
  check_refused("1", errc::not_boolean, 1,
                "the selector must be a condition, but the expression starting with number 1 at column 1 is not boolean");
  check_refused("'a'", errc::not_boolean, 1,
                "the selector must be a condition, but the expression starting with string 'a' at column 1 is not boolean");
  check_refused("a + 1", errc::not_boolean, 1,
                "the selector must be a condition, but the expression starting with identifier 'a' at column 1 is not boolean");
  check_refused("TRUE AND 1", errc::not_boolean, 10,
                "the right operand of AND must be a condition, but the expression starting with number 1 at column 10 is not boolean");
  check_refused("1 OR TRUE", errc::not_boolean, 1,
                "the left operand of OR must be a condition, but the expression starting with number 1 at column 1 is not boolean");
  check_refused("NOT 1", errc::not_boolean, 5,
                "the operand of NOT must be a condition, but the expression starting with number 1 at column 5 is not boolean");
  check_refused("a = NULL", errc::not_comparable, 5, "NULL at column 5 cannot be compared with = or <>; use IS NULL");
  check_refused("NULL <> a", errc::not_comparable, 1, "NULL at column 1 cannot be compared with = or <>; use IS NULL");
  check_refused("TRUE = 1", errc::not_comparable, 1, "'TRUE' at column 1 cannot be compared with number 1");
  check_refused("a > 'x'", errc::not_comparable, 5,
                "string 'x' at column 5 cannot be compared with < <= > >= or BETWEEN (only numbers can)");
  check_refused("TRUE < 1", errc::not_comparable, 1,
                "'TRUE' at column 1 cannot be compared with < <= > >= or BETWEEN (only numbers can)");
  check_refused("(a = 1) > 1", errc::not_comparable, 2,
                "identifier 'a' at column 2 cannot be compared with < <= > >= or BETWEEN (only numbers can)");
  check_refused("a BETWEEN 'a' AND 'z'", errc::not_comparable, 11,
                "string 'a' at column 11 cannot be compared with < <= > >= or BETWEEN (only numbers can)");
  check_refused("1 IN ('1')", errc::in_needs_property, 1,
                "IN needs a property name on its left, found number 1 at column 1");
  check_refused("a + 1 IN ('1')", errc::in_needs_property, 1,
                "IN needs a property name on its left, found identifier 'a' at column 1");
  // Accepted by the same rules: TRUE and FALSE compare with each other, a number with TRUE.
  CHECK(parse("1 = TRUE"));
  CHECK(parse("TRUE = FALSE"));
  CHECK(parse("a LIKE 'x' = TRUE"));
  CHECK(parse("-'a' > 1"));  // a negation is no constant for the checks
}

TEST_CASE("LIKE ESCAPE must be one character") {
  check_refused("a LIKE 'x' ESCAPE ''", errc::bad_escape, 19, "the ESCAPE of LIKE at column 19 must be exactly one character");
  check_refused("a LIKE 'x' ESCAPE 'ab'", errc::bad_escape, 19, "the ESCAPE of LIKE at column 19 must be exactly one character");
  // One character, but two UTF-16 units in Java: ActiveMQ refuses it too.
  check_refused("a LIKE 'x' ESCAPE '😀'", errc::bad_escape, 19, "the ESCAPE of LIKE at column 19 must be exactly one character");
}

TEST_CASE("integer literals beyond the 64-bit range are refused") {
  check_refused("a = 9223372036854775808", errc::number_out_of_range, 5,
                "number 9223372036854775808 at column 5 is out of range (above 2^63-1)");
  check_refused("a = 18446744073709551616", errc::number_out_of_range, 5,
                "number 18446744073709551616 at column 5 is out of range (above 2^63-1)");
  check_refused("a = 0x8000000000000000", errc::number_out_of_range, 5,
                "number 0x8000000000000000 at column 5 is out of range (above 2^63-1)");
  check_refused("a = 01000000000000000000000", errc::number_out_of_range, 5,
                "number 01000000000000000000000 at column 5 is out of range (above 2^63-1)");
  CHECK(parse("a = -9223372036854775808"));
}

TEST_CASE("XPATH, XQUERY and ActiveMQ's functions are refused by name") {
  check_refused("XPATH '//a'", errc::unsupported, 1,
                "XPATH selectors at column 1 are an ActiveMQ extension that Tandem does not support");
  check_refused("a = 1 OR xquery '//a'", errc::unsupported, 10,
                "XQUERY selectors at column 10 are an ActiveMQ extension that Tandem does not support");
  check_refused("REGEX('a.*', a)", errc::unsupported, 1,
                "function REGEX() at column 1 is an ActiveMQ extension that Tandem does not support");
  check_refused("INLIST(SPLIT(a, ','), 'x')", errc::unsupported, 1,
                "function INLIST() at column 1 is an ActiveMQ extension that Tandem does not support");
  check_refused("a = lower(b)", errc::unknown_function, 5, "unknown function 'lower' at column 5");
}

TEST_CASE("the convert_string_expressions: prefix is SQL text for STOMP subscribers") {
  // ActiveMQ's STOMP transport prepends the prefix itself; a second one is parsed and refused.
  check_refused("convert_string_expressions:a = 1", errc::bad_character, 27,
                "unexpected character ':' (at column 27)");
  parse_options openwire;
  openwire.conversion = string_conversion::by_prefix;
  CHECK(parse("convert_string_expressions:a = 1", openwire));
  // Positions stay relative to the whole text.
  const parse_error e = refused("convert_string_expressions:a = (", openwire);
  CHECK(e.column == 33);
  CHECK(e.offset == 32);
}

TEST_CASE("a selector longer than max_length is refused before parsing") {
  parse_options small;
  small.max_length = 16;
  CHECK(parse("a = 'abcdefghij'", small));
  check_refused("a = 'abcdefghijk'", errc::too_long, 17,
                "selector is 17 octets long, more than the limit of 16 (max_length)", small);
  CHECK(parse_options{}.max_length == 10240);
}

TEST_CASE("nesting deeper than max_depth is refused, however it is built") {
  parse_options options;
  options.max_depth = 20;
  const auto nested = [](std::string_view open, std::string_view core, std::string_view close, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += open;
    s += core;
    for (int i = 0; i < n; ++i) s += close;
    return s;
  };
  CHECK(parse(nested("(", "TRUE", ")", 15), options));
  CHECK(refused(nested("(", "TRUE", ")", 25), options).code == make_error_code(errc::too_deep));
  CHECK(refused(nested("NOT ", "TRUE", "", 25), options).code == make_error_code(errc::too_deep));
  CHECK(refused(nested("-", "1 > 0", "", 25), options).code == make_error_code(errc::too_deep));
  std::string chain = "a";
  for (int i = 0; i < 25; ++i) chain += " + a";
  CHECK(refused(chain + " > 1", options).code == make_error_code(errc::too_deep));
  // OR and AND chains are flattened as ActiveMQ does, so long ones stay shallow.
  std::string ors = "a = '0'";
  for (int i = 1; i < 200; ++i) ors += " OR a = '" + std::to_string(i) + "'";
  CHECK(parse(ors, options));
  const parse_error e = refused(nested("(", "TRUE", ")", 25), options);
  CHECK(e.message == "selector nests deeper than 20 levels at column 21 (limit max_depth)");
}

TEST_CASE("a hostile selector at the default limits is refused without exhausting the stack") {
  CHECK(refused(std::string(5000, '(') + "TRUE" + std::string(5000, ')')).code == make_error_code(errc::too_deep));
  CHECK(refused(std::string(5000, '-') + "1 > 0").code == make_error_code(errc::too_deep));
  std::string nots;
  for (int i = 0; i < 2000; ++i) nots += "NOT ";
  CHECK(refused(nots + "TRUE").code == make_error_code(errc::too_deep));
}

TEST_CASE("value() of a refused selector throws system_error with the message") {
  CHECK_THROWS_WITH_AS(parse("a = (").value(), "expected an expression at column 6, found end of selector: selector syntax error",
                       std::system_error);
}

}  // namespace
}  // namespace tandem::selector::test
