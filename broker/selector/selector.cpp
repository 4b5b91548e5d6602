#include "broker/selector/selector.h"

#include "broker/selector/detail/parser.h"
#include "broker/selector/detail/program.h"

namespace tandem::selector {

void outcome_throw_as_system_error_with_payload(const parse_error& e) {
  throw std::system_error(e.code, e.message);
}

expression::expression(std::shared_ptr<const detail::program> program) noexcept
    : program_(std::move(program)) {}

bool expression::matches(const message_view& message) const noexcept { return program_->matches(message); }

const std::string& expression::text() const noexcept { return program_->text; }

std::string expression::to_string() const { return program_->to_string(); }

bool expression::converts_strings() const noexcept { return program_->convert; }

result<expression> parse(std::string_view text, const parse_options& options) {
  if (text.size() > options.max_length) {
    parse_error e;
    e.code = errc::too_long;
    e.offset = options.max_length;
    e.column = options.max_length + 1;
    e.message = "selector is " + std::to_string(text.size()) + " octets long, more than the limit of " +
                std::to_string(options.max_length) + " (max_length)";
    return e;
  }
  bool convert = true;
  std::size_t base = 0;
  if (options.conversion == string_conversion::by_prefix) {
    convert = text.starts_with(convert_prefix);
    if (convert) base = convert_prefix.size();
  }
  auto compiled = detail::compile(text, base, convert, options);
  if (!compiled) return std::move(compiled).error();
  return expression(std::move(compiled).value());
}

}  // namespace tandem::selector
