#include "broker/selector/detail/parser.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "broker/selector/detail/java.h"
#include "broker/selector/detail/lexer.h"

namespace tandem::selector::detail {
namespace {

// What ActiveMQ's factories know about an operand when they check it at parse time: its Java
// class (ConstantExpression with a Number/String/Boolean/null value, BooleanExpression,
// PropertyExpression, or anything else such as arithmetic).
enum class category : std::uint8_t {
  number_constant,
  string_constant,
  boolean_constant,  // TRUE, FALSE: both a ConstantExpression and a BooleanExpression
  null_constant,     // NULL: likewise
  boolean,           // comparisons, LIKE, IN, NOT, AND, OR, a property cast to boolean
  property,
  other,
};

bool is_constant(category c) {
  return c == category::number_constant || c == category::string_constant ||
         c == category::boolean_constant || c == category::null_constant;
}
bool is_boolean(category c) {
  return c == category::boolean || c == category::boolean_constant || c == category::null_constant;
}

// ActiveMQ's built-in functions (BuiltinFunctionRegistry): real, but not evaluated by Tandem.
constexpr std::array<std::string_view, 5> activemq_functions{"INLIST", "MAKELIST", "REGEX", "REPLACE", "SPLIT"};

constexpr std::uint32_t bad = std::numeric_limits<std::uint32_t>::max();

class parser {
 public:
  parser(std::string_view full_text, std::size_t base, const parse_options& options, program& prog)
      : text_(full_text), base_(base), options_(options), prog_(prog) {}

  std::optional<parse_error> run() {
    lex_error lerr;
    if (!lex(text_.substr(base_), tokens_, lerr)) {
      fail(lerr.code, base_ + lerr.offset, lerr.what);
      return error_;
    }
    for (auto& t : tokens_) t.offset += base_;
    const std::size_t start = peek().offset;
    std::uint32_t root = parse_or();
    if (root == bad) return error_;
    if (peek().kind != tok::end) {
      fail(errc::syntax_error, peek().offset,
           "unexpected " + describe(peek(), text_) + " %at: expected an operator or the end of the selector");
      return error_;
    }
    if (!unnegated_.empty()) {
      const std::size_t at = starts_[unnegated_.front()];
      fail(errc::number_out_of_range, at, "number 9223372036854775808 %at is out of range (above 2^63-1)");
      return error_;
    }
    root = as_boolean(root, start, "the selector");
    if (root == bad) return error_;
    prog_.root = root;
    return std::nullopt;
  }

 private:
  // ---- tokens
  const token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  bool accept(tok k) {
    if (peek().kind != k) return false;
    ++pos_;
    return true;
  }
  bool expect(tok k, std::string_view what) {
    if (accept(k)) return true;
    fail(errc::syntax_error, peek().offset,
         "expected " + std::string(what) + " %at, found " + describe(peek(), text_));
    return false;
  }

  // ---- errors: "%at" in what becomes "at column C" (and "line L" past the first line).
  std::uint32_t fail(errc code, std::size_t offset, std::string what) {
    if (error_) return bad;
    parse_error e;
    e.code = code;
    e.offset = offset;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') { ++e.line; line_start = i + 1; }
    }
    e.column = 1;
    for (std::size_t i = line_start; i < offset && i < text_.size(); i += utf8_char_length(text_, i)) ++e.column;
    std::string where = "at column " + std::to_string(e.column);
    if (e.line > 1) where += " of line " + std::to_string(e.line);
    const std::size_t mark = what.find("%at");
    if (mark == std::string::npos) {
      what += " (" + where + ")";
    } else {
      what.replace(mark, 3, where);
    }
    e.message = std::move(what);
    error_ = std::move(e);
    return bad;
  }

