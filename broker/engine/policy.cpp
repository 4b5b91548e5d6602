#include "broker/engine/policy.h"

#include <algorithm>
#include <cmath>

#include "broker/engine/authorization.h"

namespace tandem::broker {

namespace {

// How specific a pattern is: literal elements before its first wildcard.
std::size_t literal_elements(std::string_view pattern) {
  std::size_t n = 0;
  while (!pattern.empty()) {
    auto dot = pattern.find('.');
    auto element = pattern.substr(0, dot);
    if (element == "*" || element == ">") break;
    ++n;
    pattern = dot == std::string_view::npos ? std::string_view() : pattern.substr(dot + 1);
  }
  return n;
}

}  // namespace

const destination_policy* policy_map::find(std::string_view destination) const {
  const bool topic = destination.starts_with("/topic/");
  if (!topic && !destination.starts_with("/queue/")) return nullptr;
  const auto name = destination.substr(7);
  const destination_policy* best = nullptr;
  std::size_t best_literals = 0;
  for (const auto& e : entries_) {
    if (e.topic != topic || !destination_matches(e.pattern, name)) continue;
    const auto literals = literal_elements(e.pattern);
    if (!best || literals > best_literals || (literals == best_literals && e.pattern.size() > best->pattern.size())) {
      best = &e;
      best_literals = literals;
    }
  }
  return best;
}

std::chrono::milliseconds redelivery_delay(const redelivery_settings& s, std::uint32_t redeliveries_so_far) {
  using ms = std::chrono::milliseconds;
  ms delay = s.initial_redelivery_delay;
  for (std::uint32_t i = 0; i < redeliveries_so_far; ++i) {
    ms next = s.redelivery_delay;
    if (delay.count() > 0 && s.use_exponential_back_off && s.back_off_multiplier > 1.0) {
      // Saturate instead of overflowing: a day is far beyond any useful delay.
      constexpr double ceiling = 24.0 * 3600 * 1000;
      next = ms(static_cast<std::int64_t>(std::min(ceiling, static_cast<double>(delay.count()) * s.back_off_multiplier)));
      if (s.maximum_redelivery_delay.count() != -1 && next > s.maximum_redelivery_delay)
        next = std::max(s.maximum_redelivery_delay, s.redelivery_delay);
    }
    if (next == delay) break;  // each delay depends only on the one before: a fixed point
    delay = next;
  }
  return delay;
}

bool redelivery_allowed(const redelivery_settings& s, std::uint32_t redeliveries_so_far) {
  return s.maximum_redeliveries < 0 || redeliveries_so_far < static_cast<std::uint64_t>(s.maximum_redeliveries);
}

}  // namespace tandem::broker
