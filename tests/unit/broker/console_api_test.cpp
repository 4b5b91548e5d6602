// broker/console_api: the web console's paging over destinations and its embedded files
// (issue 18: usable with 10,000 destinations; no CDN).
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "broker/console_api.h"
#include "broker/destination_listing.h"

#include <algorithm>
#include <random>
#include <set>

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

TEST_CASE("issue 17: a page kept in a bounded heap is the page of the whole list sorted") {
  // destination_page sees the destinations one at a time and keeps offset + limit of them;
  // page_destinations sorts the whole list. Same items, same order, for every sort.
  std::mt19937 rng(17);
  json all = json::array();
  std::set<std::string> names;
  for (int i = 0; i < 3000; ++i) {
    std::string name = fmt::format("/{}/{}{}", i % 5 ? "queue" : "topic", "abcXYZ"[rng() % 6], rng() % 400);
    if (!names.insert(name).second) continue;
    all.push_back({{"name", name}, {"type", i % 5 ? "queue" : "topic"}, {"pending", rng() % 4}, {"consumers", rng() % 3},
                   {"enqueued", rng() % 50}, {"dequeued", rng() % 9}, {"inflight", rng() % 2}});
  }
  for (const char* query : {"limit=100", "limit=10&offset=1000", "limit=1000&sort=pending", "limit=37&offset=211&sort=consumers",
                            "limit=50&filter=x&sort=enqueued", "limit=3&offset=5000", "limit=20&sort=inflight&filter=TOPIC",
                            "limit=999&offset=1&sort=dequeued"}) {
    CAPTURE(query);
    auto q = tandem::broker::parse_destination_query(query);
    REQUIRE(q);
    tandem::broker::destination_page page(*q);
    for (const auto& d : all) {
      if (!tandem::broker::destination_name_holds(d["name"].get<std::string>(), q->filter)) continue;
      tandem::broker::destination_figures f;
      f.name = d["name"];
      f.topic = d["type"] == "topic";
      f.pending = d["pending"];
      f.consumers = d["consumers"];
      f.enqueued = d["enqueued"];
      f.dequeued = d["dequeued"];
      f.inflight = d["inflight"];
      page.add(std::move(f));
    }
    auto reference = console::page_destinations(all, query);
    CHECK(page.matched() == reference["matched"]);
    auto items = page.take();
    REQUIRE(items.size() == reference["items"].size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      CHECK(items[i].name == reference["items"][i]["name"]);
      CHECK(items[i].topic == (reference["items"][i]["type"] == "topic"));
    }
  }
  CHECK_FALSE(tandem::broker::parse_destination_query("offset=3"));
  CHECK(tandem::broker::destination_name_holds("/queue/\xff" "Ab", "ab"));  // a name journaled before issue 17
  CHECK(tandem::broker::destination_name_holds("/queue/\xff" "Ab", "\\xff"));  // as the row shows it
}

TEST_CASE("issue 17: bounded_page never holds more than offset + limit and gives a stable sort's page") {
  // The helper behind the pages of /api/destinations and /api/connections.
  std::mt19937 rng(17);
  std::vector<std::pair<int, int>> all;  // (figure, id)
  for (int i = 0; i < 20000; ++i) all.emplace_back(static_cast<int>(rng() % 50), i);
  auto larger = [](const std::pair<int, int>& a, const std::pair<int, int>& b) { return a.first > b.first; };
  auto never = [](const std::pair<int, int>&, const std::pair<int, int>&) { return false; };
  for (auto [offset, limit] : {std::pair<std::size_t, std::size_t>{0, 1}, {0, 100}, {150, 50}, {19990, 100}, {30000, 10}}) {
    CAPTURE(offset);
    CAPTURE(limit);
    tandem::broker::bounded_page<std::pair<int, int>, decltype(larger)> page(offset, limit, larger);
    tandem::broker::bounded_page<std::pair<int, int>, decltype(never)> fed_order(offset, limit, never);
    std::size_t most = 0;
    for (const auto& x : all) {
      page.add(x);
      fed_order.add(x);
      most = std::max({most, page.kept(), fed_order.kept()});
    }
    CHECK(most <= offset + limit);
    CHECK(page.added() == all.size());
    auto sorted = all;
    std::stable_sort(sorted.begin(), sorted.end(), larger);
    const auto from = std::min(offset, sorted.size()), to = std::min(offset + limit, sorted.size());
    CHECK(page.take() == std::vector<std::pair<int, int>>(sorted.begin() + from, sorted.begin() + to));
    CHECK(fed_order.take() == std::vector<std::pair<int, int>>(all.begin() + from, all.begin() + to));
  }
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