  // ---- nodes
  std::uint32_t add(node n, category c, std::size_t start, std::initializer_list<std::uint32_t> children) {
    std::uint32_t height = 0;
    for (const auto child : children) height = std::max(height, heights_[child]);
    return add_with_height(n, c, start, height + 1);
  }
  std::uint32_t add_with_height(node n, category c, std::size_t start, std::uint32_t height) {
    if (height > options_.max_depth) {
      return fail(errc::too_deep, start,
                  "selector nests deeper than " + std::to_string(options_.max_depth) +
                      " levels %at (limit max_depth)");
    }
    prog_.nodes.push_back(n);
    categories_.push_back(c);
    starts_.push_back(start);
    heights_.push_back(height);
    return static_cast<std::uint32_t>(prog_.nodes.size() - 1);
  }
  std::uint32_t constant(value v, category c, std::size_t start) {
    prog_.constants.push_back(v);
    return add({op::constant, 0, 0, static_cast<std::uint32_t>(prog_.constants.size() - 1), 0}, c, start, {});
  }
  std::uint32_t string_constant(std::string s, std::size_t start) {
    prog_.strings.push_back(std::move(s));
    return constant(value::make_string(prog_.strings.back()), category::string_constant, start);
  }
  std::uint32_t binary(op code, std::uint32_t a, std::uint32_t b, category c) {
    return add({code, a, b, 0, 0}, c, starts_[a], {a, b});
  }
  std::uint32_t unary(op code, std::uint32_t a, category c, std::size_t start) {
    return add({code, a, 0, 0, 0}, c, start, {a});
  }
  std::uint32_t logical_not(std::uint32_t a, std::size_t start) {
    return unary(op::logical_not, a, category::boolean, start);
  }
  category cat(std::uint32_t n) const { return categories_[n]; }
  std::string image(std::uint32_t n) const {
    // The operand as written, for messages (its first token is enough to recognize it).
    for (const auto& t : tokens_) {
      if (t.offset == starts_[n]) return describe(t, text_);
    }
    return "operand";
  }

  // SelectorParser.asBooleanExpression
  std::uint32_t as_boolean(std::uint32_t n, std::size_t start, std::string_view role) {
    if (n == bad) return bad;
    if (is_boolean(cat(n))) return n;
    if (cat(n) == category::property) return unary(op::bool_cast, n, category::boolean, start);
    return fail(errc::not_boolean, start,
                std::string(role) + " must be a condition, but the expression starting with " +
                    image(n) + " %at is not boolean");
  }

  // ---- type checks of ComparisonExpression
  bool check_less_than_operand(std::uint32_t n) {
    const category c = cat(n);
    if (c == category::number_constant) return true;
    if (is_constant(c) || c == category::boolean) {
      fail(errc::not_comparable, starts_[n],
           image(n) + " %at cannot be compared with < <= > >= or BETWEEN (only numbers can)");
      return false;
    }
    return true;
  }
  bool check_equal_operand(std::uint32_t n) {
    if (cat(n) != category::null_constant) return true;
    fail(errc::not_comparable, starts_[n], "NULL %at cannot be compared with = or <>; use IS NULL");
    return false;
  }

  std::uint32_t equal(std::uint32_t a, std::uint32_t b) {
    if (!check_equal_operand(a) || !check_equal_operand(b)) return bad;
    const category ca = cat(a), cb = cat(b);
    if (is_constant(ca) && is_constant(cb) && is_boolean(ca) && !is_boolean(cb)) {
      return fail(errc::not_comparable, starts_[a], image(a) + " %at cannot be compared with " + image(b));
    }
    return binary(op::equal, a, b, category::boolean);
  }
  std::uint32_t ordering(op code, std::uint32_t a, std::uint32_t b) {
    if (!check_less_than_operand(a) || !check_less_than_operand(b)) return bad;
    return binary(code, a, b, category::boolean);
  }
  std::uint32_t is_null(std::uint32_t a) {
    const std::uint32_t null = constant(value::make_null(), category::null_constant, starts_[a]);
    if (null == bad) return bad;
    return binary(op::equal, a, null, category::boolean);
  }

  // LogicExpression.createAND/createOR: a left operand that is already an AND (OR) absorbs
  // the right one, so chains stay one level deep.
  std::uint32_t logical(op code, std::uint32_t left, std::uint32_t right) {
    std::vector<std::uint32_t> children;
    std::uint32_t height = heights_[right];
    if (prog_.nodes[left].code == code) {
      const node& l = prog_.nodes[left];
      children.assign(prog_.operands.begin() + l.arg, prog_.operands.begin() + l.arg + l.count);
      height = std::max(height, heights_[left] - 1);
    } else {
      children.push_back(left);
      height = std::max(height, heights_[left]);
    }
    children.push_back(right);
    const auto first = static_cast<std::uint32_t>(prog_.operands.size());
    prog_.operands.insert(prog_.operands.end(), children.begin(), children.end());
    return add_with_height({code, 0, 0, first, static_cast<std::uint32_t>(children.size())},
                           category::boolean, starts_[left], height + 1);
  }

