#include "broker/engine/authorization.h"

#include <algorithm>

namespace tandem::broker {

namespace {

std::string_view next_element(std::string_view& rest) {
  auto dot = rest.find('.');
  auto element = rest.substr(0, dot);
  rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  return element;
}

}  // namespace

std::string_view to_string(permission p) {
  switch (p) {
    case permission::read: return "read";
    case permission::write: return "write";
    case permission::admin: return "admin";
  }
  return "?";
}

bool destination_matches(std::string_view pattern, std::string_view name) {
  bool name_done = false;
  while (!pattern.empty()) {
    auto want = next_element(pattern);
    if (want == ">") return true;  // the rest, zero or more elements
    if (name_done) return false;
    bool last = name.find('.') == std::string_view::npos;
    auto have = next_element(name);
    if (want != "*" && want != have) return false;
    if (last) name_done = true;
  }
  return name_done;
}

std::set<std::string> authorization_map::allowed(std::string_view destination, permission p) const {
  bool topic = destination.starts_with("/topic/");
  auto slash = destination.find('/', 1);
  auto name = slash == std::string_view::npos ? destination : destination.substr(slash + 1);
  std::set<std::string> groups;
  for (const auto& e : entries_) {
    if (e.topic != topic || !destination_matches(e.pattern, name)) continue;
    const auto& list = p == permission::read ? e.read : p == permission::write ? e.write : e.admin;
    groups.insert(list.begin(), list.end());
  }
  return groups;
}

bool authorization_map::permits(const std::vector<std::string>& groups, std::string_view destination, permission p) const {
  auto allowed_groups = allowed(destination, p);
  return std::any_of(groups.begin(), groups.end(), [&](const std::string& g) { return allowed_groups.contains(g); });
}

}  // namespace tandem::broker
