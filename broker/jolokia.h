// A Jolokia-compatible read endpoint on the admin port (issue 18), so tools written for
// ActiveMQ's /api/jolokia read Tandem unchanged; KEDA's ActiveMQ scaler is the model client:
//
//   GET /api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*,destinationType=Queue,
//       destinationName=orders/QueueSize
//   -> {"request": {"type": "read", "mbean": "...", "attribute": "QueueSize"},
//       "value": 42, "timestamp": 1765000000, "status": 200}
//
// What is served (read only; no exec, write, search or list):
//   destination MBeans  type=Broker,brokerName=B,destinationType=Queue|Topic,destinationName=N
//     N is the name without "/queue/" or "/topic/" (ActiveMQ's physical name). Attributes:
//     QueueSize (pending + in flight, ActiveMQ's meaning), EnqueueCount, DequeueCount,
//     ConsumerCount, InFlightCount, ExpiredCount, DispatchCount (= DequeueCount + in flight),
//     MemoryUsageByteCount (bytes of the pending bodies), Name. No attribute: all of them.
//   broker MBean        type=Broker,brokerName=B: BrokerName, TotalMessageCount,
//     TotalConsumerCount, TotalEnqueueCount, TotalDequeueCount, TotalDestinationCount.
//   brokerName is this broker's broker_name or "*". Key properties may come in any order.
//
// One difference from Jolokia, on purpose: with brokerName=* Jolokia answers a pattern read
// with an object keyed by every matching MBean name; a Tandem process is one broker, so the
// answer is that broker's plain value, which is what KEDA's scaler reads ("value" must be a
// number) when it is given the URL shape above. Errors follow Jolokia: HTTP 200 with
// "status" 400 or 404, "error_type" and "error" in the body.
//
// Path escapes as in Jolokia: "!/" is "/", "!!" is "!", "!\"" is '"'; percent-encoding is
// decoded first. Pure: tests/unit/broker/jolokia_test.cpp calls it with a destinations array.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tandem::broker::jolokia {

inline constexpr std::string_view read_prefix = "/api/jolokia/read/";

// The answer to a GET of `target` (starting with read_prefix; a query string is ignored).
// `destinations` is engine::destinations_json(); `timestamp_s` the Unix time to report.
nlohmann::json read(std::string_view target, const nlohmann::json& destinations, std::string_view broker_name,
                    std::int64_t timestamp_s);

}  // namespace tandem::broker::jolokia