  // ---- grammar (one function per production of SelectorParser.jj)
  std::uint32_t parse_or() {
    std::uint32_t left = parse_and();
    while (left != bad && accept(tok::kw_or)) {
      const std::uint32_t right = parse_and();
      if (right == bad) return bad;
      const std::uint32_t l = as_boolean(left, starts_[left], "the left operand of OR");
      const std::uint32_t r = as_boolean(right, starts_[right], "the right operand of OR");
      if (l == bad || r == bad) return bad;
      left = logical(op::logical_or, l, r);
    }
    return left;
  }

  std::uint32_t parse_and() {
    std::uint32_t left = parse_equality();
    while (left != bad && accept(tok::kw_and)) {
      const std::uint32_t right = parse_equality();
      if (right == bad) return bad;
      const std::uint32_t l = as_boolean(left, starts_[left], "the left operand of AND");
      const std::uint32_t r = as_boolean(right, starts_[right], "the right operand of AND");
      if (l == bad || r == bad) return bad;
      left = logical(op::logical_and, l, r);
    }
    return left;
  }

  std::uint32_t parse_equality() {
    std::uint32_t left = parse_comparison();
    while (left != bad) {
      if (accept(tok::equal)) {
        const std::uint32_t right = parse_comparison();
        left = right == bad ? bad : equal(left, right);
      } else if (accept(tok::not_equal)) {
        const std::uint32_t right = parse_comparison();
        const std::uint32_t eq = right == bad ? bad : equal(left, right);
        left = eq == bad ? bad : logical_not(eq, starts_[left]);
      } else if (peek().kind == tok::kw_is) {
        ++pos_;
        const bool negated = accept(tok::kw_not);
        if (!expect(tok::kw_null, negated ? "NULL after IS NOT" : "NULL or NOT NULL after IS")) return bad;
        const std::uint32_t test = is_null(left);
        left = test == bad || !negated ? test : logical_not(test, starts_[left]);
      } else {
        break;
      }
    }
    return left;
  }

  std::optional<std::string> string_literal(std::string_view after) {
    if (peek().kind != tok::string) {
      fail(errc::syntax_error, peek().offset,
           "expected a string literal " + std::string(after) + " %at, found " + describe(peek(), text_));
      return std::nullopt;
    }
    return tokens_[pos_++].value;
  }

  std::uint32_t parse_like(std::uint32_t left, bool negated) {
    auto pattern = string_literal("after LIKE");
    if (!pattern) return bad;
    std::optional<std::string> escape;
    std::optional<char32_t> escape_char;
    if (accept(tok::kw_escape)) {
      const std::size_t at = peek().offset;
      escape = string_literal("after ESCAPE");
      if (!escape) return bad;
      // ActiveMQ: exactly one Java char, so one character of the Basic Multilingual Plane.
      const std::size_t n = escape->empty() ? 0 : utf8_char_length(*escape, 0);
      if (escape->empty() || n != escape->size() || n == 4) {
        return fail(errc::bad_escape, at, "the ESCAPE of LIKE %at must be exactly one character");
      }
      escape_char = utf8_decode(*escape, 0);
    }
    prog_.likes.push_back({like_pattern(*pattern, escape_char), *pattern, escape});
    const std::uint32_t like = add({op::like, left, 0, static_cast<std::uint32_t>(prog_.likes.size() - 1), 0},
                                   category::boolean, starts_[left], {left});
    return like == bad || !negated ? like : logical_not(like, starts_[left]);
  }

  std::uint32_t parse_between(std::uint32_t value, bool negated) {
    const std::uint32_t low = parse_add();
    if (low == bad || !expect(tok::kw_and, "AND between the bounds of BETWEEN")) return bad;
    const std::uint32_t high = parse_add();
    if (high == bad) return bad;
    // createBetween: value >= low AND value <= high; createNotBetween: value < low OR value > high.
    const std::uint32_t a = ordering(negated ? op::less : op::greater_equal, value, low);
    const std::uint32_t b = a == bad ? bad : ordering(negated ? op::greater : op::less_equal, value, high);
    if (b == bad) return bad;
    return logical(negated ? op::logical_or : op::logical_and, a, b);
  }

  std::uint32_t parse_in(std::uint32_t left, bool negated) {
    if (!expect(tok::lparen, "'(' after IN")) return bad;
    string_set set;
    do {
      auto item = string_literal("in the IN list");
      if (!item) return bad;
      set.as_written.push_back(std::move(*item));
    } while (accept(tok::comma));
    if (!expect(tok::rparen, "',' or ')' in the IN list")) return bad;
    if (cat(left) != category::property) {
      return fail(errc::in_needs_property, starts_[left],
                  "IN needs a property name on its left, found " + image(left) + " %at");
    }
    set.items = set.as_written;
    std::sort(set.items.begin(), set.items.end());
    set.items.erase(std::unique(set.items.begin(), set.items.end()), set.items.end());
    prog_.sets.push_back(std::move(set));
    return add({negated ? op::not_in : op::in, left, 0, static_cast<std::uint32_t>(prog_.sets.size() - 1), 0},
               category::boolean, starts_[left], {left});
  }

