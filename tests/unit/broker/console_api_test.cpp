// broker/console_api: the web console's paging over destinations and its embedded files
// (issue 18: usable with 10,000 destinations; no CDN).
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "broker/console_api.h"

using nlohmann::json;
namespace console = tandem::broker::console_api;

namespace {

json many(int n) {
  json all = json::array();
  for (int i = 0; i < n; ++i)
    all.push_back({{"name", fmt::format("/queue/q{:05d}", i)}, {"type", "queue"}, {"pending", i % 7}, {"consumers", 0}});
  return all;
}

}  // namespace

TEST_CASE("the query string is split and decoded") {
  auto q = console::parse_query("offset=10&filter=a%2Fb+c&empty=&flag");
  CHECK(q["offset"] == "10");
  CHECK(q["filter"] == "a/b c");
  CHECK(q["empty"] == "");
  CHECK(q.count("flag") == 1);
}

TEST_CASE("without limit there is no page: the caller keeps the plain list") {
  CHECK(console::page_destinations(many(3), "").is_null());
  CHECK(console::page_destinations(many(3), "filter=x").is_null());
}

TEST_CASE("one page of 10,000 destinations, by name") {
  auto page = console::page_destinations(many(10000), "offset=9990&limit=50");
  CHECK(page["total"] == 10000);
  CHECK(page["matched"] == 10000);
  REQUIRE(page["items"].size() == 10);
  CHECK(page["items"][0]["name"] == "/queue/q09990");
}

TEST_CASE("filter is a case-insensitive substring; sort by a figure puts the largest first") {
  auto page = console::page_destinations(many(100), "limit=5&filter=Q0000&sort=pending");
  CHECK(page["matched"] == 10);  // q00000..q00009
  CHECK(page["items"][0]["pending"] == 6);
  CHECK(page["sort"] == "pending");
  CHECK(console::page_destinations(many(10), "limit=5&sort=bogus")["sort"] == "name");
  CHECK(console::page_destinations(many(10), "limit=0")["limit"] == 1);
  CHECK(console::page_destinations(many(10), "limit=5000")["limit"] == 1000);
}

TEST_CASE("the console's files are compiled in, the page at /console") {
  const auto* page = console::find_asset("/console");
  REQUIRE(page != nullptr);
  CHECK(page->content_type.starts_with("text/html"));
  CHECK(page->body.find("/console/console.js") != std::string_view::npos);
  REQUIRE(console::find_asset("/console/console.js") != nullptr);
  CHECK(console::find_asset("/console/console.js")->body.find("/api/group") != std::string_view::npos);
  CHECK(console::find_asset("/console/console.css") != nullptr);
  CHECK(console::find_asset("/console/../etc/passwd") == nullptr);
}
