// The drill's picture (issue 18): failover time per fault kind as a plain SVG, written next
// to the --json record (drill.svg beside drill.json). Every episode is a dot on a log time
// axis, in one row per fault kind; a solid tick marks the kind's p50, a dashed one its p99.
// bench/plot_svg.py draws the same picture from an older record.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tandem::drill {

// The SVG document for `record` (drill_result::record: its "failovers" array with "kind" and
// "ms"), or "" when it holds no timed failover.
std::string failover_svg(const nlohmann::json& record, std::string_view title);

}  // namespace tandem::drill