  std::uint32_t parse_comparison() {
    std::uint32_t left = parse_add();
    while (left != bad) {
      const tok k = peek().kind;
      const tok next = peek(1).kind;
      if (k == tok::greater || k == tok::greater_equal || k == tok::less || k == tok::less_equal) {
        ++pos_;
        const std::uint32_t right = parse_add();
        if (right == bad) return bad;
        const op code = k == tok::greater ? op::greater
                        : k == tok::greater_equal ? op::greater_equal
                        : k == tok::less ? op::less : op::less_equal;
        left = ordering(code, left, right);
      } else if (k == tok::kw_like) {
        ++pos_;
        left = parse_like(left, false);
      } else if (k == tok::kw_between) {
        ++pos_;
        left = parse_between(left, false);
      } else if (k == tok::kw_in) {
        ++pos_;
        left = parse_in(left, false);
      } else if (k == tok::kw_not && (next == tok::kw_like || next == tok::kw_between || next == tok::kw_in)) {
        pos_ += 2;
        left = next == tok::kw_like ? parse_like(left, true)
               : next == tok::kw_between ? parse_between(left, true) : parse_in(left, true);
      } else {
        break;
      }
    }
    return left;
  }

  std::uint32_t parse_add() {
    std::uint32_t left = parse_mult();
    while (left != bad && (peek().kind == tok::plus || peek().kind == tok::minus)) {
      const op code = tokens_[pos_++].kind == tok::plus ? op::plus : op::minus;
      const std::uint32_t right = parse_mult();
      if (right == bad) return bad;
      left = binary(code, left, right, category::other);
    }
    return left;
  }

  std::uint32_t parse_mult() {
    std::uint32_t left = parse_unary();
    while (left != bad && (peek().kind == tok::star || peek().kind == tok::slash || peek().kind == tok::percent)) {
      const tok k = tokens_[pos_++].kind;
      const op code = k == tok::star ? op::multiply : k == tok::slash ? op::divide : op::modulo;
      const std::uint32_t right = parse_unary();
      if (right == bad) return bad;
      left = binary(code, left, right, category::other);
    }
    return left;
  }

  // A '-' before 9223372036854775808 (possibly in parentheses) makes it Long.MIN_VALUE, as
  // UnaryExpression.negate turns ActiveMQ's BigDecimal back into a long; run() refuses the
  // literal anywhere else.
  std::uint32_t parse_unary() {
    struct depth_guard {
      std::size_t& d;
      explicit depth_guard(std::size_t& depth) : d(++depth) {}
      ~depth_guard() { --d; }
    } guard(depth_);
    const token& t = peek();
    if (depth_ > options_.max_depth) {
      return fail(errc::too_deep, t.offset,
                  "selector nests deeper than " + std::to_string(options_.max_depth) +
                      " levels %at (limit max_depth)");
    }
    const std::size_t start = t.offset;
    switch (t.kind) {
      case tok::plus:
        ++pos_;
        return parse_unary();
      case tok::minus: {
        ++pos_;
        const std::uint32_t operand = parse_unary();
        if (operand == bad) return bad;
        const auto pending = std::find(unnegated_.begin(), unnegated_.end(), operand);
        if (pending != unnegated_.end()) {
          unnegated_.erase(pending);
          // A negated constant is not a ConstantExpression in ActiveMQ: category other.
          prog_.constants[prog_.nodes[operand].arg] = value::make_long(std::numeric_limits<std::int64_t>::min());
          categories_[operand] = category::other;
          starts_[operand] = start;
          return operand;
        }
        return unary(op::negate, operand, category::other, start);
      }
      case tok::kw_not: {
        ++pos_;
        const std::uint32_t operand = parse_unary();
        const std::uint32_t b = as_boolean(operand, operand == bad ? start : starts_[operand], "the operand of NOT");
        return b == bad ? bad : logical_not(b, start);
      }
      case tok::kw_xpath:
      case tok::kw_xquery:
        return fail(errc::unsupported, start,
                    std::string(t.kind == tok::kw_xpath ? "XPATH" : "XQUERY") +
                        " selectors %at are an ActiveMQ extension that Tandem does not support");
      default:
        break;
    }
    if (t.kind == tok::identifier && peek(1).kind == tok::lparen) {
      const std::string name(text_.substr(t.offset, t.length));
      if (std::find(activemq_functions.begin(), activemq_functions.end(), name) != activemq_functions.end()) {
        return fail(errc::unsupported, start,
                    "function " + name + "() %at is an ActiveMQ extension that Tandem does not support");
      }
      return fail(errc::unknown_function, start, "unknown function '" + name + "' %at");
    }
    return parse_primary();
  }

