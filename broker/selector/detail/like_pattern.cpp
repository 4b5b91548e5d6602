#include "broker/selector/detail/like_pattern.h"

#include "broker/selector/detail/java.h"

namespace tandem::selector::detail {
like_pattern::like_pattern(std::string_view pattern, std::optional<char32_t> escape) {
  const auto add_literal = [this](std::string_view octets) {
    if (pieces_.empty() || pieces_.back().kind != piece_kind::literal) {
      pieces_.push_back({piece_kind::literal, static_cast<std::uint32_t>(literals_.size()), 0});
    }
    literals_.append(octets);
    pieces_.back().length += static_cast<std::uint32_t>(octets.size());
  };
  for (std::size_t i = 0; i < pattern.size();) {
    const std::size_t n = utf8_char_length(pattern, i);
    const char32_t c = utf8_decode(pattern, i);
    if (escape && c == *escape && i + n < pattern.size()) {
      const std::size_t m = utf8_char_length(pattern, i + n);
      const char32_t next = utf8_decode(pattern, i + n);
      if (next == U'_' || next == U'%' || next == *escape) {
        add_literal(pattern.substr(i + n, m));
        i += n + m;
        continue;
      }
    }
    if (c == U'%') {
      // Consecutive '%' match what one does.
      if (pieces_.empty() || pieces_.back().kind != piece_kind::any) pieces_.push_back({piece_kind::any});
    } else if (c == U'_') {
      pieces_.push_back({piece_kind::one});
    } else {
      add_literal(pattern.substr(i, n));
    }
    i += n;
  }
}

// Glob matching that backtracks to the last '%' only: complete for '%'/'_' patterns, and
// linear in the text between two '%' (no exponential regex backtracking).
bool like_pattern::matches(std::string_view text) const noexcept {
  const std::size_t none = static_cast<std::size_t>(-1);
  std::size_t p = 0, pos = 0;
  std::size_t star = none, star_pos = 0;
  const std::string_view lits(literals_);
  while (true) {
    if (p < pieces_.size()) {
      const piece& pc = pieces_[p];
      if (pc.kind == piece_kind::any) {
        star = p++;
        star_pos = pos;
        continue;
      }
      if (pc.kind == piece_kind::one && pos < text.size()) {
        pos += utf8_char_length(text, pos);
        ++p;
        continue;
      }
      if (pc.kind == piece_kind::literal && text.substr(pos).starts_with(lits.substr(pc.offset, pc.length))) {
        pos += pc.length;
        ++p;
        continue;
      }
    } else if (pos == text.size()) {
      return true;
    }
    if (star == none || star_pos >= text.size()) return false;
    star_pos += utf8_char_length(text, star_pos);
    pos = star_pos;
    p = star + 1;
  }
}

}  // namespace tandem::selector::detail
