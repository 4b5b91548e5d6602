// Errors of the selector parser, as std::error_code values (the shape of broker/stomp/errc.h).
//
// Every one of them refuses the selector: the broker answers the SUBSCRIBE with an ERROR frame
// whose body is parse_error::message (what, and at which column). Evaluation never fails: a
// selector that ActiveMQ would abort at run time simply does not match (see selector.h).
#pragma once

#include <system_error>

namespace tandem::selector {

enum class errc {
  // The selector text is longer than parse_options::max_length bytes.
  too_long = 1,
  // Parentheses, unary operators or operator chains nest deeper than parse_options::max_depth.
  too_deep,
  // A character that starts no token ('!', '"', a non-ASCII letter outside a string, ...).
  bad_character,
  // A string literal with no closing quote.
  unterminated_string,
  // The tokens do not follow the grammar: "expected ')' ... found ...".
  syntax_error,
  // ActiveMQ's parse-time type rules: the selector, or an operand of AND/OR/NOT, is not a
  // boolean expression (a number, a string, arithmetic).
  not_boolean,
  // ActiveMQ's parse-time type rules: a string, boolean or NULL literal (or a comparison)
  // as an operand of < <= > >= BETWEEN; NULL as an operand of = or <>; TRUE/FALSE = literal.
  not_comparable,
  // The left side of IN / NOT IN is not a property name.
  in_needs_property,
  // The ESCAPE of a LIKE is not exactly one character.
  bad_escape,
  // An integer literal beyond the 64-bit range (ActiveMQ keeps it as a BigDecimal that no
  // comparison can match; we refuse it), or a hex/octal literal above 2^63-1 (ActiveMQ refuses).
  number_out_of_range,
  // ActiveMQ extensions Tandem does not evaluate: XPATH, XQUERY, and the functions INLIST,
  // MAKELIST, REGEX, REPLACE, SPLIT.
  unsupported,
  // name(...) where name is no function ActiveMQ knows.
  unknown_function,
};

const std::error_category& selector_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), selector_category()};
}

// The enumerator's name ("syntax_error"), for tests and logs; "unknown" otherwise.
const char* errc_name(errc e) noexcept;

}  // namespace tandem::selector

template <>
struct std::is_error_code_enum<tandem::selector::errc> : std::true_type {};