  std::uint32_t parse_primary() {
    const token& t = peek();
    const std::size_t start = t.offset;
    const std::string_view image = text_.substr(t.offset, t.length);
    switch (t.kind) {
      case tok::string: {
        ++pos_;
        return string_constant(t.value, start);
      }
      case tok::decimal:
      case tok::hex:
      case tok::octal: {
        ++pos_;
        return integer_literal(t.kind, image, start);
      }
      case tok::floating: {
        ++pos_;
        return constant(value::make_double(java_parse_double(image).value_or(0.0)), category::number_constant, start);
      }
      case tok::kw_true:
      case tok::kw_false:
        ++pos_;
        return constant(value::make_bool(t.kind == tok::kw_true), category::boolean_constant, start);
      case tok::kw_null:
        ++pos_;
        return constant(value::make_null(), category::null_constant, start);
      case tok::identifier: {
        ++pos_;
        prog_.fields.push_back(resolve_field(image));
        prog_.names.emplace_back(image);
        return add({op::property, 0, 0, static_cast<std::uint32_t>(prog_.names.size() - 1), 0},
                   category::property, start, {});
      }
      case tok::lparen: {
        ++pos_;
        const std::uint32_t inner = parse_or();
        if (inner == bad || !expect(tok::rparen, "')'")) return bad;
        return inner;
      }
      default:
        return fail(errc::syntax_error, start, "expected an expression %at, found " + describe(t, text_));
    }
  }

  // ConstantExpression.createFromDecimal/Hex/Octal: Integer when it fits, else Long.
  std::uint32_t integer_literal(tok kind, std::string_view image, std::size_t start) {
    std::string_view digits = image;
    unsigned base = 10;
    if (kind == tok::decimal && (digits.back() == 'l' || digits.back() == 'L')) digits.remove_suffix(1);
    if (kind == tok::hex) { digits.remove_prefix(2); base = 16; }
    if (kind == tok::octal) base = 8;
    unsigned __int128 v = 0;
    bool overflow = false;
    for (const char c : digits) {
      const unsigned d = c <= '9' ? unsigned(c - '0') : unsigned((c | 0x20) - 'a' + 10);
      v = v * base + d;
      if (v > (unsigned __int128)1 << 64) overflow = true;
    }
    const unsigned __int128 long_max = std::numeric_limits<std::int64_t>::max();
    if (!overflow && v <= long_max) {
      if (v <= unsigned(std::numeric_limits<std::int32_t>::max())) {
        return constant(value::make_int(static_cast<std::int32_t>(v)), category::number_constant, start);
      }
      return constant(value::make_long(static_cast<std::int64_t>(v)), category::number_constant, start);
    }
    if (kind == tok::decimal && !overflow && v == long_max + 1) {
      // Valid only as the operand of '-' (see parse_unary).
      const std::uint32_t n = constant(value::make_long(0), category::number_constant, start);
      if (n != bad) unnegated_.push_back(n);
      return n;
    }
    return fail(errc::number_out_of_range, start,
                "number " + std::string(image) + " %at is out of range (above 2^63-1)");
  }

  std::string_view text_;
  std::size_t base_;
  const parse_options& options_;
  program& prog_;
  std::vector<token> tokens_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  std::vector<category> categories_;
  std::vector<std::size_t> starts_;
  std::vector<std::uint32_t> heights_;
  std::vector<std::uint32_t> unnegated_;  // 9223372036854775808 literals not under a '-' (yet)
  std::optional<parse_error> error_;
};

}  // namespace

result<std::shared_ptr<program>> compile(std::string_view full_text, std::size_t base_offset,
                                         bool convert, const parse_options& options) {
  auto prog = std::make_shared<program>();
  prog->text = std::string(full_text.substr(base_offset));
  prog->convert = convert;
  prog->prefixed = options.conversion == string_conversion::by_prefix && convert;
  parser p(full_text, base_offset, options, *prog);
  if (auto error = p.run()) return std::move(*error);
  return prog;
}

}  // namespace tandem::selector::detail
