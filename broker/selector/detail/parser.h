// The recursive-descent parser of SelectorParser.jj, with the type checks that ActiveMQ's
// expression factories make at parse time (ComparisonExpression.checkLessThanOperand, ...).
#pragma once

#include <memory>
#include <string_view>

#include "broker/selector/detail/program.h"
#include "broker/selector/selector.h"

namespace tandem::selector::detail {

// Compiles text (already stripped of any prefix; base_offset is where it starts in full_text,
// for error positions) into a program.
result<std::shared_ptr<program>> compile(std::string_view full_text, std::size_t base_offset,
                                         bool convert, const parse_options& options);

}  // namespace tandem::selector::detail
