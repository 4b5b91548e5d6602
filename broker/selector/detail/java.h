// Java's text <-> number rules that ActiveMQ's evaluator applies to STOMP header strings, so
// that a comparison converts "10" (or fails to convert "10.5") exactly as ActiveMQ does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tandem::selector::detail {

// Integer.valueOf / Long.valueOf: optional '+' or '-', then ASCII digits, in range; nothing
// else (no spaces). Java also accepts non-ASCII Unicode digits; we do not.
std::optional<std::int32_t> java_parse_int(std::string_view text) noexcept;
std::optional<std::int64_t> java_parse_long(std::string_view text) noexcept;
// Double.valueOf: surrounding chars <= ' ' trimmed; sign; NaN, Infinity; decimal with optional
// exponent; hexadecimal with binary exponent (0x1.8p1); an optional f/F/d/D suffix.
std::optional<double> java_parse_double(std::string_view text) noexcept;
// Boolean.valueOf: "true" in any case is true, anything else false.
bool java_parse_boolean(std::string_view text) noexcept;

// Double.toString into out (at least java_double_chars octets); returns the length.
inline constexpr std::size_t java_double_chars = 32;
std::size_t java_format_double(double d, char* out) noexcept;

// Double.compare: -0.0 < 0.0, NaN equal to itself and above +Infinity.
int java_compare_double(double a, double b) noexcept;
// String.compareTo's sign over UTF-8: the order of UTF-16 code units, which differs from
// octet order only between U+E000..U+FFFF and characters above U+FFFF.
int java_compare_string(std::string_view a, std::string_view b) noexcept;

// Octets of the UTF-8 character starting at text[pos] (1 for an invalid or truncated one).
std::size_t utf8_char_length(std::string_view text, std::size_t pos) noexcept;
// The code point of that character (an invalid octet stands for itself).
char32_t utf8_decode(std::string_view text, std::size_t pos) noexcept;

}  // namespace tandem::selector::detail
