// GET /api/destinations and the Jolokia reads, built in slices (issue 17; the design and its
// price are in destination_listing.h, the same as /api/connections' in admin_connections.cpp).
//
// With 50,000 queues, a page of 100 built every row first and held every client for 1.4-2.7 s,
// and a Jolokia read of one queue's QueueSize for 0.3-0.5 s (bench/results/io_thread.md).
// Now no turn of the io thread looks at more than destination_key_slice destinations' figures
// or builds more than destination_row_slice rows, whatever the number of destinations.
//
// Without `limit` the answer is still every destination in one JSON array, as tandemctl,
// scripts and the tests read it (ActiveMQ's own views list every destination too): the rows
// are built and printed a slice per turn and sent as pieces, text for text what one dump of
// engine::destinations_json() gives. Its size grows with the destinations (about 0.5 KB
// each), its stall does not; a client that wants less asks for a page.
#include <chrono>
#include <variant>

#include "broker/admin_http.h"
#include "broker/jolokia.h"

namespace tandem::broker {

namespace {

constexpr const char* json_type = "application/json";

admin_http::response not_master() {
  return {503, json_type, R"({"error":"not master: no broker state on this process"})" "\n"};
}

std::string json_body(const nlohmann::json& j) { return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"; }

// `row` printed as an element of a pretty-printed array: nlohmann's dump(2) of the array
// indents each element's lines by two more spaces (JSON text has no raw newline inside a
// string, so every '\n' starts a line).
void append_element(std::string& out, const nlohmann::json& row) {
  const std::string text = row.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  out.reserve(out.size() + text.size() + text.size() / 8);
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
}

}  // namespace

asio::awaitable<admin_http::response> admin_http::destinations(std::string query) {
  if (!sources_.destination_figures || !sources_.destination)
    co_return handle("GET", query.empty() ? std::string("/api/destinations") : "/api/destinations?" + query);
  const auto paged = parse_destination_query(query);
  destination_cursor at;
  bool stepped_down = false;  // no longer master between two slices

  if (!paged) {
    std::vector<std::string> pieces{"["};
    bool first = true;
    std::function<bool()> slice = [&] {
      auto s = sources_.destination_figures(at, destination_row_slice, "");
      if (!s) return stepped_down = true;
      std::string text;
      for (const auto& d : s->matched) {
        auto row = sources_.destination(d.name, d.topic);
        if (row.is_null()) continue;
        text += first ? "\n  " : ",\n  ";
        first = false;
        append_element(text, row);
      }
      if (!text.empty()) pieces.push_back(std::move(text));
      return at.done;
    };
    co_await in_turns(slice);
    if (stepped_down) co_return not_master();
    pieces.push_back(first ? "]\n" : "\n]\n");
    response r{200, json_type, {}};
    r.pieces = std::move(pieces);
    co_return r;
  }

  destination_page page(*paged);
  std::size_t total = 0;
  std::function<bool()> keys = [&] {
    auto s = sources_.destination_figures(at, destination_key_slice, paged->filter);
    if (!s) return stepped_down = true;
    total += s->looked_at;
    for (auto& d : s->matched) page.add(std::move(d));
    return at.done;
  };
  co_await in_turns(keys);
  if (stepped_down) co_return not_master();
  const std::size_t matched = page.matched();
  const auto entries = page.take();
  auto items = nlohmann::json::array();
  std::size_t i = 0;
  std::function<bool()> rows = [&] {
    for (std::size_t n = 0; n < destination_row_slice && i < entries.size(); ++n, ++i) {
      auto row = sources_.destination(entries[i].name, entries[i].topic);
      if (!row.is_null()) items.push_back(std::move(row));  // removed meanwhile: left out
    }
    return i >= entries.size();
  };
  co_await in_turns(rows);
  nlohmann::json out{{"total", total},         {"matched", matched},  {"offset", paged->offset},
                     {"limit", paged->limit},  {"sort", paged->sort}, {"items", std::move(items)}};
  co_return response{200, json_type, json_body(out)};
}

asio::awaitable<admin_http::response> admin_http::jolokia(std::string target) {
  if (!sources_.destination_figures || !sources_.destination) co_return handle("GET", target);
  destination_cursor at;
  if (!sources_.destination_figures(at, 0, "")) co_return not_master();  // looks at nothing: is there an engine?
  nlohmann::json health = sources_.health ? sources_.health() : nlohmann::json::object();
  const std::string broker_name = health.value("broker_name", "");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto parsed = jolokia::parse_read(target, broker_name, now);
  if (const auto* failed = std::get_if<nlohmann::json>(&parsed)) co_return response{200, json_type, json_body(*failed)};
  const auto& request = std::get<jolokia::read_request>(parsed);

  nlohmann::json attributes;
  if (request.broker) {
    jolokia::broker_totals totals;
    bool stepped_down = false;
    std::function<bool()> slice = [&] {
      auto s = sources_.destination_figures(at, destination_key_slice, "");
      if (!s) return stepped_down = true;
      for (const auto& d : s->matched) totals.add(d.pending, d.inflight, d.consumers, d.enqueued, d.dequeued);
      return at.done;
    };
    co_await in_turns(slice);
    if (stepped_down) co_return not_master();
    attributes = jolokia::broker_attributes(totals, broker_name);
  } else if (jolokia::is_pattern(request.destination)) {
    // Every destination's name is looked at (a slice per turn), the matching ones' rows are
    // built destination_row_slice per turn: like the whole list, only fewer.
    std::vector<destination_figures> found;
    bool stepped_down = false;
    std::function<bool()> slice = [&] {
      auto s = sources_.destination_figures(at, destination_key_slice, "");
      if (!s) return stepped_down = true;
      for (auto& d : s->matched)
        if (jolokia::pattern_matches(request, d.name, d.topic)) found.push_back(std::move(d));
      return at.done;
    };
    co_await in_turns(slice);
    if (stepped_down) co_return not_master();
    nlohmann::json matches = nlohmann::json::object();
    std::size_t i = 0;
    std::function<bool()> rows = [&] {
      for (std::size_t n = 0; n < destination_row_slice && i < found.size(); ++n, ++i) {
        auto row = sources_.destination(found[i].name, found[i].topic);
        if (row.is_null()) continue;  // removed meanwhile
        const auto name = jolokia::short_name(row.value("name", ""));
        matches[jolokia::mbean_name(broker_name, request.topic, name)] = jolokia::destination_attributes(row, name);
      }
      return i >= found.size();
    };
    co_await in_turns(rows);
    co_return response{200, json_type, json_body(jolokia::answer_pattern(request, matches, now))};
  } else {
    for (const auto& name : jolokia::destination_names(request)) {
      auto row = sources_.destination(name, request.topic);
      if (row.is_null()) continue;
      attributes = jolokia::destination_attributes(row, request.destination);
      break;
    }
  }
  co_return response{200, json_type, json_body(jolokia::answer(request, attributes, now))};
}

}  // namespace tandem::broker
