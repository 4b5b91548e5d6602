// Tokens of SelectorParser.jj (ActiveMQ 5.17): keywords and literals match case-insensitively,
// the longest match wins and, at equal length, a keyword beats an identifier. Whitespace is
// " \t\n\r\f"; comments are "/* ... */" and "-- ..." up to a line break (without a line
// break after it, "--" is two minus signs, as in ActiveMQ).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "broker/selector/errc.h"

namespace tandem::selector::detail {

enum class tok : std::uint8_t {
  end,
  identifier, string, decimal, hex, octal, floating,
  kw_not, kw_and, kw_or, kw_between, kw_like, kw_escape, kw_in, kw_is,
  kw_true, kw_false, kw_null, kw_xpath, kw_xquery,
  equal, not_equal, greater, greater_equal, less, less_equal,
  lparen, rparen, comma, plus, minus, star, slash, percent,
};

struct token {
  tok kind = tok::end;
  std::size_t offset = 0;  // in the text given to lex()
  std::size_t length = 0;
  std::string value;       // string: the literal decoded ('' -> '); others: empty
};

struct lex_error {
  errc code = errc::bad_character;
  std::size_t offset = 0;
  std::string what;  // without position, e.g. "unexpected character '!'"
};

// Tokens of text, ending with tok::end; false and *error on the first bad character.
bool lex(std::string_view text, std::vector<token>& out, lex_error& error);

// "'AND'", "identifier 'price'", "string 'abc'", "end of selector": for error messages.
std::string describe(const token& t, std::string_view text);

}  // namespace tandem::selector::detail
