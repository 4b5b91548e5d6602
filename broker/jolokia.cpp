#include "broker/jolokia.h"

#include <map>
#include <optional>

#include <fmt/format.h>

#include "broker/stomp/utf8.h"

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

// A destination's row in the whole list: the one named "/queue/N" (or /topic/), else N.
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

void broker_totals::add(std::uint64_t pending, std::uint64_t inflight, std::uint64_t consumer_count,
                        std::uint64_t enqueued_count, std::uint64_t dequeued_count) {
  messages += pending + inflight;
  consumers += consumer_count;
  enqueued += enqueued_count;
  dequeued += dequeued_count;
  ++destinations;
}

json broker_attributes(const broker_totals& t, std::string_view broker_name) {
  return json{{"BrokerName", std::string(broker_name)}, {"TotalMessageCount", t.messages},
              {"TotalConsumerCount", t.consumers},      {"TotalEnqueueCount", t.enqueued},
              {"TotalDequeueCount", t.dequeued},        {"TotalDestinationCount", t.destinations}};
}

std::array<std::string, 2> destination_names(const read_request& r) {
  return {fmt::format("/{}/{}", r.topic ? "topic" : "queue", r.destination), r.destination};
}

std::variant<read_request, json> parse_read(std::string_view target, std::string_view broker_name, std::int64_t now) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (!target.starts_with(read_prefix)) return error("", 400, "java.lang.IllegalArgumentException", "not a read request", now);
  auto decoded = percent_decode(target.substr(read_prefix.size()));
  if (!decoded) return error("", 400, "java.lang.IllegalArgumentException", "bad percent-encoding in the path", now);
  auto parts = path_parts(*decoded);
  read_request r;
  r.mbean = parts[0];
  r.attribute = parts.size() > 1 ? parts[1] : "";
  const std::string& mbean = r.mbean;
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
  if (keys.size() == 2) {
    r.broker = true;
    return r;
  }
  const auto type = key("destinationType"), dest = key("destinationName");
  if ((type != "Queue" && type != "Topic") || dest.empty() || keys.size() != 4)
    return not_found(fmt::format("{}: expected destinationType=Queue|Topic and destinationName", mbean));
  r.topic = type == "Topic";
  r.destination = dest;
  return r;
}

json answer(const read_request& r, const json& attributes, std::int64_t now) {
  const std::string& mbean = r.mbean;
  if (attributes.is_null())
    return error(mbean, 404, "javax.management.InstanceNotFoundException", fmt::format("{}: no such destination", mbean), now);
  json request{{"type", "read"}, {"mbean", mbean}};
  json value = attributes;
  const std::string& attribute = r.attribute;
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

bool is_pattern(std::string_view destination_name) { return destination_name.find_first_of("*?") != std::string_view::npos; }

std::string short_name(std::string_view name) {
  for (std::string_view prefix : {"/queue/", "/topic/"})
    if (name.starts_with(prefix)) return std::string(name.substr(prefix.size()));
  return std::string(name);
}

namespace {

// ObjectName wildcards: '*' any run of characters, '?' one character (a byte: names here
// are matched as stored, and a multi-byte character takes as many '?').
bool wildcard_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

bool pattern_matches(const read_request& r, std::string_view name, bool topic) {
  if (topic != r.topic) return false;
  std::string printable = stomp::valid_utf8(name) ? std::string(name) : stomp::printable_utf8(name);
  return wildcard_match(r.destination, short_name(printable));
}

std::string mbean_name(std::string_view broker_name, bool topic, std::string_view short_name) {
  return fmt::format("org.apache.activemq:brokerName={},destinationName={},destinationType={},type=Broker", broker_name,
                     short_name, topic ? "Topic" : "Queue");
}

json answer_pattern(const read_request& r, const json& matches, std::int64_t now) {
  if (matches.empty())
    return error(r.mbean, 404, "javax.management.InstanceNotFoundException",
                 fmt::format("{}: no destination matches the pattern", r.mbean), now);
  json value = json::object();
  for (auto it = matches.begin(); it != matches.end(); ++it) {
    json one = answer(r, it.value(), now);  // the attribute, or every one; or its error
    if (one.value("status", 0) != 200) return one;
    value[it.key()] = r.attribute.empty() ? one["value"] : json{{r.attribute, one["value"]}};
  }
  json request{{"type", "read"}, {"mbean", r.mbean}};
  if (!r.attribute.empty()) request["attribute"] = r.attribute;
  return json{{"request", std::move(request)}, {"value", std::move(value)}, {"timestamp", now}, {"status", 200}};
}

json read(std::string_view target, const json& destinations, std::string_view broker_name, std::int64_t now) {
  auto parsed = parse_read(target, broker_name, now);
  if (auto* failed = std::get_if<json>(&parsed)) return std::move(*failed);
  const auto& r = std::get<read_request>(parsed);
  if (r.broker) {
    broker_totals totals;
    for (const auto& d : destinations)
      totals.add(number(d, "pending"), number(d, "inflight"), number(d, "consumers"), number(d, "enqueued"),
                 number(d, "dequeued"));
    return answer(r, broker_attributes(totals, broker_name), now);
  }
  if (is_pattern(r.destination)) {
    json matches = json::object();
    for (const auto& d : destinations) {
      if (!d.is_object()) continue;
      const std::string name = d.value("name", "");
      if (pattern_matches(r, name, d.value("type", "") == "topic"))
        matches[mbean_name(broker_name, r.topic, short_name(name))] = destination_attributes(d, short_name(name));
    }
    return answer_pattern(r, matches, now);
  }
  const json* d = find_destination(destinations, r.topic ? "Topic" : "Queue", r.destination);
  return answer(r, d ? destination_attributes(*d, r.destination) : json(), now);
}

}  // namespace tandem::broker::jolokia
