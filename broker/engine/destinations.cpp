#include "broker/engine/destinations.h"

namespace tandem::broker::detail {
namespace {

// Splits at '.' into elements (an empty element stays, as ActiveMQ's DestinationPath does).
std::vector<std::string_view> elements(std::string_view name) {
  std::vector<std::string_view> out;
  for (;;) {
    auto dot = name.find('.');
    out.push_back(name.substr(0, dot));
    if (dot == std::string_view::npos) return out;
    name.remove_prefix(dot + 1);
  }
}

// "/queue/" or "/topic/" (with the slashes), or "" when neither.
std::string_view kind_prefix(std::string_view d) {
  for (std::string_view p : {"/queue/", "/topic/"})
    if (d.starts_with(p)) return p;
  return {};
}

}  // namespace

bool has_wildcard(std::string_view name) {
  if (auto k = kind_prefix(name); !k.empty()) name.remove_prefix(k.size());
  for (auto e : elements(name))
    if (e == "*" || e == ">") return true;
  return false;
}

bool wildcard_matches(std::string_view pattern, std::string_view name) {
  auto kp = kind_prefix(pattern), kn = kind_prefix(name);
  if (kp.empty() || kp != kn) return false;
  auto p = elements(pattern.substr(kp.size()));
  auto n = elements(name.substr(kn.size()));
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">" && i + 1 == p.size()) return n.size() > i;
    if (i >= n.size()) return false;
    if (p[i] != "*" && p[i] != n[i]) return false;
  }
  return p.size() == n.size();
}

std::vector<std::string_view> split_composite(std::string_view destination) {
  std::vector<std::string_view> out;
  for (;;) {
    auto comma = destination.find(',');
    out.push_back(destination.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    destination.remove_prefix(comma + 1);
  }
}

bool subscription_covers(std::string_view subscribed, std::string_view name) {
  for (auto part : split_composite(subscribed))
    if (part == name || wildcard_matches(part, name)) return true;
  return false;
}

std::string_view virtual_topic_name(std::string_view destination) {
  constexpr std::string_view prefix = "/topic/VirtualTopic.";
  if (!destination.starts_with(prefix) || destination.size() == prefix.size()) return {};
  return destination.substr(7);
}

bool is_virtual_topic_queue(std::string_view queue, std::string_view vt) {
  constexpr std::string_view prefix = "/queue/Consumer.";
  if (vt.empty() || !queue.starts_with(prefix)) return false;
  queue.remove_prefix(prefix.size());
  auto dot = queue.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  return queue.substr(dot + 1) == vt;
}

std::string global_temp_name(std::string_view destination, std::string_view owner_token) {
  auto rewrite = [&](std::string_view local, std::string_view global) {
    std::string out(global);
    out += owner_token;
    out += '.';
    out += destination.substr(local.size());
    return out;
  };
  if (destination.starts_with(temp_queue_prefix)) return rewrite(temp_queue_prefix, remote_temp_queue_prefix);
  if (destination.starts_with(temp_topic_prefix)) return rewrite(temp_topic_prefix, remote_temp_topic_prefix);
  return std::string(destination);
}

bool is_temporary(std::string_view destination) {
  return destination.starts_with(remote_temp_queue_prefix) || destination.starts_with(remote_temp_topic_prefix);
}

}  // namespace tandem::broker::detail
