// status, destinations, purge: tandemctl's admin-port commands (commands.h).
#include "tools/ctl/commands.h"

#include <algorithm>
#include <istream>
#include <ostream>

#include <fmt/format.h>

namespace tandem::ctl {

using nlohmann::json;

namespace {

std::string json_string(const json& j, const char* key, std::string_view fallback = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string(fallback);
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::uint64_t json_u64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::string holder_text(const json& health) {
  auto it = health.find("holder");
  if (it == health.end() || !it->is_object()) return "-";
  const json& h = *it;
  return fmt::format("{} (pid {} on {}, epoch {})", json_string(h, "broker_name"), json_string(h, "pid"),
                     json_string(h, "host"), json_string(h, "epoch"));
}

// GET a JSON document; null and `error` set when unreachable or not JSON.
json get_json(const admin_url& url, std::string_view target, std::chrono::milliseconds timeout, unsigned& status,
              std::string& error) {
  auto reply = http_request(url, "GET", target, timeout, error);
  if (!reply) return nullptr;
  status = reply.value().status;
  auto j = json::parse(reply.value().body, nullptr, false);
  if (j.is_discarded()) {
    error = fmt::format("{}{}: answered {} with a body that is not JSON: is this a tandemd admin port?", url.to_string(),
                        target, status);
    return nullptr;
  }
  return j;
}

// The brokers whose /health says master.
std::vector<const broker_status*> masters(const std::vector<broker_status>& all) {
  std::vector<const broker_status*> out;
  for (const auto& b : all)
    if (b.reachable && b.health.value("role", "") == "master") out.push_back(&b);
  return out;
}

// Exactly one master among the answers, or an error line for `err`.
const broker_status* the_master(const std::vector<broker_status>& all, std::ostream& err) {
  for (const auto& b : all)
    if (!b.reachable) err << "tandemctl: " << b.error << "\n";
  auto m = masters(all);
  if (m.size() == 1) return m.front();
  if (m.empty())
    err << "tandemctl: no master among the " << all.size()
        << " broker(s) asked; `tandemctl status` shows each one's role\n";
  else
    err << "tandemctl: " << m.size() << " brokers claim to be master; refusing to act (check the store's lock)\n";
  return nullptr;
}

}  // namespace

std::string format_duration(std::uint64_t s) {
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::vector<broker_status> collect_status(const admin_options& options) {
  std::vector<broker_status> out;
  for (const auto& url : options.brokers) {
    broker_status b;
    b.url = url;
    unsigned status = 0;
    // /health answers 503 on a slave: still a valid answer.
    b.health = get_json(url, "/health", options.timeout, status, b.error);
    b.reachable = b.health.is_object();
    if (b.reachable && b.health.value("role", "") == "master") {
      std::string error;
      auto d = get_json(url, "/api/destinations", options.timeout, status, error);
      if (status == 200 && d.is_array()) b.destinations = std::move(d);
      else if (status == 401 || status == 403)
        b.destinations_error = fmt::format("{}/api/destinations answered {}: {}; set TANDEM_ADMIN_USER and TANDEM_ADMIN_PASSWORD "
                                           "to a user in group \"metrics\" or \"admin\"",
                                           url.to_string(), status, d.is_object() ? json_string(d, "error") : "");
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::string render_status(const std::vector<broker_status>& brokers) {
  std::string out = fmt::format("{:<16} {:<24} {:<10} {:>6} {:>8} {:>6}  {}\n", "BROKER", "ADMIN", "ROLE", "EPOCH",
                                "UPTIME", "CONNS", "HOLDER");
  for (const auto& b : brokers) {
    if (!b.reachable) {
      out += fmt::format("{:<16} {:<24} {:<10}  {}\n", "?", b.url.to_string(), "unreachable", b.error);
      continue;
    }
    const json& h = b.health;
    bool master = h.value("role", "") == "master";
    out += fmt::format("{:<16} {:<24} {:<10} {:>6} {:>8} {:>6}  {}\n", json_string(h, "broker_name"), b.url.to_string(),
                       json_string(h, "role"), json_string(h, "epoch"),
                       h.contains("uptime_s") ? format_duration(json_u64(h, "uptime_s")) : "-",
                       master ? json_string(h, "connections", "0") : "-", master ? "-" : holder_text(h));
  }
  for (const auto& b : brokers) {
    if (!b.destinations.is_array()) continue;
    out += fmt::format("\npending on {} (master, epoch {}):\n", json_string(b.health, "broker_name"),
                       json_string(b.health, "epoch"));
    if (b.destinations.empty()) out += "  (no destinations)\n";
    for (const auto& d : b.destinations)
      out += fmt::format("  {:<32} {:>10} pending {:>8} in flight {:>6} consumers\n", json_string(d, "name"),
                         json_u64(d, "pending"), json_u64(d, "inflight"), json_u64(d, "consumers"));
  }
  return out;
}

json status_json(const std::vector<broker_status>& brokers) {
  json list = json::array();
  for (const auto& b : brokers) {
    json j{{"admin", b.url.to_string()}, {"reachable", b.reachable}};
    if (!b.reachable) j["error"] = b.error;
    else j["health"] = b.health;
    if (b.destinations.is_array()) {
      json pending = json::object();
      for (const auto& d : b.destinations) pending[json_string(d, "name")] = json_u64(d, "pending");
      j["pending"] = std::move(pending);
    }
    list.push_back(std::move(j));
  }
  return json{{"brokers", std::move(list)}, {"masters", masters(brokers).size()}};
}

int run_status(const admin_options& options, std::ostream& out, std::ostream& err) {
  auto all = collect_status(options);
  if (options.json) out << status_json(all).dump(2) << "\n";
  else out << render_status(all);
  bool all_reachable = std::all_of(all.begin(), all.end(), [](const broker_status& b) { return b.reachable; });
  auto m = masters(all).size();
  if (!all_reachable) {
    for (const auto& b : all)
      if (!b.reachable) err << "tandemctl: " << b.error << "\n";
  }
  if (m != 1) err << "tandemctl: " << (m == 0 ? "no broker is master" : fmt::format("{} brokers claim to be master", m)) << "\n";
  return all_reachable && m == 1 ? 0 : 1;
}

int run_destinations(const admin_options& options, std::ostream& out, std::ostream& err) {
  auto all = collect_status(options);
  const broker_status* m = the_master(all, err);
  if (!m) return 1;
  if (!m->destinations.is_array()) {
    if (!m->destinations_error.empty()) err << "tandemctl: " << m->destinations_error << "\n";
    else err << "tandemctl: " << m->url.to_string() << "/api/destinations: no answer from the master\n";
    return 1;
  }
  if (options.json) {
    out << m->destinations.dump(2) << "\n";
    return 0;
  }
  out << fmt::format("{:<32} {:<6} {:>10} {:>9} {:>9} {:>12} {:>12} {:>12}\n", "DESTINATION", "TYPE", "PENDING", "INFLIGHT",
                     "CONSUMERS", "ENQUEUED", "DEQUEUED", "BYTES");
  for (const auto& d : m->destinations)
    out << fmt::format("{:<32} {:<6} {:>10} {:>9} {:>9} {:>12} {:>12} {:>12}\n", json_string(d, "name"),
                       json_string(d, "type"), json_u64(d, "pending"), json_u64(d, "inflight"), json_u64(d, "consumers"),
                       json_u64(d, "enqueued"), json_u64(d, "dequeued"), json_u64(d, "bytes"));
  return 0;
}

int run_purge(const admin_options& options, const purge_options& purge, std::istream& in, bool interactive,
              std::ostream& out, std::ostream& err) {
  auto all = collect_status(options);
  const broker_status* m = the_master(all, err);
  if (!m) return 1;
  const json* found = nullptr;
  if (m->destinations.is_array())
    for (const auto& d : m->destinations)
      if (json_string(d, "name") == purge.destination) found = &d;
  if (!found && !m->destinations_error.empty()) {
    err << "tandemctl: " << m->destinations_error << "\n";
    return 1;
  }
  if (!found) {
    err << "tandemctl: " << json_string(m->health, "broker_name") << " has no destination \"" << purge.destination
        << "\" (`tandemctl destinations` lists them)\n";
    return 1;
  }
  if (!purge.yes) {
    if (!interactive) {
      err << "tandemctl: purge asks for confirmation and stdin is not a terminal; pass --yes to purge without asking\n";
      return 1;
    }
    out << fmt::format("Purge {} pending message(s) from {} on {} (epoch {})? Messages in flight stay. [y/N] ",
                       json_u64(*found, "pending"), purge.destination, json_string(m->health, "broker_name"),
                       json_string(m->health, "epoch"))
        << std::flush;
    std::string answer;
    std::getline(in, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      out << "not purged\n";
      return 1;
    }
  }
  std::string why;
  auto reply = http_request(m->url, "POST", "/api/destinations/" + encode_path_segment(purge.destination) + "/purge",
                            options.timeout, why);
  if (!reply) {
    err << "tandemctl: " << why << "\n";
    return 1;
  }
  auto body = json::parse(reply.value().body, nullptr, false);
  if (reply.value().status != 200 || !body.is_object()) {
    err << fmt::format("tandemctl: {}: purge refused ({}): {}\n", m->url.to_string(), reply.value().status,
                       body.is_object() ? json_string(body, "error") : reply.value().body);
    return 1;
  }
  if (options.json) out << body.dump(2) << "\n";
  else out << fmt::format("purged {} message(s) from {}\n", json_u64(body, "purged"), purge.destination);
  return 0;
}

int run_scheduled(const admin_options& options, const scheduled_options& scheduled, std::ostream& out,
                  std::ostream& err) {
  if (scheduled.action == "cancel" && scheduled.job_id.empty()) {
    err << "tandemctl: scheduled cancel needs the job id (`tandemctl scheduled list` shows them)\n";
    return 2;
  }
  auto all = collect_status(options);
  const broker_status* m = the_master(all, err);
  if (!m) return 1;
  const bool list = scheduled.action == "list";
  const std::string path =
      list ? fmt::format("/api/scheduled?offset={}&limit={}", scheduled.offset, scheduled.limit)
      : scheduled.action == "cancel-all" ? std::string("/api/scheduled/cancel-all")
                                         : "/api/scheduled/" + encode_path_segment(scheduled.job_id) + "/cancel";
  std::string why;
  auto reply = http_request(m->url, list ? "GET" : "POST", path, options.timeout, why);
  if (!reply) {
    err << "tandemctl: " << why << "\n";
    return 1;
  }
  auto body = json::parse(reply.value().body, nullptr, false);
  if (reply.value().status != 200 || !body.is_object()) {
    err << fmt::format("tandemctl: {}{}: refused ({}): {}\n", m->url.to_string(), path, reply.value().status,
                       body.is_object() ? json_string(body, "error") : reply.value().body);
    return 1;
  }
  if (options.json) {
    out << body.dump(2) << "\n";
    return 0;
  }
  if (!list) {
    out << fmt::format("cancelled {} scheduled job(s)\n", json_u64(body, "cancelled"));
    return 0;
  }
  out << fmt::format("{:<44} {:<24} {:>14} {:>8} {:>8} {:>6} {:<12}\n", "JOB", "DESTINATION", "NEXT (UTC ms)", "DELAY",
                     "PERIOD", "LEFT", "CRON");
  for (const auto& i : body["items"])
    out << fmt::format("{:<44} {:<24} {:>14} {:>8} {:>8} {:>6} {:<12}\n", json_string(i, "job_id"),
                       json_string(i, "destination"), json_string(i, "next_fire_ms"), json_string(i, "delay_ms"),
                       json_string(i, "period_ms"), json_string(i, "left"), json_string(i, "cron"));
  out << fmt::format("{} of {} scheduled job entries\n", body["items"].size(), json_u64(body, "total"));
  return 0;
}

}  // namespace tandem::ctl
