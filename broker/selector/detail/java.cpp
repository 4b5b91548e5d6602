#include "broker/selector/detail/java.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace tandem::selector::detail {
namespace {

// Digits with an optional sign, as Integer.parseInt / Long.parseLong read them.
template <class T>
std::optional<T> parse_java_integer(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  bool negative = false;
  std::size_t i = 0;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    i = 1;
    if (text.size() == 1) return std::nullopt;
  }
  using U = std::make_unsigned_t<T>;
  const U limit = negative ? U(U(std::numeric_limits<T>::max()) + 1) : U(std::numeric_limits<T>::max());
  U acc = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    const U digit = U(c - '0');
    if (acc > (limit - digit) / 10) return std::nullopt;
    acc = U(acc * 10 + digit);
  }
  return negative ? T(U(0) - acc) : T(acc);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::size_t skip(std::string_view s, std::size_t i, bool (*pred)(char)) {
  while (i < s.size() && pred(s[i])) ++i;
  return i;
}

// Reads [sign] digits after an exponent marker; npos when there are no digits.
std::size_t read_exponent(std::string_view s, std::size_t i) {
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::size_t end = skip(s, i, is_digit);
  return end == i ? std::string_view::npos : end;
}

// digits[.digits] or .digits from the start of s: where it ends and how many digits it had.
std::pair<std::size_t, std::size_t> read_mantissa(std::string_view s, bool (*is_digit_of_base)(char)) {
  std::size_t i = skip(s, 0, is_digit_of_base);
  std::size_t digits = i;
  if (i < s.size() && s[i] == '.') {
    const std::size_t after = skip(s, i + 1, is_digit_of_base);
    digits += after - i - 1;
    i = after;
  }
  return {i, digits};
}

bool is_suffix(char c) { return c == 'f' || c == 'F' || c == 'd' || c == 'D'; }

// Overflow or underflow of a decimal "digits[.digits]e±n" that from_chars refused.
double out_of_range_value(std::string_view mantissa_and_exponent) {
  std::size_t i = 0;
  long magnitude = 0;  // decimal exponent of the first significant digit, roughly
  bool seen_point = false, seen_digit = false;
  long position = 0;
  for (; i < mantissa_and_exponent.size(); ++i) {
    const char c = mantissa_and_exponent[i];
    if (c == '.') { seen_point = true; continue; }
    if (c == 'e' || c == 'E') break;
    if (!seen_digit && c == '0') { if (seen_point) --position; continue; }
    if (!seen_digit) { seen_digit = true; magnitude = position; }
    if (!seen_point) ++magnitude;
  }
  long exponent = 0;
  if (i < mantissa_and_exponent.size()) {
    std::from_chars(mantissa_and_exponent.data() + i + 1 + (mantissa_and_exponent[i + 1] == '+'),
                    mantissa_and_exponent.data() + mantissa_and_exponent.size(), exponent);
  }
  return magnitude + exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
}

}  // namespace

std::optional<std::int32_t> java_parse_int(std::string_view text) noexcept {
  return parse_java_integer<std::int32_t>(text);
}

std::optional<std::int64_t> java_parse_long(std::string_view text) noexcept {
  return parse_java_integer<std::int64_t>(text);
}

std::optional<double> java_parse_double(std::string_view text) noexcept {
  while (!text.empty() && static_cast<unsigned char>(text.front()) <= ' ') text.remove_prefix(1);
  while (!text.empty() && static_cast<unsigned char>(text.back()) <= ' ') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  const double sign = negative ? -1.0 : 1.0;
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "Infinity") return sign * std::numeric_limits<double>::infinity();

  double magnitude = 0;
  if (text.size() > 1 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    // Hexadecimal: 0x digits[.digits] p [sign] digits, the binary exponent required.
    const std::string_view body = text.substr(2);
    const auto [i, digits] = read_mantissa(body, is_hex_digit);
    if (digits == 0 || i >= body.size() || (body[i] != 'p' && body[i] != 'P')) return std::nullopt;
    const std::size_t end = read_exponent(body, i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    if (end != body.size() && !(end + 1 == body.size() && is_suffix(body[end]))) return std::nullopt;
    const auto [ptr, ec] = std::from_chars(body.data(), body.data() + end, magnitude, std::chars_format::hex);
    if (ptr != body.data() + end) return std::nullopt;
    if (ec == std::errc::result_out_of_range) {
      magnitude = body[i + 1] == '-' ? 0.0 : std::numeric_limits<double>::infinity();
    }
    return sign * magnitude;
  }

  // Decimal: digits[.digits] or .digits, then [eE][sign]digits, then one f/F/d/D.
  auto [i, digits] = read_mantissa(text, is_digit);
  if (digits == 0) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    i = read_exponent(text, i + 1);
    if (i == std::string_view::npos) return std::nullopt;
  }
  if (i != text.size() && !(i + 1 == text.size() && is_suffix(text[i]))) return std::nullopt;
  const std::string_view number = text.substr(0, i);
  const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), magnitude,
                                         std::chars_format::general);
  if (ec == std::errc::result_out_of_range) {
    magnitude = out_of_range_value(number);
  } else if (ptr != number.data() + number.size()) {
    return std::nullopt;
  }
  return sign * magnitude;
}

