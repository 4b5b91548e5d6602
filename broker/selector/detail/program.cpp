#include "broker/selector/detail/program.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "broker/selector/detail/java.h"
#include "broker/selector/detail/scratch.h"

namespace tandem::selector::detail {

bool string_set::contains(std::string_view s) const noexcept {
  const auto it = std::lower_bound(items.begin(), items.end(), s,
                                   [](const std::string& a, std::string_view b) { return a < b; });
  return it != items.end() && *it == s;
}

namespace {

constexpr value null_value = value::make_null();
constexpr value error_value = value::make_error();
constexpr value true_value = value::make_bool(true);
constexpr value false_value = value::make_bool(false);

value boolean(bool b) { return b ? true_value : false_value; }

// Java's two's-complement arithmetic: int and long overflow wrap.
template <class T>
T wrap_add(T a, T b) { return T(std::make_unsigned_t<T>(a) + std::make_unsigned_t<T>(b)); }
template <class T>
T wrap_sub(T a, T b) { return T(std::make_unsigned_t<T>(a) - std::make_unsigned_t<T>(b)); }
template <class T>
T wrap_mul(T a, T b) { return T(std::make_unsigned_t<T>(a) * std::make_unsigned_t<T>(b)); }

double as_double(const value& v) {
  switch (v.k) {
    case kind::int32: return v.i;
    case kind::int64: return static_cast<double>(v.l);
    default: return v.d;
  }
}
std::int64_t as_long(const value& v) { return v.k == kind::int32 ? v.i : v.l; }

// "" + v in Java, for string concatenation.
std::string_view java_string_of(const value& v, scratch& space) {
  char buf[java_double_chars];
  std::size_t n = 0;
  switch (v.k) {
    case kind::string: return v.s;
    case kind::boolean: return v.b ? "true" : "false";
    case kind::int32: n = static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v.i).ptr - buf); break;
    case kind::int64: n = static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, v.l).ptr - buf); break;
    case kind::float64: n = java_format_double(v.d, buf); break;
    default: return "null";
  }
  return space.concat(std::string_view(buf, n), {});
}

enum class relation : std::uint8_t { equal, less, less_equal, greater, greater_equal };

bool holds(relation r, int c) {
  switch (r) {
    case relation::equal: return c == 0;
    case relation::less: return c < 0;
    case relation::less_equal: return c <= 0;
    case relation::greater: return c > 0;
    case relation::greater_equal: return c >= 0;
  }
  return false;
}

template <class T>
int three_way(T a, T b) { return a < b ? -1 : (a > b ? 1 : 0); }

// A string converted to the other operand's type (convert_string_expressions), as
// ComparisonExpression.compare does with Integer.valueOf, Long.valueOf, Double.valueOf or
// Boolean.valueOf. nullopt when Java throws NumberFormatException (the comparison is FALSE).
std::optional<value> convert_string(std::string_view s, kind target) {
  switch (target) {
    case kind::boolean: return value::make_bool(java_parse_boolean(s));
    case kind::int32: if (auto v = java_parse_int(s)) return value::make_int(*v); return std::nullopt;
    case kind::int64: if (auto v = java_parse_long(s)) return value::make_long(*v); return std::nullopt;
    case kind::float64: if (auto v = java_parse_double(s)) return value::make_double(*v); return std::nullopt;
    default: return std::nullopt;
  }
}

// ComparisonExpression.compare: both operands non-null. Different types are promoted (int ->
// long -> double); with conversion on a string takes the other side's type; any other mix is
// FALSE. Boolean against string with conversion on is ActiveMQ's ClassCastException: error.
value compare(value l, value r, relation rel, bool convert) {
  if (l.k != r.k) {
    if (l.k == kind::boolean) {
      return convert && r.k == kind::string ? error_value : false_value;
    }
    if (l.is_number() && r.is_number()) {
      if (l.k == kind::float64 || r.k == kind::float64) {
        l = value::make_double(as_double(l));
        r = value::make_double(as_double(r));
      } else {
        l = value::make_long(as_long(l));
        r = value::make_long(as_long(r));
      }
    } else if (convert && l.is_number() && r.k == kind::string) {
      const auto converted = convert_string(r.s, l.k);
      if (!converted) return false_value;
      r = *converted;
    } else if (convert && l.k == kind::string && (r.is_number() || r.k == kind::boolean)) {
      const auto converted = convert_string(l.s, r.k);
      if (!converted) return false_value;
      l = *converted;
    } else {
      return false_value;
    }
  }
  int c = 0;
  switch (l.k) {
    case kind::boolean: c = three_way(int(l.b), int(r.b)); break;
    case kind::int32: c = three_way(l.i, r.i); break;
    case kind::int64: c = three_way(l.l, r.l); break;
    case kind::float64: c = java_compare_double(l.d, r.d); break;
    case kind::string: c = java_compare_string(l.s, r.s); break;
    default: return false_value;
  }
  return boolean(holds(rel, c));
}

class evaluator {
 public:
  evaluator(const program& p, const message_view& m) : p_(p), m_(m) {}

