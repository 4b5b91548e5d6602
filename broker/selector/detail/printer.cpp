// program::to_string: a fully parenthesized selector that parses back to the same program.
#include <charconv>
#include <cmath>
#include <string>

#include "broker/selector/detail/program.h"
#include "broker/selector/selector.h"

namespace tandem::selector::detail {
namespace {

void quote(std::string& out, std::string_view s) {
  out += '\'';
  for (const char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
}

void print_constant(std::string& out, const value& v) {
  char buf[40];
  switch (v.k) {
    case kind::null: out += "NULL"; return;
    case kind::boolean: out += v.b ? "TRUE" : "FALSE"; return;
    case kind::int32: out.append(buf, std::to_chars(buf, buf + sizeof buf, v.i).ptr); return;
    case kind::int64:
      // Long.MIN_VALUE exists only as "-9223372036854775808"; the '-' must stay unary.
      if (v.l < 0) out += "(-9223372036854775808)";
      else out.append(buf, std::to_chars(buf, buf + sizeof buf, v.l).ptr);
      return;
    case kind::float64:
      // Literals are finite or overflowed to infinity ("1E999"); scientific is always a
      // FLOATING_POINT_LITERAL ("1e+300", "1.5e+00").
      if (std::isinf(v.d)) out += "1E999";
      else out.append(buf, std::to_chars(buf, buf + sizeof buf, v.d, std::chars_format::scientific).ptr);
      return;
    case kind::string: quote(out, v.s); return;
    case kind::error: break;
  }
  out += "NULL";
}

class printer {
 public:
  explicit printer(const program& p) : p_(p) {}

  void print(std::uint32_t index) {
    const node& n = p_.nodes[index];
    switch (n.code) {
      case op::constant: print_constant(out_, p_.constants[n.arg]); return;
      case op::property:
      case op::bool_cast: out_ += p_.names[p_.nodes[n.code == op::bool_cast ? n.a : index].arg]; return;
      case op::negate: out_ += "(-"; print(n.a); out_ += ')'; return;
      case op::plus: return infix(n, " + ");
      case op::minus: return infix(n, " - ");
      case op::multiply: return infix(n, " * ");
      case op::divide: return infix(n, " / ");
      case op::modulo: return infix(n, " % ");
      case op::equal:
        if (p_.nodes[n.b].code == op::constant && p_.constants[p_.nodes[n.b].arg].k == kind::null) {
          out_ += '(';
          print(n.a);
          out_ += " IS NULL)";
          return;
        }
        return infix(n, " = ");
      case op::less: return infix(n, " < ");
      case op::less_equal: return infix(n, " <= ");
      case op::greater: return infix(n, " > ");
      case op::greater_equal: return infix(n, " >= ");
      case op::like: {
        const like_entry& like = p_.likes[n.arg];
        out_ += '(';
        print(n.a);
        out_ += " LIKE ";
        quote(out_, like.text);
        if (like.escape) {
          out_ += " ESCAPE ";
          quote(out_, *like.escape);
        }
        out_ += ')';
        return;
      }
      case op::in:
      case op::not_in: {
        out_ += '(';
        print(n.a);
        out_ += n.code == op::in ? " IN (" : " NOT IN (";
        const auto& items = p_.sets[n.arg].as_written;
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (i) out_ += ", ";
          quote(out_, items[i]);
        }
        out_ += "))";
        return;
      }
      case op::logical_not: out_ += "(NOT "; print(n.a); out_ += ')'; return;
      case op::logical_and:
      case op::logical_or:
        out_ += '(';
        for (std::uint32_t i = 0; i < n.count; ++i) {
          if (i) out_ += n.code == op::logical_and ? " AND " : " OR ";
          print(p_.operands[n.arg + i]);
        }
        out_ += ')';
        return;
    }
  }

  void prefix(std::string_view text) { out_ += text; }
  std::string take() { return std::move(out_); }

 private:
  void infix(const node& n, std::string_view symbol) {
    out_ += '(';
    print(n.a);
    out_ += symbol;
    print(n.b);
    out_ += ')';
  }

  const program& p_;
  std::string out_;
};

}  // namespace

std::string program::to_string() const {
  printer p(*this);
  if (prefixed) p.prefix(convert_prefix);
  p.print(root);
  return p.take();
}

}  // namespace tandem::selector::detail