bool java_parse_boolean(std::string_view text) noexcept {
  if (text.size() != 4) return false;
  static constexpr char lower[] = "true";
  for (std::size_t i = 0; i < 4; ++i) {
    const char c = text[i] >= 'A' && text[i] <= 'Z' ? char(text[i] - 'A' + 'a') : text[i];
    if (c != lower[i]) return false;
  }
  return true;
}

std::size_t java_format_double(double d, char* out) noexcept {
  const auto put = [out](std::string_view s) {
    std::memcpy(out, s.data(), s.size());
    return s.size();
  };
  if (std::isnan(d)) return put("NaN");
  if (std::isinf(d)) return put(d > 0 ? "Infinity" : "-Infinity");
  if (d == 0) return put(std::signbit(d) ? "-0.0" : "0.0");

  // Shortest round-trip digits, then Java's layout around them.
  char sci[java_double_chars];
  const auto r = std::to_chars(sci, sci + sizeof sci, std::fabs(d), std::chars_format::scientific);
  const std::string_view text(sci, static_cast<std::size_t>(r.ptr - sci));
  const std::size_t e = text.find('e');
  char digits[24];
  std::size_t n = 0;
  for (std::size_t i = 0; i < e; ++i) {
    if (text[i] != '.') digits[n++] = text[i];
  }
  int exponent = 0;
  std::from_chars(text.data() + e + 1 + (text[e + 1] == '+'), text.data() + text.size(), exponent);

  std::size_t len = 0;
  if (d < 0) out[len++] = '-';
  const double magnitude = std::fabs(d);
  if (magnitude >= 1e-3 && magnitude < 1e7) {
    if (exponent >= 0) {
      for (int i = 0; i <= exponent; ++i) out[len++] = std::size_t(i) < n ? digits[i] : '0';
      out[len++] = '.';
      if (std::size_t(exponent) + 1 >= n) {
        out[len++] = '0';
      } else {
        for (std::size_t i = std::size_t(exponent) + 1; i < n; ++i) out[len++] = digits[i];
      }
    } else {
      out[len++] = '0';
      out[len++] = '.';
      for (int i = -1; i > exponent; --i) out[len++] = '0';
      for (std::size_t i = 0; i < n; ++i) out[len++] = digits[i];
    }
    return len;
  }
  out[len++] = digits[0];
  out[len++] = '.';
  if (n == 1) {
    out[len++] = '0';
  } else {
    for (std::size_t i = 1; i < n; ++i) out[len++] = digits[i];
  }
  out[len++] = 'E';
  const auto er = std::to_chars(out + len, out + java_double_chars, exponent);
  return static_cast<std::size_t>(er.ptr - out);
}

int java_compare_double(double a, double b) noexcept {
  if (a < b) return -1;
  if (a > b) return 1;
  // Double.doubleToLongBits: every NaN is the canonical one.
  const auto bits = [](double x) {
    if (std::isnan(x)) x = std::numeric_limits<double>::quiet_NaN();
    std::int64_t v;
    std::memcpy(&v, &x, sizeof v);
    return v;
  };
  const std::int64_t x = bits(a), y = bits(b);
  return x == y ? 0 : (x < y ? -1 : 1);
}

std::size_t utf8_char_length(std::string_view text, std::size_t pos) noexcept {
  const auto lead = static_cast<unsigned char>(text[pos]);
  std::size_t n = 1;
  if (lead >= 0xC2 && lead <= 0xDF) n = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) n = 3;
  else if (lead >= 0xF0 && lead <= 0xF4) n = 4;
  if (pos + n > text.size()) return 1;
  for (std::size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(text[pos + i]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

char32_t utf8_decode(std::string_view s, std::size_t pos) noexcept {
  const std::size_t n = utf8_char_length(s, pos);
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  if (n == 1) return byte(0);
  char32_t c = byte(0) & (0xFF >> (n + 1));
  for (std::size_t i = 1; i < n; ++i) c = (c << 6) | (byte(i) & 0x3F);
  return c;
}

namespace {

// The first UTF-16 code unit of a character (its high surrogate above U+FFFF).
char32_t first_utf16_unit(char32_t c) { return c >= 0x10000 ? 0xD800 + ((c - 0x10000) >> 10) : c; }

}  // namespace

int java_compare_string(std::string_view a, std::string_view b) noexcept {
  const std::size_t common = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < common && a[i] == b[i]) ++i;
  if (i == common) return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
  const int octet_order = static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]) ? -1 : 1;
  std::size_t start = i;
  while (start > 0 && (static_cast<unsigned char>(a[start]) & 0xC0) == 0x80) --start;
  const char32_t ca = utf8_decode(a, start), cb = utf8_decode(b, start);
  const char32_t ua = first_utf16_unit(ca), ub = first_utf16_unit(cb);
  if (ua != ub) return ua < ub ? -1 : 1;
  // Same high surrogate: the low surrogates order as the code points do. Equal code points
  // from different octets (invalid UTF-8) fall back to octet order.
  return ca == cb ? octet_order : (ca < cb ? -1 : 1);
}

}  // namespace tandem::selector::detail