  value eval(std::uint32_t index) {
    const node& n = p_.nodes[index];
    switch (n.code) {
      case op::constant: return p_.constants[n.arg];
      case op::property: return read_field(p_.fields[n.arg], p_.names[n.arg], m_, space_);
      case op::negate: return negate(eval(n.a));
      case op::plus:
      case op::minus:
      case op::multiply:
      case op::divide:
      case op::modulo: return arithmetic(n);
      case op::equal: return equal(n);
      case op::less: return ordering(n, relation::less);
      case op::less_equal: return ordering(n, relation::less_equal);
      case op::greater: return ordering(n, relation::greater);
      case op::greater_equal: return ordering(n, relation::greater_equal);
      case op::like: {
        const value v = eval(n.a);
        if (v.k == kind::null || v.k == kind::error) return v;
        if (v.k != kind::string) return false_value;
        return boolean(p_.likes[n.arg].pattern.matches(v.s));
      }
      case op::in:
      case op::not_in: {
        const value v = eval(n.a);
        if (v.k == kind::error) return v;
        if (v.k != kind::string) return null_value;  // ActiveMQ: IN on a non-string is unknown
        return boolean(p_.sets[n.arg].contains(v.s) != (n.code == op::not_in));
      }
      case op::logical_not: {
        const value v = eval(n.a);
        return v.k == kind::boolean ? boolean(!v.b) : v;
      }
      case op::bool_cast: {
        const value v = eval(n.a);
        if (v.k == kind::null || v.k == kind::error || v.k == kind::boolean) return v;
        return false_value;
      }
      case op::logical_and: return logical(n, false);
      case op::logical_or: return logical(n, true);
    }
    return error_value;
  }

 private:
  // AND stops at the first FALSE, OR at the first TRUE; otherwise NULL if any operand was.
  value logical(const node& n, bool decisive) {
    bool some_null = false;
    for (std::uint32_t i = 0; i < n.count; ++i) {
      const value v = eval(p_.operands[n.arg + i]);
      if (v.k == kind::error) return v;
      if (v.k == kind::boolean && v.b == decisive) return boolean(decisive);
      if (v.k != kind::boolean) some_null = true;
    }
    return some_null ? null_value : boolean(!decisive);
  }

  // EqualsExpression: NULL = NULL is TRUE; NULL = x is NULL; x = NULL is FALSE.
  value equal(const node& n) {
    const value l = eval(n.a);
    if (l.k == kind::error) return l;
    const value r = eval(n.b);
    if (r.k == kind::error) return r;
    const bool ln = l.k == kind::null, rn = r.k == kind::null;
    if (ln && rn) return true_value;
    if (ln) return null_value;
    if (rn) return false_value;
    return compare(l, r, relation::equal, p_.convert);
  }

  // The right operand is not evaluated when the left is NULL (it matters only for errors).
  value ordering(const node& n, relation rel) {
    const value l = eval(n.a);
    if (l.k == kind::null || l.k == kind::error) return l;
    const value r = eval(n.b);
    if (r.k == kind::null || r.k == kind::error) return r;
    return compare(l, r, rel, p_.convert);
  }

  value arithmetic(const node& n) {
    const value l = eval(n.a);
    if (l.k == kind::null || l.k == kind::error) return l;
    const value r = eval(n.b);
    if (r.k == kind::null || r.k == kind::error) return r;
    if (n.code == op::plus && l.k == kind::string) {
      return value::make_string(space_.concat(l.s, java_string_of(r, space_)));
    }
    if (!l.is_number() || !r.is_number()) return error_value;  // "Cannot call ... operation on"
    if (n.code == op::divide) return value::make_double(as_double(l) / as_double(r));
    if (n.code == op::modulo) return value::make_double(std::fmod(as_double(l), as_double(r)));
    if (l.k == kind::float64 || r.k == kind::float64) {
      const double a = as_double(l), b = as_double(r);
      return value::make_double(n.code == op::plus ? a + b : n.code == op::minus ? a - b : a * b);
    }
    if (l.k == kind::int64 || r.k == kind::int64) {
      const std::int64_t a = as_long(l), b = as_long(r);
      return value::make_long(n.code == op::plus ? wrap_add(a, b) : n.code == op::minus ? wrap_sub(a, b) : wrap_mul(a, b));
    }
    return value::make_int(n.code == op::plus ? wrap_add(l.i, r.i) : n.code == op::minus ? wrap_sub(l.i, r.i) : wrap_mul(l.i, r.i));
  }

  // UnaryExpression.createNegate: a non-number negates to NULL, not to an error.
  static value negate(const value& v) {
    switch (v.k) {
      case kind::int32: return value::make_int(wrap_sub(0, v.i));
      case kind::int64: return value::make_long(wrap_sub<std::int64_t>(0, v.l));
      case kind::float64: return value::make_double(-v.d);
      case kind::error: return v;
      default: return null_value;
    }
  }

  const program& p_;
  const message_view& m_;
  scratch space_;
};

}  // namespace

bool program::matches(const message_view& message) const noexcept {
  evaluator e(*this, message);
  const value v = e.eval(root);
  return v.k == kind::boolean && v.b;
}

}  // namespace tandem::selector::detail
