#include "broker/jolokia.h"

#include <map>
#include <optional>

#include <fmt/format.h>

namespace tandem::broker::jolokia {

namespace {

using nlohmann::json;

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// Splits at unescaped '/' and resolves Jolokia's '!' escapes.
std::vector<std::string> path_parts(std::string_view path) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '!' && i + 1 < path.size()) {
      parts.back() += path[++i];
    } else if (path[i] == '/') {
      parts.emplace_back();
    } else {
      parts.back() += path[i];
    }
  }
  return parts;
}

json error(std::string_view mbean, int status, std::string_view type, std::string message, std::int64_t now) {
  return json{{"request", {{"type", "read"}, {"mbean", std::string(mbean)}}},
              {"status", status},
              {"error_type", std::string(type)},
              {"error", std::move(message)},
              {"timestamp", now}};
}

std::uint64_t number(const json& j, const char* key) { return j.is_object() ? j.value(key, std::uint64_t{0}) : 0; }

json destination_attributes(const json& d, std::string_view short_name) {
  const auto pending = number(d, "pending"), inflight = number(d, "inflight"), dequeued = number(d, "dequeued");
  return json{{"QueueSize", pending + inflight},
              {"EnqueueCount", number(d, "enqueued")},
              {"DequeueCount", dequeued},
              {"ConsumerCount", number(d, "consumers")},
              {"InFlightCount", inflight},
              {"ExpiredCount", number(d, "expired")},
              {"DispatchCount", dequeued + inflight},
              {"MemoryUsageByteCount", number(d, "bytes")},
              {"Name", std::string(short_name)}};
}

json broker_attributes(const json& destinations, std::string_view broker_name) {
  std::uint64_t messages = 0, consumers = 0, enqueued = 0, dequeued = 0;
  for (const auto& d : destinations) {
    messages += number(d, "pending") + number(d, "inflight");
    consumers += number(d, "consumers");
    enqueued += number(d, "enqueued");
    dequeued += number(d, "dequeued");
  }
  return json{{"BrokerName", std::string(broker_name)}, {"TotalMessageCount", messages},
              {"TotalConsumerCount", consumers},      {"TotalEnqueueCount", enqueued},
              {"TotalDequeueCount", dequeued},        {"TotalDestinationCount", destinations.size()}};
}

const json* find_destination(const json& destinations, std::string_view type, std::string_view name) {
  const std::string full = fmt::format("/{}/{}", type == "Queue" ? "queue" : "topic", name);
  const json* bare = nullptr;
  for (const auto& d : destinations) {
    if (!d.is_object() || d.value("type", "") != (type == "Queue" ? "queue" : "topic")) continue;
    const auto& n = d.value("name", "");
    if (n == full) return &d;
    if (n == name) bare = &d;
  }
  return bare;
}

}  // namespace

json read(std::string_view target, const json& destinations, std::string_view broker_name, std::int64_t now) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (!target.starts_with(read_prefix)) return error("", 400, "java.lang.IllegalArgumentException", "not a read request", now);
  auto decoded = percent_decode(target.substr(read_prefix.size()));
  if (!decoded) return error("", 400, "java.lang.IllegalArgumentException", "bad percent-encoding in the path", now);
  auto parts = path_parts(*decoded);
  const std::string mbean = parts[0];
  const std::string attribute = parts.size() > 1 ? parts[1] : "";
  if (parts.size() > 2 && !(parts.size() == 3 && parts[2].empty()))
    return error(mbean, 400, "java.lang.UnsupportedOperationException", "inner paths are not supported", now);

  // "org.apache.activemq:k=v,k=v"
  auto colon = mbean.find(':');
  if (colon == std::string::npos || mbean.substr(0, colon) != "org.apache.activemq")
    return error(mbean, 404, "javax.management.InstanceNotFoundException",
                 fmt::format("{}: only org.apache.activemq MBeans are served", mbean), now);
  std::map<std::string, std::string, std::less<>> keys;
  std::string_view rest = std::string_view(mbean).substr(colon + 1);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto pair = rest.substr(0, comma);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos)
      return error(mbean, 400, "javax.management.MalformedObjectNameException", fmt::format("key property without '=': {}", pair), now);
    keys.emplace(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  auto key = [&](std::string_view k) -> std::string {
    auto it = keys.find(k);
    return it == keys.end() ? std::string() : it->second;
  };
  const auto not_found = [&](std::string why) {
    return error(mbean, 404, "javax.management.InstanceNotFoundException", std::move(why), now);
  };
  if (key("type") != "Broker") return not_found(fmt::format("{}: only type=Broker MBeans are served", mbean));
  const auto name = key("brokerName");
  if (name != "*" && name != broker_name)
    return not_found(fmt::format("{}: this broker is brokerName={}", mbean, broker_name));

  json attributes;
  if (keys.size() == 2) {
    attributes = broker_attributes(destinations, broker_name);
  } else {
    const auto type = key("destinationType"), dest = key("destinationName");
    if ((type != "Queue" && type != "Topic") || dest.empty() || keys.size() != 4)
      return not_found(fmt::format("{}: expected destinationType=Queue|Topic and destinationName", mbean));
    const json* d = find_destination(destinations, type, dest);
    if (!d) return not_found(fmt::format("{}: no such destination", mbean));
    attributes = destination_attributes(*d, dest);
  }
  json request{{"type", "read"}, {"mbean", mbean}};
  json value = attributes;
  if (!attribute.empty()) {
    if (!attributes.contains(attribute))
      return error(mbean, 404, "javax.management.AttributeNotFoundException",
                   fmt::format("no attribute {} (served: {})", attribute, [&] {
                     std::string names;
                     for (auto it = attributes.begin(); it != attributes.end(); ++it) names += (names.empty() ? "" : ", ") + it.key();
                     return names;
                   }()),
                   now);
    request["attribute"] = attribute;
    value = attributes[attribute];
  }
  return json{{"request", std::move(request)}, {"value", std::move(value)}, {"timestamp", now}, {"status", 200}};
}

}  // namespace tandem::broker::jolokia
