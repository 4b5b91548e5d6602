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
// destinationName may be a pattern ('*', '?'): every matching destination, keyed by MBean
// name, as Jolokia answers a pattern read (is_pattern below).
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

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

namespace tandem::broker::jolokia {

inline constexpr std::string_view read_prefix = "/api/jolokia/read/";

// The answer to a GET of `target` (starting with read_prefix; a query string is ignored).
// `destinations` is engine::destinations_json(); `timestamp_s` the Unix time to report.
// parse_read, then answer with the attributes: what admin_http does without the whole list.
nlohmann::json read(std::string_view target, const nlohmann::json& destinations, std::string_view broker_name,
                    std::int64_t timestamp_s);

// The parts of read(), so that admin_http need not build every destination's row (issue 17):
// a destination is looked up by name (destination_names), the broker's totals are summed a
// slice of destinations at a time (broker_totals).
struct read_request {
  std::string mbean;
  std::string attribute;    // "" for every attribute
  bool broker = false;      // the broker MBean; else one destination:
  bool topic = false;       //   destinationType=Topic (else Queue)
  std::string destination;  //   destinationName, as given
};
// The read `target` asks for, or the Jolokia error (a JSON object) to answer instead.
std::variant<read_request, nlohmann::json> parse_read(std::string_view target, std::string_view broker_name,
                                                      std::int64_t timestamp_s);
// The stored names the destination may have, in the order to try them: "/queue/N" (or
// "/topic/N"), then N itself (a name given with its prefix).
std::array<std::string, 2> destination_names(const read_request& r);
// The attributes of a destination MBean from its /api/destinations row.
nlohmann::json destination_attributes(const nlohmann::json& row, std::string_view short_name);
struct broker_totals {
  std::uint64_t messages = 0, consumers = 0, enqueued = 0, dequeued = 0, destinations = 0;
  void add(std::uint64_t pending, std::uint64_t inflight, std::uint64_t consumer_count, std::uint64_t enqueued_count,
           std::uint64_t dequeued_count);
};
nlohmann::json broker_attributes(const broker_totals& totals, std::string_view broker_name);
// The answer to `r` given the MBean's attributes; null attributes: no such destination (404).
nlohmann::json answer(const read_request& r, const nlohmann::json& attributes, std::int64_t timestamp_s);

// Pattern reads (Jolokia's, ObjectName wildcards): a destinationName with '*' (any run of
// characters) or '?' (one) reads every destination of the type whose short name (without
// "/queue/" or "/topic/") matches; the value is an object keyed by each one's MBean name
// (canonical: key properties sorted), as Jolokia answers a pattern read; no match is 404.
bool is_pattern(std::string_view destination_name);
// Whether destination `name` (as stored) of the given type is one of the pattern's.
bool pattern_matches(const read_request& r, std::string_view name, bool topic);
// The short name of a stored destination name, as its MBean names it.
std::string short_name(std::string_view name);
// "org.apache.activemq:brokerName=B,destinationName=N,destinationType=Queue,type=Broker"
std::string mbean_name(std::string_view broker_name, bool topic, std::string_view short_name);
// The answer to pattern read `r`: `matches` maps each matching MBean name to its attributes.
nlohmann::json answer_pattern(const read_request& r, const nlohmann::json& matches, std::int64_t timestamp_s);

}  // namespace tandem::broker::jolokia
