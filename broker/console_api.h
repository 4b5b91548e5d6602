// What the web console (broker/console/, issue 18) asks of the admin port beyond the plain
// JSON views, as pure functions (tests/unit/broker/console_api_test.cpp):
//
//   GET /api/destinations?offset=0&limit=50&filter=orders&sort=pending
//     With `limit` the answer is one page: {"total", "matched", "offset", "limit", "items"}
//     (items as in the plain list), filtered by a case-insensitive substring of the name and
//     sorted by name, or by a figure (pending, consumers, enqueued, dequeued, dead_lettered,
//     inflight) largest first; limit 1..1000. Without `limit` the plain array, as before. A
//     page of 50 out of 10,000 destinations is what keeps the console usable there. The
//     broker builds either in slices (admin_destinations.cpp, destination_listing.h);
//     page_destinations below is the same page cut from the whole list in one go, for
//     answers without the sliced sources and as the tests' reference.
//   GET /console, /console/<file>   the console's static files, compiled into tandemd
//     (broker/console/*, embedded by broker/CMakeLists.txt), under the same access rules as
//     /api/* (Basic credentials of "admin" or "metrics" unless admin_open_reads).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tandem::broker::console_api {

// "a=1&b=x%20y" -> {a: "1", b: "x y"} (a bad escape keeps the raw text).
std::map<std::string, std::string> parse_query(std::string_view query);
// The number under `key` of a parsed query, or `fallback` when it is missing or not a number.
std::size_t number_or(const std::map<std::string, std::string>& query, const char* key, std::size_t fallback);
// ASCII lower case: the listings' `filter` matches without regard to case.
std::string lower(std::string_view s);

// One page of `all` (engine::destinations_json()) as described above; `query` is the part
// after '?'. Null when the query asks for no page (no limit), so the caller returns `all`.
nlohmann::json page_destinations(const nlohmann::json& all, std::string_view query);

struct asset {
  std::string_view content_type;
  std::string_view body;
};
// The embedded file for a /console target, or nullptr. "/console" and "/console/" are the
// page itself.
const asset* find_asset(std::string_view target);

}  // namespace tandem::broker::console_api
