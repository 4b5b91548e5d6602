// A LIKE pattern compiled at parse time: literal runs, '_' (one character) and '%' (any run).
// ActiveMQ compiles LIKE to a java.util.regex with DOTALL; '_' is one Unicode character (a
// code point), '%' any sequence including line breaks. Matching allocates nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::selector::detail {

class like_pattern {
 public:
  // pattern and escape as decoded from the selector's string literals. ESCAPE semantics are
  // ActiveMQ's: the escape character makes the next '_', '%' or escape character literal;
  // before anything else (or at the end) it is an ordinary character.
  like_pattern(std::string_view pattern, std::optional<char32_t> escape);

  bool matches(std::string_view text) const noexcept;

 private:
  enum class piece_kind : std::uint8_t { literal, one, any };
  struct piece {
    piece_kind kind;
    std::uint32_t offset = 0;  // literal: its octets in literals_
    std::uint32_t length = 0;
  };
  std::vector<piece> pieces_;
  std::string literals_;
};

}  // namespace tandem::selector::detail
