// GET /api/connections, one page built in slices (issue 17, finding 2).
//
// Before, the answer was one JSON document of every session, built and printed in one go on
// the io thread: 4,000 sessions made 2.6 MB of text and held every client up for 1.4-2.6 s
// per scrape (bench/results/io_thread.md). Two ways out were weighed:
//
// - Copy a snapshot of every session on the io thread and build the JSON on a worker. The
//   broker's state has no locks (broker/README.md), so a worker may only see a copy, and the
//   copy (strings, subscriptions) is itself made in one turn of the io thread over every
//   session: it shrinks the stall, it does not bound it. It would also need a worker pool of
//   the admin's own (the login worker is there so password hashes do not wait on others).
// - Page the listing and build it in slices: what needs every session (the filter test and
//   the figure a page is sorted by) costs a few comparisons per session and no allocation
//   (engine::connection_keys), and is taken connection_key_slice sessions at a time with a
//   turn of the io thread between slices; the JSON rows, the expensive part, are built only
//   for the page (at most 1,000), connection_row_slice at a time.
//
// The second is what this file does: each turn of the io thread is bounded whatever the
// number of sessions. The price: a page is not one instant's picture. A session that opens
// while the slices are taken may be missed, one that closes before its row is built is left
// out (the page is then short by one), and `total` counts the sessions looked at. Of the
// sessions that match, only the best offset + limit are held (bounded_page.h, shared with
// /api/destinations), never every one.
#include <algorithm>

#include "broker/admin_http.h"
#include "broker/bounded_page.h"
#include "broker/console_api.h"

namespace tandem::broker {

namespace {

constexpr std::size_t default_limit = 100, max_limit = 1000;
// The figures a page may be sorted by, largest first (engine::connection_keys); "session"
// (the default) is the order the sessions opened in.
constexpr const char* sort_figures[] = {"frames_in", "messages_in", "messages_out", "backlog_bytes", "subscriptions"};

}  // namespace

asio::awaitable<admin_http::response> admin_http::connections(std::string query) {
  const response not_master{503, "application/json", R"({"error":"not master: no broker state on this process"})" "\n"};
  if (!sources_.connection_keys || !sources_.connection) co_return not_master;
  auto q = console_api::parse_query(query);
  const std::size_t limit = std::clamp<std::size_t>(console_api::number_or(q, "limit", default_limit), 1, max_limit);
  const std::size_t offset = console_api::number_or(q, "offset", 0);
  const std::string filter = console_api::lower(q.count("filter") ? q["filter"] : "");
  std::string sort = q.count("sort") ? q["sort"] : "session";
  if (std::find(std::begin(sort_figures), std::end(sort_figures), sort) == std::end(sort_figures)) sort = "session";

  // Only the best offset + limit of the matched sessions are kept (bounded_page.h); the
  // slices come in session order, which breaks ties, so the page is the one a stable sort
  // of every matched session would give.
  auto by_figure = [by_session = sort == "session"](const admin_sources::connection_key& a,
                                                      const admin_sources::connection_key& b) {
    return !by_session && a.figure > b.figure;
  };
  bounded_page<admin_sources::connection_key, decltype(by_figure)> best(offset, limit, by_figure);
  std::size_t total = 0;
  std::uint64_t after = 0;
  bool stepped_down = false;  // no longer master between two slices
  std::function<bool()> keys = [&] {
    auto slice = sources_.connection_keys(after, connection_key_slice, filter, sort);
    if (!slice) return stepped_down = true;
    total += slice->looked_at;
    for (const auto& k : slice->matched) best.add(k);
    after = slice->last;
    return slice->done;
  };
  co_await in_turns(keys);
  if (stepped_down) co_return not_master;
  const std::size_t matched = best.added();
  const auto page = best.take();

  auto items = nlohmann::json::array();
  std::size_t i = 0;
  std::function<bool()> rows = [&] {
    for (std::size_t n = 0; n < connection_row_slice && i < page.size(); ++n, ++i) {
      auto row = sources_.connection(page[i].session);
      if (!row.is_null()) items.push_back(std::move(row));
    }
    return i >= page.size();
  };
  co_await in_turns(rows);
  nlohmann::json answer{{"total", total}, {"matched", matched}, {"offset", offset},
                        {"limit", limit}, {"sort", sort},      {"items", std::move(items)}};
  co_return response{200, "application/json",
                     answer.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

}  // namespace tandem::broker
