#include "broker/ws_policy.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace tandem::broker::ws_policy {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string normalized_origin(std::string_view origin) {
  origin = trim(origin);
  if (origin.ends_with('/')) origin.remove_suffix(1);
  std::string out(origin);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
  auto wanted = normalized_origin(origin);
  for (const auto& a : allowed) {
    if (a == "*") return true;
    if (wanted != "null" && normalized_origin(a) == wanted) return true;
  }
  return false;
}

std::string choose_subprotocol(std::string_view offered) {
  // The client lists them in its order of preference; the broker prefers the newest STOMP.
  std::vector<std::string_view> tokens;
  while (!offered.empty()) {
    auto comma = offered.find(',');
    tokens.push_back(trim(offered.substr(0, comma)));
    offered = comma == std::string_view::npos ? std::string_view{} : offered.substr(comma + 1);
  }
  for (auto name : stomp_subprotocols)
    if (std::find(tokens.begin(), tokens.end(), name) != tokens.end()) return std::string(name);
  return {};
}

decision decide(std::string_view offered, std::string_view origin, const std::vector<std::string>& allowed_origins) {
  decision d;
  if (!trim(origin).empty() && !origin_allowed(origin, allowed_origins)) {
    d.status = 403;
    d.reason = fmt::format("Origin \"{}\" is not in ws_allowed_origins", trim(origin).substr(0, 200));
    return d;
  }
  d.subprotocol = choose_subprotocol(offered);
  if (d.subprotocol.empty() && !trim(offered).empty()) {
    d.status = 400;
    d.reason = fmt::format("no STOMP subprotocol offered (Sec-WebSocket-Protocol: \"{}\"; this listener speaks "
                           "v12.stomp, v11.stomp, v10.stomp)",
                           trim(offered).substr(0, 200));
    return d;
  }
  d.accept = true;
  return d;
}

}  // namespace tandem::broker::ws_policy
