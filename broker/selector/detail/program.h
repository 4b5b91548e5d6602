// The compiled form of a selector: a flat array of nodes (children by index), constant pools,
// LIKE patterns and IN sets, all built once by the parser and never changed after. Evaluation
// walks it recursively; the parser bounded the tree's height by parse_options::max_depth.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "broker/selector/detail/fields.h"
#include "broker/selector/detail/like_pattern.h"
#include "broker/selector/detail/value.h"

namespace tandem::selector::detail {

enum class op : std::uint8_t {
  constant,       // constants[arg]
  property,       // field_of[arg] / names[arg]
  negate,         // -a
  plus, minus, multiply, divide, modulo,  // a op b
  equal,          // a = b (EqualsExpression, also IS NULL as a = NULL)
  less, less_equal, greater, greater_equal,
  like,           // a LIKE likes[arg]
  in, not_in,     // a [NOT] IN sets[arg]
  logical_not,    // NOT a
  bool_cast,      // a property used as a condition
  logical_and, logical_or,  // operands[arg .. arg + count)
};

struct node {
  op code = op::constant;
  std::uint32_t a = 0, b = 0;      // children
  std::uint32_t arg = 0, count = 0;
};

// A sorted set of strings for IN (binary search, no hashing or allocation per lookup).
struct string_set {
  std::vector<std::string> items;       // sorted, unique
  std::vector<std::string> as_written;  // for to_string
  bool contains(std::string_view s) const noexcept;
};

struct like_entry {
  like_pattern pattern;
  std::string text;                  // as written, for to_string
  std::optional<std::string> escape;
};

class program {
 public:
  std::string text;          // the selector as given (prefix removed)
  bool convert = true;       // ComparisonExpression.convertStringExpressions
  bool prefixed = false;     // by_prefix mode and the text had the prefix: to_string keeps it
  std::vector<node> nodes;
  std::uint32_t root = 0;
  std::vector<value> constants;
  std::deque<std::string> strings;   // storage of string constants (stable addresses)
  std::vector<field> fields;         // property nodes
  std::vector<std::string> names;    // property nodes, as written
  std::vector<std::uint32_t> operands;
  std::vector<like_entry> likes;
  std::vector<string_set> sets;

  bool matches(const message_view& message) const noexcept;
  std::string to_string() const;
};

}  // namespace tandem::selector::detail
