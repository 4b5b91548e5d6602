// The loader of config key "destination_policies" (engine_config::destination_policies,
// broker/engine/policy.h). config.cpp's loader table calls it after the schema
// (config_schema.json) has checked types, ranges and unknown keys; it converts, and checks
// what the schema cannot say (exactly one of "queue" or "topic").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/config.h"

namespace tandem::broker {

// Returns "" or the expected form; per-entry problems go to `errors` (naming the key and
// `source`, the file).
std::string load_destination_policies(const nlohmann::json& v, config& cfg, std::vector<std::string>& errors,
                                      std::string_view source);

}  // namespace tandem::broker
