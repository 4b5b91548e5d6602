// The values a selector computes with: the Java types ActiveMQ's evaluator meets on a STOMP
// message (no Byte, Short, Float or BigDecimal can arise there; see docs/selectors.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace tandem::selector::detail {

enum class kind : std::uint8_t {
  null,      // SQL NULL: a missing header, unknown
  boolean,   // java.lang.Boolean
  int32,     // java.lang.Integer
  int64,     // java.lang.Long
  float64,   // java.lang.Double
  string,    // java.lang.String (UTF-8 here)
  error,     // ActiveMQ threw during evaluation: the whole selector does not match
};

struct value {
  kind k = kind::null;
  union {
    bool b;
    std::int32_t i;
    std::int64_t l;
    double d;
  };
  std::string_view s;  // kind::string; borrowed from the message, the program or the scratch

  constexpr value() noexcept : l(0) {}
  static constexpr value make_null() noexcept { return {}; }
  static constexpr value make_error() noexcept { value v; v.k = kind::error; return v; }
  static constexpr value make_bool(bool x) noexcept { value v; v.k = kind::boolean; v.b = x; return v; }
  static constexpr value make_int(std::int32_t x) noexcept { value v; v.k = kind::int32; v.i = x; return v; }
  static constexpr value make_long(std::int64_t x) noexcept { value v; v.k = kind::int64; v.l = x; return v; }
  static constexpr value make_double(double x) noexcept { value v; v.k = kind::float64; v.d = x; return v; }
  static constexpr value make_string(std::string_view x) noexcept { value v; v.k = kind::string; v.s = x; return v; }

  constexpr bool is_number() const noexcept {
    return k == kind::int32 || k == kind::int64 || k == kind::float64;
  }
};

}  // namespace tandem::selector::detail
