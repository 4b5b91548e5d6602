#include "broker/admin_guard.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace tandem::broker::admin_guard {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "host:port" -> "host"; "[::1]:8161" -> "[::1]"; "host" -> "host".
std::string_view host_part(std::string_view authority) {
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  auto colon = authority.rfind(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

bool has_port(std::string_view authority) { return host_part(authority).size() != authority.size(); }

}  // namespace

access required_access(std::string_view method, std::string_view target, bool open_reads) {
  if (method != "GET" && method != "HEAD") return access::admin;
  auto query = target.find('?');
  if (query != std::string_view::npos) target = target.substr(0, query);
  if (target.starts_with("/api/destinations/") && target.ends_with("/browse")) return access::admin;
  if (target == "/health") return access::open;
  return open_reads ? access::open : access::read;
}

std::vector<std::string> own_names(std::string_view local_address, unsigned short port, const std::vector<std::string>& extra) {
  std::vector<std::string> names;
  auto add_host = [&](std::string_view host) {
    bool v6 = host.find(':') != std::string_view::npos && !host.starts_with('[');
    names.push_back(lower(v6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port)));
  };
  if (!local_address.empty()) add_host(local_address);
  add_host("localhost");
  add_host("127.0.0.1");
  add_host("::1");
  for (const auto& e : extra) {
    if (has_port(e)) names.push_back(lower(e));
    else add_host(e);
  }
  return names;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& names) {
  host = trim(host);
  if (host.empty()) return false;
  auto h = lower(host);
  if (has_port(h)) return std::find(names.begin(), names.end(), h) != names.end();
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return host_part(n) == h; });
}

bool origin_allowed(std::string_view origin, const std::vector<std::string>& names) {
  auto o = lower(trim(origin));
  std::string_view rest(o);
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  else if (rest.starts_with("https://")) rest.remove_prefix(8);
  else return false;
  if (rest.empty() || rest.find('/') != std::string_view::npos) return false;
  return host_allowed(rest, names);
}

bool is_simple_request(std::string_view content_type, bool has_custom_header) {
  if (has_custom_header) return false;
  auto media = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (media == "application/json") return false;
  // Anything else a form or fetch() without preflight can send, and no type at all.
  return true;
}

std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view authorization) {
  authorization = trim(authorization);
  if (authorization.size() < 6 || lower(authorization.substr(0, 6)) != "basic ") return std::nullopt;
  auto encoded = trim(authorization.substr(6));
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 4096) return std::nullopt;
  std::string decoded(encoded.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()), reinterpret_cast<const unsigned char*>(encoded.data()),
                          static_cast<int>(encoded.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes: drop one per '='.
  std::size_t len = static_cast<std::size_t>(n);
  for (auto it = encoded.rbegin(); it != encoded.rend() && *it == '='; ++it) --len;
  decoded.resize(len);
  auto colon = decoded.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  return std::make_pair(decoded.substr(0, colon), decoded.substr(colon + 1));
}

bool grants(const std::vector<std::string>& groups, access needed) {
  auto in = [&](std::string_view g) { return std::find(groups.begin(), groups.end(), g) != groups.end(); };
  switch (needed) {
    case access::open: return true;
    case access::read: return in("admin") || in("metrics");
    case access::admin: return in("admin");
  }
  return false;
}

}  // namespace tandem::broker::admin_guard
