// tandem-bench output: a human table and a JSON document.
//
// JSON (all times in milliseconds, rates per second; a section is null when it did not run):
//   { "tool": "tandem-bench", "config": {...the options...},
//     "send":     { "messages", "bytes", "seconds", "msgs_per_s", "mib_per_s",
//                   "receipts", "receipts_lost" },
//     "delivery": { "messages", "bytes", "seconds", "msgs_per_s", "mib_per_s",
//                   "redelivered", "expected", "missing" },
//     "receipt_latency_ms" / "delivery_latency_ms":
//                 { "count", "min", "mean", "p50", "p90", "p99", "p99_9", "max" },
//     "reconnects": [ { "at_s", "downtime_ms", "first_accept_ms" (null: none), "broker", "cause",
//                       "receipts_lost", "lost_ns", "connected_ns", "first_accept_ns" (null) } ],
//                 (*_ns: CLOCK_MONOTONIC nanoseconds, see reconnect_record)
//     "error_frames", "errors": [ "..." ], "failed": bool,
//     "client": { "cpu_user_s", "cpu_system_s", "wall_s" } }
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tools/bench/load_generator.h"

namespace tandem::bench {

nlohmann::json to_json(const bench_options& options, const bench_result& result);
std::string to_table(const bench_options& options, const bench_result& result);

}  // namespace tandem::bench
