#include "broker/selector/errc.h"

#include <string>

namespace tandem::selector {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "selector"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::too_long: return "selector too long";
      case errc::too_deep: return "selector nested too deeply";
      case errc::bad_character: return "unexpected character in selector";
      case errc::unterminated_string: return "unterminated string literal";
      case errc::syntax_error: return "selector syntax error";
      case errc::not_boolean: return "expression is not boolean";
      case errc::not_comparable: return "value cannot be compared";
      case errc::in_needs_property: return "IN needs a property on its left";
      case errc::bad_escape: return "LIKE ESCAPE must be one character";
      case errc::number_out_of_range: return "number out of range";
      case errc::unsupported: return "selector feature not supported";
      case errc::unknown_function: return "unknown function";
    }
    return "unknown selector error";
  }
};

}  // namespace

const std::error_category& selector_category() noexcept {
  static const category instance;
  return instance;
}

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::too_long: return "too_long";
    case errc::too_deep: return "too_deep";
    case errc::bad_character: return "bad_character";
    case errc::unterminated_string: return "unterminated_string";
    case errc::syntax_error: return "syntax_error";
    case errc::not_boolean: return "not_boolean";
    case errc::not_comparable: return "not_comparable";
    case errc::in_needs_property: return "in_needs_property";
    case errc::bad_escape: return "bad_escape";
    case errc::number_out_of_range: return "number_out_of_range";
    case errc::unsupported: return "unsupported";
    case errc::unknown_function: return "unknown_function";
  }
  return "unknown";
}

}  // namespace tandem::selector
