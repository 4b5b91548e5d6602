#include "broker/config_policies.h"

#include <fmt/format.h>

namespace tandem::broker {

namespace {

using json = nlohmann::json;

redelivery_settings read_redelivery(const json& r) {
  redelivery_settings s;
  auto ms = [](const json& v) { return std::chrono::milliseconds(v.get<std::int64_t>()); };
  for (auto it = r.begin(); it != r.end(); ++it) {
    const auto& k = it.key();
    if (k == "maximum_redeliveries") s.maximum_redeliveries = it->get<std::int64_t>();
    else if (k == "initial_redelivery_delay_ms") s.initial_redelivery_delay = ms(*it);
    else if (k == "redelivery_delay_ms") s.redelivery_delay = ms(*it);
    else if (k == "use_exponential_back_off") s.use_exponential_back_off = it->get<bool>();
    else if (k == "back_off_multiplier") s.back_off_multiplier = it->get<double>();
    else if (k == "maximum_redelivery_delay_ms") s.maximum_redelivery_delay = ms(*it);
  }
  // Given only redelivery_delay_ms, ActiveMQ's initialRedeliveryDelay keeps its own default:
  // no coupling here either (RedeliveryPolicy sets each field on its own).
  return s;
}

}  // namespace

std::string load_destination_policies(const json& v, config& cfg, std::vector<std::string>& errors,
                                      std::string_view source) {
  if (!v.is_array()) return R"(a list of {"queue": "PATTERN" or "topic": "PATTERN", "redelivery": {...}})";
  std::vector<destination_policy> entries;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    destination_policy p;
    int kinds = 0;
    for (auto it = e.begin(); it != e.end(); ++it) {
      if (it.key() == "queue" || it.key() == "topic") {
        ++kinds;
        p.topic = it.key() == "topic";
        p.pattern = it->get<std::string>();
      } else if (it.key() == "redelivery") {
        p.redelivery = read_redelivery(*it);
      } else if (it.key() == "prioritized_messages") {
        p.prioritized_messages = it->get<bool>();
      } else if (it.key() == "message_group_map_cache_size") {
        p.message_group_map_cache_size = it->get<std::uint32_t>();  // 1 to 16777216 (schema)
      }
    }
    if (kinds != 1) {
      errors.push_back(fmt::format("{}: key \"destination_policies[{}]\" needs exactly one of \"queue\" or \"topic\"",
                                   source, i));
      continue;
    }
    entries.push_back(std::move(p));
  }
  cfg.engine.destination_policies = std::move(entries);
  return {};
}

}  // namespace tandem::broker
