#include "broker/selector/detail/lexer.h"

#include <algorithm>
#include <array>
#include <utility>

namespace tandem::selector::detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_octal(char c) { return c >= '0' && c <= '7'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_id_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'; }
bool is_id_part(char c) { return is_id_start(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

char upper(char c) { return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c; }

bool equals_upper(std::string_view word, std::string_view keyword) {
  if (word.size() != keyword.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (upper(word[i]) != keyword[i]) return false;
  }
  return true;
}

constexpr std::array<std::pair<std::string_view, tok>, 13> keywords{{
    {"NOT", tok::kw_not}, {"AND", tok::kw_and}, {"OR", tok::kw_or},
    {"BETWEEN", tok::kw_between}, {"LIKE", tok::kw_like}, {"ESCAPE", tok::kw_escape},
    {"IN", tok::kw_in}, {"IS", tok::kw_is}, {"TRUE", tok::kw_true},
    {"FALSE", tok::kw_false}, {"NULL", tok::kw_null}, {"XPATH", tok::kw_xpath},
    {"XQUERY", tok::kw_xquery},
}};

std::size_t run(std::string_view s, std::size_t i, bool (*pred)(char)) {
  while (i < s.size() && pred(s[i])) ++i;
  return i;
}

// Length of EXPONENT ("E" [+-] digits) at i, or 0.
std::size_t exponent_length(std::string_view s, std::size_t i) {
  if (i >= s.size() || (s[i] != 'e' && s[i] != 'E')) return 0;
  std::size_t j = i + 1;
  if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
  const std::size_t end = run(s, j, is_digit);
  return end == j ? 0 : end - i;
}

// The longest numeric literal at i (JavaCC's rule), with its kind; length 0 if none.
std::pair<std::size_t, tok> number_at(std::string_view s, std::size_t i) {
  std::size_t best = 0;
  tok kind = tok::end;
  const auto offer = [&](std::size_t len, tok k) {
    if (len > best) { best = len; kind = k; }
  };
  if (s[i] >= '1' && s[i] <= '9') {
    std::size_t end = run(s, i, is_digit);
    if (end < s.size() && (s[end] == 'l' || s[end] == 'L')) ++end;
    offer(end - i, tok::decimal);
  }
  if (s[i] == '0') {
    if (i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
      const std::size_t end = run(s, i + 2, is_hex);
      if (end > i + 2) offer(end - i, tok::hex);
    }
    offer(run(s, i + 1, is_octal) - i, tok::octal);
  }
  // FLOATING_POINT_LITERAL: digits "." digits? exp? | "." digits exp? | digits exp
  const std::size_t int_end = run(s, i, is_digit);
  if (int_end > i) {
    if (int_end < s.size() && s[int_end] == '.') {
      const std::size_t frac_end = run(s, int_end + 1, is_digit);
      offer(frac_end + exponent_length(s, frac_end) - i, tok::floating);
    } else if (const std::size_t e = exponent_length(s, int_end)) {
      offer(int_end + e - i, tok::floating);
    }
  } else if (s[i] == '.') {
    const std::size_t frac_end = run(s, i + 1, is_digit);
    if (frac_end > i + 1) offer(frac_end + exponent_length(s, frac_end) - i, tok::floating);
  }
  return {best, kind};
}

// Length of a comment at i, or 0 (a "--" comment needs its line break).
std::size_t comment_at(std::string_view s, std::size_t i) {
  if (s.substr(i, 2) == "--") {
    const std::size_t eol = s.find_first_of("\r\n", i + 2);
    if (eol == std::string_view::npos) return 0;
    return (s.substr(eol, 2) == "\r\n" ? eol + 2 : eol + 1) - i;
  }
  if (s.substr(i, 2) == "/*") {
    const std::size_t close = s.find("*/", i + 2);
    return close == std::string_view::npos ? 0 : close + 2 - i;
  }
  return 0;
}

std::pair<std::size_t, tok> operator_at(std::string_view s, std::size_t i) {
  const std::string_view two = s.substr(i, 2);
  if (two == "<>") return {2, tok::not_equal};
  if (two == ">=") return {2, tok::greater_equal};
  if (two == "<=") return {2, tok::less_equal};
  switch (s[i]) {
    case '=': return {1, tok::equal};
    case '>': return {1, tok::greater};
    case '<': return {1, tok::less};
    case '(': return {1, tok::lparen};
    case ')': return {1, tok::rparen};
    case ',': return {1, tok::comma};
    case '+': return {1, tok::plus};
    case '-': return {1, tok::minus};
    case '*': return {1, tok::star};
    case '/': return {1, tok::slash};
    case '%': return {1, tok::percent};
  }
  return {0, tok::end};
}

std::string quote_char(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c >= 0x20 && c < 0x7F) return std::string("'") + char(c) + "'";
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("octet 0x") + hex[c >> 4] + hex[c & 15];
}

}  // namespace

bool lex(std::string_view s, std::vector<token>& out, lex_error& error) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (is_space(s[i])) { ++i; continue; }
    if (const std::size_t c = comment_at(s, i)) { i += c; continue; }
    token t;
    t.offset = i;
    if (s[i] == '\'') {
      std::size_t j = i + 1;
      while (true) {
        if (j >= s.size()) {
          error = {errc::unterminated_string, i, "string literal has no closing quote"};
          return false;
        }
        if (s[j] == '\'') {
          if (j + 1 < s.size() && s[j + 1] == '\'') { t.value += '\''; j += 2; continue; }
          break;
        }
        t.value += s[j++];
      }
      t.kind = tok::string;
      t.length = j + 1 - i;
    } else if (is_digit(s[i]) || s[i] == '.') {
      const auto [len, kind] = number_at(s, i);
      if (len == 0) {
        error = {errc::bad_character, i, "unexpected character '.'"};
        return false;
      }
      t.kind = kind;
      t.length = len;
    } else if (is_id_start(s[i])) {
      const std::size_t end = run(s, i, is_id_part);
      t.kind = tok::identifier;
      t.length = end - i;
      for (const auto& [word, kind] : keywords) {
        if (equals_upper(s.substr(i, t.length), word)) t.kind = kind;
      }
    } else {
      const auto [len, kind] = operator_at(s, i);
      if (len == 0) {
        error = {errc::bad_character, i, "unexpected character " + quote_char(s, i)};
        return false;
      }
      t.kind = kind;
      t.length = len;
    }
    i += t.length;
    out.push_back(std::move(t));
  }
  token end;
  end.offset = s.size();
  out.push_back(std::move(end));
  return true;
}

std::string describe(const token& t, std::string_view text) {
  const std::string_view image = text.substr(t.offset, std::min<std::size_t>(t.length, 40));
  switch (t.kind) {
    case tok::end: return "end of selector";
    case tok::identifier: return "identifier '" + std::string(image) + "'";
    case tok::string: return "string " + std::string(image);
    case tok::decimal:
    case tok::hex:
    case tok::octal:
    case tok::floating: return "number " + std::string(image);
    default: return "'" + std::string(image) + "'";
  }
}

}  // namespace tandem::selector::detail
