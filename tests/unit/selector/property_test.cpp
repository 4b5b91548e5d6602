// Property test: random selectors from the grammar. Every accepted one prints (to_string) to
// a text that parses back to the same print and the same verdict on random messages.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "test_message.h"

namespace tandem::selector::test {
namespace {

class generator {
 public:
  explicit generator(std::uint64_t seed) : rng_(seed) {}

  std::string condition(int depth) {
    switch (depth <= 0 ? pick(4) : pick(13)) {
      case 0: return pick(2) ? "TRUE" : "FALSE";
      case 1: return name();
      case 2: return value(depth - 1) + " " + comparison() + " " + value(depth - 1);
      case 3: return name() + " IS " + (pick(2) ? "NOT " : "") + "NULL";
      case 4: return value(depth - 1) + (pick(2) ? " NOT" : "") + " LIKE " + like_pattern();
      case 5: return name() + (pick(2) ? " NOT" : "") + " IN (" + in_list() + ")";
      case 6: return value(depth - 1) + (pick(2) ? " NOT" : "") + " BETWEEN " + value(depth - 1) + " AND " + value(depth - 1);
      case 7: return "NOT " + condition(depth - 1);
      case 8: return condition(depth - 1) + " AND " + condition(depth - 1);
      case 9: return condition(depth - 1) + " OR " + condition(depth - 1);
      case 10: return "(" + condition(depth - 1) + ")";
      case 11: return "NULL";
      default: return condition(depth - 1) + " = " + condition(depth - 1);
    }
  }

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }

  std::string value(int depth) {
    switch (depth <= 0 ? pick(5) : pick(9)) {
      case 0: return std::to_string(pick(21) - 10);
      case 1: return name();
      case 2: return string_literal();
      case 3: {
        static const char* const numbers[] = {"2.5", ".5", "1e3", "0x1F", "017", "3000000000", "10L", "0.0", "1E999"};
        return numbers[pick(9)];
      }
      case 4: return pick(2) ? "JMSPriority" : "JMSXDeliveryCount";
      case 5: return value(depth - 1) + " " + "+-*/%"[pick(5)] + " " + value(depth - 1);
      case 6: return "-" + value(depth - 1);
      case 7: return "(" + value(depth - 1) + ")";
      default: return "+" + value(depth - 1);
    }
  }

  std::string name() {
    static const char* const names[] = {"a", "b", "n", "s", "missing"};
    return names[pick(5)];
  }
  std::string comparison() {
    static const char* const ops[] = {"=", "<>", "<", "<=", ">", ">="};
    return ops[pick(6)];
  }
  std::string string_literal() {
    static const char* const strings[] = {"'x'", "'abc'", "'10'", "''", "'it''s'", "'true'", "'2.5'"};
    return strings[pick(7)];
  }
  std::string like_pattern() {
    static const char* const patterns[] = {"'a%'", "'_'", "'%'", "'%b_'", "'x!%' ESCAPE '!'", "'1_'"};
    return patterns[pick(6)];
  }
  std::string in_list() {
    std::string list = string_literal();
    for (int i = pick(3); i > 0; --i) list += ", " + string_literal();
    return list;
  }

  std::mt19937_64 rng_;
};

std::vector<test_message> random_messages(std::uint64_t seed, int count) {
  static const char* const values[] = {"1", "10", "-3", "2.5", "x", "abc", "true", "", "it's", "a1"};
  std::mt19937_64 rng(seed);
  std::vector<test_message> messages;
  for (int i = 0; i < count; ++i) {
    test_message m;
    for (const char* name : {"a", "b", "n", "s"}) {
      if (rng() % 4 != 0) m.with(name, values[rng() % 10]);
    }
    if (rng() % 2) m.with("priority", std::to_string(rng() % 10));
    m.redeliveries_ = static_cast<std::uint32_t>(rng() % 3);
    messages.push_back(std::move(m));
  }
  return messages;
}

TEST_CASE("random selectors print to a text that parses back to the same expression") {
  const auto messages = random_messages(7, 24);
  int accepted = 0;
  for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
    generator g(seed);
    const std::string text = g.condition(4);
    auto first = parse(text);
    if (!first) {
      // Refusals are fine (type checks); they must still say where.
      CHECK_FALSE(first.error().message.empty());
      CHECK(first.error().column >= 1);
      continue;
    }
    ++accepted;
    CAPTURE(seed);
    CAPTURE(text);
    const std::string printed = first.value().to_string();
    CAPTURE(printed);
    auto second = parse(printed);
    REQUIRE(second.has_value());
    CHECK(second.value().to_string() == printed);
    for (const auto& m : messages) CHECK(first.value().matches(m) == second.value().matches(m));
  }
  CHECK(accepted > 1000);
}

TEST_CASE("canonical forms show ActiveMQ's rewrites") {
  CHECK(parsed("a BETWEEN 1 AND 2").to_string() == "((a >= 1) AND (a <= 2))");
  CHECK(parsed("a NOT BETWEEN 1 AND 2").to_string() == "((a < 1) OR (a > 2))");
  CHECK(parsed("a <> 'x'").to_string() == "(NOT (a = 'x'))");
  CHECK(parsed("a IS NOT NULL").to_string() == "(NOT (a IS NULL))");
  CHECK(parsed("a NOT LIKE 'x\\%' ESCAPE '\\'").to_string() == "(NOT (a LIKE 'x\\%' ESCAPE '\\'))");
  CHECK(parsed("a").to_string() == "a");
  CHECK(parsed("a OR b OR c").to_string() == "(a OR b OR c)");
  CHECK(parsed("(a OR b) OR c").to_string() == "(a OR b OR c)");
  CHECK(parsed("a OR (b OR c)").to_string() == "(a OR (b OR c))");
  CHECK(parsed("NOT a = 'it''s'").to_string() == "((NOT a) = 'it''s')");
  CHECK(parsed("x = -9223372036854775808").to_string() == "(x = (-9223372036854775808))");
  CHECK(parsed("x = 2.5 + 1E999").to_string() == "(x = (2.5e+00 + 1E999))");
  CHECK(parsed("x IN ('b', 'a', 'b')").to_string() == "(x IN ('b', 'a', 'b'))");
  CHECK(parsed("x IN ('b', 'a')").text() == "x IN ('b', 'a')");
  parse_options openwire;
  openwire.conversion = string_conversion::by_prefix;
  CHECK(parsed("convert_string_expressions:a = 1", openwire).to_string() == "convert_string_expressions:(a = 1)");
  CHECK(parsed("convert_string_expressions:a = 1", openwire).text() == "a = 1");
  CHECK(parsed("a = 1", openwire).to_string() == "(a = 1)");
}

}  // namespace
}  // namespace tandem::selector::test
