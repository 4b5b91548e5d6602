// tandem::selector: JMS message selectors (the SQL-92 subset ActiveMQ 5.17 evaluates) over
// STOMP messages. A pure module: no I/O, no logging, no Asio. docs/selectors.md has the
// grammar, the type rules with examples, and every difference from ActiveMQ.
//
// Usage (the engine, once per SUBSCRIBE; then per message):
//
//   auto parsed = selector::parse(frame.header("selector"));
//   if (!parsed) return send_error(parsed.error().message);  // "expected ')' at column 17 ..."
//   subscription.filter = std::move(parsed).value();
//   ...
//   my_message_view view(msg);                               // implements message_view
//   if (subscription.filter->matches(view)) deliver(msg);
//
// Semantics are ActiveMQ's, read from its grammar (SelectorParser.jj) and evaluator
// (org.apache.activemq.filter.*), including its quirks, because clients moving from ActiveMQ
// depend on them:
// - Three-valued logic: a missing header is NULL; a comparison with NULL is unknown; only
//   TRUE matches. But `a = b` is TRUE when both are missing, and `'x' = missing` is FALSE
//   (not unknown), as ActiveMQ's EqualsExpression does.
// - NOT binds tighter than comparisons: `NOT a = 'x'` is `(NOT a) = 'x'`. Write NOT (a = 'x').
// - STOMP headers are strings. String-to-number conversion in comparisons is on for STOMP
//   subscribers (ActiveMQ's STOMP transport prefixes every selector with
//   "convert_string_expressions:"): `price > 10` parses the header as an int because 10 is
//   an int (Integer.valueOf: "10.5" fails and the comparison is FALSE); `price > 10.0` parses
//   it as a double. Without conversion a string never equals or orders against a number.
// - An evaluation that ActiveMQ aborts with an exception (`a * 2` where a is a string,
//   `TRUE = 'true'` with conversion on) does not match.
//
// Threads: an expression is immutable once parsed; matches() may run on any number of threads
// at once. Memory: matches() allocates nothing, except for string concatenation (`a + 'x'`)
// or JMSDestination/JMSReplyTo values longer than a 512-octet scratch area.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/outcome/std_result.hpp>

#include "broker/selector/errc.h"
#include "broker/selector/message_view.h"

namespace tandem::selector {

// How strings compare with numbers and booleans (ComparisonExpression.convertStringExpressions).
enum class string_conversion {
  // ActiveMQ's STOMP transport: always on, because it prepends "convert_string_expressions:"
  // to every SUBSCRIBE selector. A selector that itself starts with that prefix is then SQL
  // text starting with an identifier and a ':' and is refused, as ActiveMQ refuses it.
  stomp,
  // SelectorParser.parse (OpenWire clients): on only when the text starts with
  // "convert_string_expressions:", which is stripped before parsing.
  by_prefix,
};

inline constexpr std::string_view convert_prefix = "convert_string_expressions:";

struct parse_options {
  // Longest selector accepted, in octets. ActiveMQ's STOMP transport refuses header lines
  // above 10 KiB, so no ActiveMQ selector was ever longer.
  std::size_t max_length = 10240;
  // Deepest expression tree accepted (parentheses, NOT and minus chains, a + b + c + ...
  // each count a level). Bounds the parser's and the evaluator's recursion.
  std::size_t max_depth = 128;
  string_conversion conversion = string_conversion::stomp;
};

// Why a selector was refused, for the ERROR frame.
struct parse_error {
  std::error_code code;    // a selector::errc
  std::size_t offset = 0;  // octets from the start of the text, where the problem starts
  std::size_t line = 1;    // 1-based
  std::size_t column = 1;  // 1-based, in characters (UTF-8 code points) within the line
  // One line: what, where and, when useful, what was found, e.g.
  // "expected ')' at column 17, found end of selector".
  std::string message;
};

inline std::error_code make_error_code(const parse_error& e) noexcept { return e.code; }
// Lets result<T>::value() throw std::system_error(code, message) on a refused selector.
[[noreturn]] void outcome_throw_as_system_error_with_payload(const parse_error& e);

template <class T>
using result = boost::outcome_v2::std_result<T, parse_error>;

namespace detail {
class program;
}

// A parsed selector. Cheap to copy (the compiled program is shared and immutable).
class expression {
 public:
  // True when the selector is TRUE for this message (NULL/unknown and FALSE do not match).
  bool matches(const message_view& message) const noexcept;

  // The selector as given (without a by_prefix prefix).
  const std::string& text() const noexcept;
  // A canonical, fully parenthesized form that parses back (with the same parse_options) to
  // the same expression; for logs, the admin API and tests. BETWEEN, <>, NOT LIKE and
  // IS NOT NULL appear as ActiveMQ rewrites them (x >= a AND x <= b, NOT (a = b), ...). In
  // by_prefix mode a converting selector keeps its "convert_string_expressions:" prefix.
  std::string to_string() const;
  bool converts_strings() const noexcept;

  explicit expression(std::shared_ptr<const detail::program> program) noexcept;

 private:
  std::shared_ptr<const detail::program> program_;
};

result<expression> parse(std::string_view text, const parse_options& options = {});

}  // namespace tandem::selector
