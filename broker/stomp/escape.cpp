#include "broker/stomp/escape.h"

#include <array>

#include "broker/stomp/errc.h"

namespace tandem::stomp {

escaping escaping_for(version v, command c) noexcept {
  if (is_never_escaped(c)) return escaping::none;
  switch (v) {
    case version::v1_0: return escaping::none;
    case version::v1_1: return escaping::v1_1;
    case version::v1_2: return escaping::v1_2;
  }
  return escaping::none;
}

bool unescape(std::string_view in, escaping e, std::string& out, std::size_t* bad_at) {
  const std::size_t first = e == escaping::none ? std::string_view::npos : in.find('\\');
  if (first == std::string_view::npos) {
    out.assign(in);
    return true;
  }
  out.assign(in.substr(0, first));
  for (std::size_t i = first; i < in.size(); ++i) {
    const char c = in[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    const std::size_t backslash = i;
    const auto bad = [&] {
      if (bad_at != nullptr) *bad_at = backslash;
      return false;
    };
    if (++i == in.size()) return bad();
    switch (in[i]) {
      case '\\': out.push_back('\\'); break;
      case 'n': out.push_back('\n'); break;
      case 'c': out.push_back(':'); break;
      case 'r':
        if (e != escaping::v1_2) return bad();
        out.push_back('\r');
        break;
      default: return bad();
    }
  }
  return true;
}

std::error_code escape_append(std::string_view in, escaping e, header_part part, std::string& out) {
  if (e == escaping::none) {
    if (in.find('\n') != std::string_view::npos) return errc::unencodable_header;
    if (part == header_part::name && in.find(':') != std::string_view::npos) return errc::unencodable_header;
  }
  // Without a \r escape a value's last CR would be read back as half of a CR LF.
  if (e != escaping::v1_2 && part == header_part::value && !in.empty() && in.back() == '\r') {
    return errc::unencodable_header;
  }
  if (e == escaping::none) {
    out.append(in);
    return {};
  }

  // Copy runs of ordinary octets in one append; most headers have no special octet at all,
  // so the scan asks one table per octet (every MESSAGE is encoded once per subscriber: this
  // loop was 12% of tandemd's CPU under topic fan-out, issue 19).
  static constexpr auto may_escape = [] {
    std::array<bool, 256> t{};
    for (unsigned char c : {'\\', '\n', ':', '\r'}) t[c] = true;
    return t;
  }();
  std::size_t run = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (!may_escape[static_cast<unsigned char>(c)]) continue;
    const char* replacement = nullptr;
    switch (c) {
      case '\\': replacement = "\\\\"; break;
      case '\n': replacement = "\\n"; break;
      case ':': replacement = "\\c"; break;
      case '\r':
        if (e == escaping::v1_2) replacement = "\\r";
        break;
      default: break;
    }
    if (replacement == nullptr) continue;
    out.append(in.data() + run, i - run);
    out.append(replacement, 2);
    run = i + 1;
  }
  out.append(in.data() + run, in.size() - run);
  return {};
}

}  // namespace tandem::stomp
