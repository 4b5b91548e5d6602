// ActiveMQ's evaluation rules: SQL three-valued logic, its NULL quirks, and type mixes.
#include <doctest/doctest.h>

#include <array>
#include <string>

#include "test_message.h"

namespace tandem::selector::test {
namespace {

constexpr std::array<std::string_view, 3> operands{"TRUE", "FALSE", "NULL"};
constexpr truth T = truth::true_, F = truth::false_, U = truth::unknown;

TEST_CASE("AND, OR and NOT follow SQL's three-valued truth tables") {
  // Rows and columns: TRUE, FALSE, NULL.
  const truth and_table[3][3] = {{T, F, U}, {F, F, F}, {U, F, U}};
  const truth or_table[3][3] = {{T, T, T}, {T, F, U}, {T, U, U}};
  const truth not_table[3] = {F, T, U};
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(operands[i]);
    CHECK(truth_of("NOT " + std::string(operands[i])) == not_table[i]);
    for (std::size_t j = 0; j < 3; ++j) {
      CAPTURE(operands[j]);
      CHECK(truth_of(std::string(operands[i]) + " AND " + std::string(operands[j])) == and_table[i][j]);
      CHECK(truth_of(std::string(operands[i]) + " OR " + std::string(operands[j])) == or_table[i][j]);
    }
  }
}

TEST_CASE("a missing header is NULL in every operator") {
  const test_message m{{"a", "x"}};
  CHECK(truth_of("missing = 'x'", m) == U);
  CHECK(truth_of("missing <> 'x'", m) == U);
  CHECK(truth_of("missing > 1", m) == U);
  CHECK(truth_of("1 < missing", m) == U);
  CHECK(truth_of("missing + 1 > 1", m) == U);
  CHECK(truth_of("1 + missing > 1", m) == U);
  CHECK(truth_of("-missing < 1", m) == U);
  CHECK(truth_of("missing LIKE 'x%'", m) == U);
  CHECK(truth_of("missing NOT LIKE 'x%'", m) == U);
  CHECK(truth_of("missing IN ('x')", m) == U);
  CHECK(truth_of("missing NOT IN ('x')", m) == U);
  CHECK(truth_of("missing BETWEEN 1 AND 2", m) == U);
  CHECK(truth_of("missing NOT BETWEEN 1 AND 2", m) == U);
  CHECK(truth_of("missing", m) == U);
  CHECK(truth_of("missing IS NULL", m) == T);
  CHECK(truth_of("missing IS NOT NULL", m) == F);
}

TEST_CASE("ActiveMQ's EqualsExpression: NULL = NULL is TRUE and value = NULL is FALSE") {
  // EqualsExpression.evaluate: both null -> TRUE; only the left null -> NULL; only the right
  // null -> FALSE. So the two sides of = are not symmetric.
  const test_message m{{"a", "x"}};
  CHECK(truth_of("missing = other", m) == T);
  CHECK(truth_of("missing <> other", m) == F);
  CHECK(truth_of("'x' = missing", m) == F);
  CHECK(truth_of("'x' <> missing", m) == T);
  CHECK(truth_of("a = missing", m) == F);
  CHECK(truth_of("missing = a", m) == U);
}

TEST_CASE("STOMP headers convert to the other operand's number type (convert_string_expressions)") {
  const test_message m{{"n", "10"}, {"d", "10.5"}, {"big", "3000000000"}, {"s", " 10"},
                       {"plus", "+10"}, {"hex", "0x10"}, {"e", "1e1"}, {"f", "10.5f"}};
  CHECK(truth_of("n = 10", m) == T);
  CHECK(truth_of("n > 9", m) == T);
  CHECK(truth_of("9 < n", m) == T);
  CHECK(truth_of("n = 10.0", m) == T);  // Double.valueOf("10")
  CHECK(truth_of("n BETWEEN 1 AND 20", m) == T);
  // Integer.valueOf("10.5") throws: the comparison is FALSE, whatever the operator.
  CHECK(truth_of("d > 10", m) == F);
  CHECK(truth_of("d < 10", m) == F);
  CHECK(truth_of("d = 10", m) == F);
  CHECK(truth_of("d <> 10", m) == T);
  CHECK(truth_of("d > 10.0", m) == T);
  CHECK(truth_of("f = 10.5", m) == T);          // Double.valueOf takes a float suffix
  CHECK(truth_of("e = 10.0", m) == T);
  CHECK(truth_of("e = 10", m) == F);
  CHECK(truth_of("big = 3000000000", m) == T);  // a long literal: Long.valueOf
  CHECK(truth_of("big > 1", m) == F);           // an int literal: Integer.valueOf overflows
  CHECK(truth_of("big > 1L", m) == F);          // 1L is still an int: the L changes nothing
  CHECK(truth_of("big > 1.0", m) == T);
  CHECK(truth_of("s = 10", m) == F);            // Integer.valueOf takes no spaces
  CHECK(truth_of("s = 10.0", m) == T);          // Double.valueOf trims them
  CHECK(truth_of("plus = 10", m) == T);
  CHECK(truth_of("hex = 16", m) == F);
}

TEST_CASE("without conversion a string never equals or orders against a number") {
  parse_options openwire;
  openwire.conversion = string_conversion::by_prefix;
  const test_message m{{"n", "10"}};
  CHECK(truth_of("n = 10", m, openwire) == F);
  CHECK(truth_of("n > 1", m, openwire) == F);
  CHECK(truth_of("n = '10'", m, openwire) == T);
  CHECK(truth_of("convert_string_expressions:n = 10", m, openwire) == T);
  CHECK(parsed("convert_string_expressions:n = 10", openwire).converts_strings());
  CHECK_FALSE(parsed("n = 10", openwire).converts_strings());
  CHECK(parsed("n = 10").converts_strings());
}

TEST_CASE("strings compare with strings lexicographically, even with conversion on") {
  const test_message m{{"a", "10"}, {"b", "9"}, {"c", "10"}};
  CHECK(truth_of("a < b", m) == T);  // "10" < "9": both strings, so no conversion
  CHECK(truth_of("a = c", m) == T);
  CHECK(truth_of("a >= c", m) == T);
  // String.compareTo orders UTF-16 code units: U+FF21 sorts after U+1F600's high surrogate.
  const test_message u{{"bmp", "\xEF\xBC\xA1"}, {"astral", "\xF0\x9F\x98\x80"}};
  CHECK(truth_of("astral < bmp", u) == T);
}

TEST_CASE("booleans: literals, JMS booleans and string headers under conversion") {
  const test_message m{{"yes", "true"}, {"upper", "TRUE"}, {"other", "yes"}};
  CHECK(truth_of("TRUE = TRUE", m) == T);
  CHECK(truth_of("TRUE <> FALSE", m) == T);
  CHECK(truth_of("yes = TRUE", m) == T);    // Boolean.valueOf("true")
  CHECK(truth_of("upper = TRUE", m) == T);  // any case
  CHECK(truth_of("other = FALSE", m) == T); // anything else is false
  // Boolean on the left of a string: ActiveMQ casts the Boolean to String and throws.
  CHECK(truth_of("TRUE = yes", m) == U);
  CHECK(truth_of("JMSRedelivered = 'false'", m) == U);
  CHECK(truth_of("JMSRedelivered = FALSE", m) == T);
  // A header used as a condition is a string, not a Boolean: FALSE.
  CHECK(truth_of("yes", m) == F);
  CHECK(truth_of("1 = TRUE", m) == F);
  CHECK(truth_of("JMSRedelivered > 0", m) == F);
}

TEST_CASE("int, long and double promote to the wider type") {
  CHECK(truth_of("1 = 1.0") == T);
  CHECK(truth_of("2147483648 = 2147483648.0") == T);
  CHECK(truth_of("2147483647 < 2147483648") == T);
  CHECK(truth_of("JMSPriority = 4.0") == T);
  CHECK(truth_of("JMSTimestamp = 0") == T);  // long against int
}

TEST_CASE("+ on a string concatenates Java's text of the right operand") {
  const test_message m{{"a", "5"}};
  CHECK(truth_of("a + 1 = '51'", m) == T);
  CHECK(truth_of("a + 1 = 51", m) == T);     // then converted back for the comparison
  CHECK(truth_of("a + 1.5 = '51.5'", m) == T);
  CHECK(truth_of("a + 1E7 = '51.0E7'", m) == T);
  CHECK(truth_of("a + 0.001 = '50.001'", m) == T);
  CHECK(truth_of("a + TRUE = '5true'", m) == T);
  CHECK(truth_of("a + a = '55'", m) == T);
  CHECK(truth_of("'x' + 2147483648 = 'x2147483648'", m) == T);
}

TEST_CASE("arithmetic ActiveMQ aborts does not match, either way") {
  const test_message m{{"a", "5"}};
  CHECK(truth_of("a * 2 = 10", m) == U);     // "Cannot call multiply operation on: 5"
  CHECK(truth_of("a - 1 = 4", m) == U);
  CHECK(truth_of("1 + a = 6", m) == U);      // "Cannot convert value: 5 into a number"
  CHECK(truth_of("TRUE + 1 = 2", m) == U);
  CHECK(truth_of("a * 2 = 10 OR TRUE", m) == U);  // the exception ends the whole evaluation
  CHECK(truth_of("TRUE OR a * 2 = 10", m) == T);  // unless OR stopped before it
  CHECK(truth_of("FALSE AND a * 2 = 10", m) == F);
  CHECK(truth_of("-a = 1", m) == U);          // negating a string is NULL, not an error
  CHECK(truth_of("missing * a > 1", m) == U);
}

TEST_CASE("LIKE on a non-string is FALSE; IN on a non-string is unknown") {
  CHECK(truth_of("JMSPriority LIKE '4'") == F);
  CHECK(truth_of("JMSPriority IN ('4')") == U);
  CHECK(truth_of("JMSPriority NOT IN ('4')") == U);
}

}  // namespace
}  // namespace tandem::selector::test
