// broker/admin_http: routing and status codes of the admin port (no sockets: handle() only).
#include <algorithm>
#include <map>
#include <random>

#include <doctest/doctest.h>

#include "broker/admin_http.h"
#include "broker/console_api.h"
#include "admin_request.h"

using namespace tandem;
using namespace tandem::broker;

namespace {

admin_sources sources_for(std::string role, bool with_engine) {
  admin_sources s;
  s.health = [role] { return nlohmann::json{{"role", role}, {"epoch", 7}}; };
  s.metrics = [] { return std::string("tandem_role{role=\"master\"} 1\n"); };
  if (with_engine) {
    s.destinations = [] { return nlohmann::json::array({{{"name", "/queue/a"}}}); };
    s.connection_keys = [](std::uint64_t, std::size_t, const std::string&, const std::string&) {
      return std::optional<admin_sources::connection_slice>(admin_sources::connection_slice{{}, 0, 0, true});
    };
    s.connection = [](std::uint64_t) { return nlohmann::json(); };
  } else {
    s.destinations = [] { return nlohmann::json(); };
  }
  return s;
}

}  // namespace

TEST_CASE("health is 200 for a master and 503 for a slave, with the role in the body") {
  asio::io_context io;
  admin_http master(io.get_executor(), sources_for("master", true));
  auto r = master.handle("GET", "/health");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["role"] == "master");
  CHECK(r.content_type == "application/json");

  admin_http slave(io.get_executor(), sources_for("slave", false));
  r = slave.handle("GET", "/health");
  CHECK(r.status == 503);
  CHECK(nlohmann::json::parse(r.body)["role"] == "slave");
}

TEST_CASE("metrics are Prometheus text") {
  asio::io_context io;
  admin_http a(io.get_executor(), sources_for("master", true));
  auto r = a.handle("GET", "/metrics");
  CHECK(r.status == 200);
  CHECK(r.content_type.find("text/plain; version=0.0.4") == 0);
  CHECK(r.body.find("tandem_role{role=\"master\"} 1") != std::string::npos);
}

TEST_CASE("engine snapshots are served by a master and refused by a slave") {
  asio::io_context io;
  admin_http master(io.get_executor(), sources_for("master", true));
  auto r = master.handle("GET", "/api/destinations?pretty=1");
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)[0]["name"] == "/queue/a");

  admin_http slave(io.get_executor(), sources_for("slave", false));
  CHECK(slave.handle("GET", "/api/destinations").status == 503);
}

TEST_CASE("unknown paths are 404 and other methods 405") {
  asio::io_context io;
  admin_http a(io.get_executor(), sources_for("master", true));
  CHECK(a.handle("GET", "/nope").status == 404);
  CHECK(a.handle("POST", "/health").status == 405);
  CHECK(a.handle("HEAD", "/health").status == 200);
}

TEST_CASE("a name that is not UTF-8 is answered, not a closed connection") {
  // Regression (issue 17, finding 5): nlohmann::json threw on dump and the request died.
  asio::io_context io;
  admin_sources s = sources_for("master", true);
  s.destinations = [] { return nlohmann::json::array({{{"name", std::string("/queue/\xff\xfe")}}}); };
  admin_http a(io.get_executor(), s, admin_access{true, {}});
  auto r = a.handle("GET", "/api/destinations");
  CHECK(r.status == 200);
  auto j = nlohmann::json::parse(r.body);  // valid UTF-8 JSON
  CHECK(j[0]["name"].get<std::string>().starts_with("/queue/"));
}


TEST_CASE("issue 16: scheduled messages are paged by query and cancelled by a percent-encoded job id") {
  asio::io_context io;
  auto s = sources_for("master", true);
  std::size_t got_offset = 0, got_limit = 0;
  admin_sources::purge_reply later;  // issue 17: the page may come after the entries are read
  s.scheduled = [&](std::size_t offset, std::size_t limit, admin_sources::purge_reply reply) {
    got_offset = offset;
    got_limit = limit;
    if (offset == 7) {
      later = std::move(reply);
      return;
    }
    reply(200, {{"total", 0}, {"items", nlohmann::json::array()}});
  };
  admin_http a(io.get_executor(), std::move(s));
  CHECK(test::run_admin_request(io, a.scheduled("")).status == 200);
  CHECK(got_offset == 0);
  CHECK(got_limit == 100);
  CHECK(test::run_admin_request(io, a.scheduled("offset=20&limit=5")).status == 200);
  CHECK(got_offset == 20);
  CHECK(got_limit == 5);
  CHECK(test::run_admin_request(io, a.scheduled("limit=0")).status == 400);
  CHECK(test::run_admin_request(io, a.scheduled("limit=1001")).status == 400);
  CHECK(test::run_admin_request(io, a.scheduled("page=2")).status == 400);
  CHECK(test::run_admin_request(io, a.scheduled("offset=x")).status == 400);
  CHECK(a.handle("GET", "/api/scheduled").status == 500);  // answered by the session, not handle()

  admin_http::response r;
  bool answered = false;
  asio::co_spawn(io, a.scheduled("offset=7"), [&](std::exception_ptr, admin_http::response got) {
    r = std::move(got);
    answered = true;
  });
  io.restart();
  io.poll();
  CHECK(!answered);  // waiting for the entries' reads
  REQUIRE(later);
  later(200, {{"total", 9}, {"items", nlohmann::json::array()}});
  io.restart();
  io.run();
  REQUIRE(answered);
  CHECK(r.status == 200);
  CHECK(nlohmann::json::parse(r.body)["total"] == 9);

  admin_http slave(io.get_executor(), sources_for("slave", false));
  CHECK(test::run_admin_request(io, slave.scheduled("")).status == 503);

  std::string job;
  CHECK(admin_http::cancel_target("/api/scheduled/ID%3Ab-1-7/cancel", job));
  CHECK(job == "ID:b-1-7");
  CHECK(admin_http::cancel_target("/api/scheduled/cancel-all", job));
  CHECK(job.empty());
  CHECK(!admin_http::cancel_target("/api/scheduled//cancel", job));
  CHECK(!admin_http::cancel_target("/api/scheduled/a/b/cancel", job));
  CHECK(!admin_http::cancel_target("/api/scheduled/%zz/cancel", job));
  // A purge target is not a cancel target and the other way round.
  CHECK(!admin_http::cancel_target("/api/destinations/%2Fqueue%2Fa/purge", job));
  CHECK(!admin_http::purge_target("/api/scheduled/x/cancel", job));
}

TEST_CASE("browse and purge targets name a percent-encoded destination") {
  std::string d;
  CHECK(admin_http::browse_target("/api/destinations/%2Fqueue%2Forders/browse", d));
  CHECK(d == "/queue/orders");
  CHECK(admin_http::browse_target("/api/destinations/%2Fqueue%2Fa%20b/browse?after=12&limit=5", d));
  CHECK(d == "/queue/a b");
  CHECK_FALSE(admin_http::browse_target("/api/destinations/%2Fqueue%2Fa/purge", d));
  CHECK_FALSE(admin_http::browse_target("/api/destinations//browse", d));
  CHECK_FALSE(admin_http::browse_target("/api/destinations/%2Fqueue/x/browse", d));  // raw slash
  CHECK_FALSE(admin_http::browse_target("/api/destinations/%zz/browse", d));
  CHECK(admin_http::purge_target("/api/destinations/%2Fqueue%2Fa/purge", d));
  CHECK(d == "/queue/a");
  CHECK_FALSE(admin_http::purge_target("/api/destinations/%2Fqueue%2Fa/browse", d));
}

namespace {

// A broker's sessions as the engine hands them to the admin port (engine::connection_keys):
// ids 1..n, figure frames_in = id % 7, client ids "c<id>".
struct fake_sessions {
  std::map<std::uint64_t, std::uint64_t> frames_in;
  std::vector<std::uint64_t> slices_after;  // `after` of each connection_keys call
  std::size_t ran_between = 0;              // handlers that ran between two slices
  std::size_t posted = 0;

  admin_sources sources(asio::io_context& io) {
    admin_sources s;
    s.connection_keys = [this, &io](std::uint64_t after, std::size_t max, const std::string& filter,
                                    const std::string& sort) {
      // Something else for the io thread to do: it must run before the next slice.
      CHECK(ran_between == posted);
      ++posted;
      asio::post(io, [this] { ++ran_between; });
      slices_after.push_back(after);
      admin_sources::connection_slice out;
      auto it = frames_in.upper_bound(after);
      for (; it != frames_in.end() && out.looked_at < max; ++it, ++out.looked_at) {
        out.last = it->first;
        if (filter.empty() || ("c" + std::to_string(it->first)).find(filter) != std::string::npos)
          out.matched.push_back({it->first, sort == "frames_in" ? it->second : 0});
      }
      out.done = it == frames_in.end();
      return std::optional<admin_sources::connection_slice>(out);
    };
    s.connection = [this](std::uint64_t id) {
      return frames_in.count(id) ? nlohmann::json{{"session", id}, {"frames_in", frames_in[id]}} : nlohmann::json();
    };
    return s;
  }
};

std::vector<std::uint64_t> ids_of(const nlohmann::json& page) {
  std::vector<std::uint64_t> out;
  for (const auto& c : page["items"]) out.push_back(c["session"]);
  return out;
}

}  // namespace

TEST_CASE("issue 17: /api/connections is one page, built in slices with the io thread's other work between them") {
  asio::io_context io;
  fake_sessions fake;
  for (std::uint64_t id = 1; id <= 1300; ++id) fake.frames_in[id] = id % 7;
  admin_http a(io.get_executor(), fake.sources(io));

  auto r = test::run_admin_request(io, a.connections(""));
  REQUIRE(r.status == 200);
  auto page = nlohmann::json::parse(r.body);
  CHECK(page["total"] == 1300);
  CHECK(page["matched"] == 1300);
  CHECK(page["offset"] == 0);
  CHECK(page["limit"] == 100);
  CHECK(page["sort"] == "session");
  auto ids = ids_of(page);
  REQUIRE(ids.size() == 100);
  CHECK(ids.front() == 1);
  CHECK(ids.back() == 100);
  // 1,300 sessions in slices of connection_key_slice, each after the last one looked at.
  static_assert(admin_http::connection_key_slice == 512);
  CHECK(fake.slices_after == std::vector<std::uint64_t>{0, 512, 1024});

  page = nlohmann::json::parse(test::run_admin_request(io, a.connections("offset=1290&limit=50")).body);
  CHECK(ids_of(page) == std::vector<std::uint64_t>{1291, 1292, 1293, 1294, 1295, 1296, 1297, 1298, 1299, 1300});

  // Largest figure first; among equal figures, session order.
  page = nlohmann::json::parse(test::run_admin_request(io, a.connections("sort=frames_in&limit=3")).body);
  CHECK(ids_of(page) == std::vector<std::uint64_t>{6, 13, 20});
  CHECK(page["sort"] == "frames_in");
  // An unknown sort is session order, as /api/destinations falls back to its name order.
  CHECK(nlohmann::json::parse(test::run_admin_request(io, a.connections("sort=rss&limit=1")).body)["sort"] == "session");

  page = nlohmann::json::parse(test::run_admin_request(io, a.connections("filter=C12&limit=1000")).body);  // case ignored
  // c12, c120..c129, c1200..c1299: the filter reached the source in lower case.
  CHECK(page["matched"] == 1 + 10 + 100);
  CHECK(page["total"] == 1300);
  CHECK(nlohmann::json::parse(test::run_admin_request(io, a.connections("limit=5000")).body)["limit"] == 1000);
  CHECK(nlohmann::json::parse(test::run_admin_request(io, a.connections("limit=0")).body)["limit"] == 1);

  // A session that closes between its key and its row is left out of the page.
  auto s = fake.sources(io);
  auto keys = s.connection_keys;
  s.connection_keys = [&fake, keys](std::uint64_t after, std::size_t max, const std::string& f, const std::string& o) {
    auto slice = keys(after, max, f, o);
    fake.frames_in.erase(2);
    return slice;
  };
  admin_http closing(io.get_executor(), std::move(s));
  page = nlohmann::json::parse(test::run_admin_request(io, closing.connections("limit=3")).body);
  CHECK(ids_of(page) == std::vector<std::uint64_t>{1, 3});
}

TEST_CASE("issue 17: /api/connections keeps only the page: the same answer as sorting every matched session") {
  // The answer as it was built before bounded_page: every matched key kept, stably sorted
  // by the figure (or left in session order), then offset/limit cut, then the rows.
  asio::io_context io;
  fake_sessions fake;
  std::mt19937 rng(17);
  for (std::uint64_t id = 1; id <= 2500; ++id) fake.frames_in[id] = rng() % 9;
  admin_http a(io.get_executor(), fake.sources(io));
  for (const char* query : {"", "limit=1000", "offset=2400&limit=1000", "sort=frames_in&limit=37&offset=211",
                            "sort=frames_in&limit=1000&offset=1999", "filter=c1&sort=frames_in&limit=50&offset=3",
                            "offset=5000&limit=10", "filter=c24&limit=5", "sort=frames_in"}) {
    CAPTURE(query);
    auto q = console_api::parse_query(query);
    const std::size_t limit = std::clamp<std::size_t>(console_api::number_or(q, "limit", 100), 1, 1000);
    const std::size_t offset = console_api::number_or(q, "offset", 0);
    const std::string filter = q.count("filter") ? q["filter"] : "";
    const bool by_figure = q.count("sort") > 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> matched;  // (session, figure)
    for (const auto& [id, frames] : fake.frames_in)
      if (("c" + std::to_string(id)).find(filter) != std::string::npos) matched.emplace_back(id, by_figure ? frames : 0);
    std::stable_sort(matched.begin(), matched.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
    auto items = nlohmann::json::array();
    for (std::size_t i = offset; i < matched.size() && i < offset + limit; ++i)
      items.push_back({{"session", matched[i].first}, {"frames_in", fake.frames_in[matched[i].first]}});
    nlohmann::json reference{{"total", 2500},   {"matched", matched.size()},
                             {"offset", offset}, {"limit", limit},
                             {"sort", by_figure ? "frames_in" : "session"}, {"items", items}};
    auto r = test::run_admin_request(io, a.connections(query));
    REQUIRE(r.status == 200);
    CHECK(r.body == reference.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
}

TEST_CASE("issue 17: /api/connections is 503 on a slave and when the broker steps down mid-listing") {
  asio::io_context io;
  admin_http slave(io.get_executor(), sources_for("slave", false));
  CHECK(test::run_admin_request(io, slave.connections("")).status == 503);

  fake_sessions fake;
  for (std::uint64_t id = 1; id <= 600; ++id) fake.frames_in[id] = 0;
  auto s = fake.sources(io);
  auto keys = s.connection_keys;
  s.connection_keys = [keys](std::uint64_t after, std::size_t max, const std::string& f, const std::string& o) {
    return after == 0 ? keys(after, max, f, o) : std::nullopt;  // no longer master
  };
  admin_http a(io.get_executor(), std::move(s));
  CHECK(test::run_admin_request(io, a.connections("")).status == 503);
}

TEST_CASE("issue 17: /metrics is rendered in slices with the io thread's other work between them, and sent as pieces") {
  asio::io_context io;
  admin_sources s = sources_for("master", true);
  int slices = 0;
  std::vector<int> ran_after_slice;
  s.metrics_slice = [&](prometheus::sliced_families&, std::size_t max) {
    CHECK(max == admin_http::metrics_destination_slice);
    if (++slices == 1) asio::post(io, [&] { ran_after_slice.push_back(slices); });  // a client's work
    return slices == 3;
  };
  s.metrics_sliced = [](prometheus::sliced_families&) { return std::vector<std::string>{"a 1\n", "b 2\n"}; };
  admin_http a(io.get_executor(), std::move(s));
  auto r = test::run_admin_request(io, a.metrics());
  CHECK(r.status == 200);
  CHECK(r.content_type.starts_with("text/plain; version=0.0.4"));
  CHECK(slices == 3);
  CHECK(ran_after_slice == std::vector<int>{1});  // before the second slice, not after the third
  CHECK(r.pieces == std::vector<std::string>{"a 1\n", "b 2\n"});

  // Without the sliced sources (a test double, a tool), the text of handle().
  admin_http whole(io.get_executor(), sources_for("master", true));
  r = test::run_admin_request(io, whole.metrics());
  CHECK(r.body == "tandem_role{role=\"master\"} 1\n");
}

TEST_CASE("issue 17: /api/destinations and Jolokia walk in slices with the clients' work between, 503 on a step-down") {
  asio::io_context io;
  admin_sources s = sources_for("master", true);
  std::vector<std::size_t> maxima;
  std::vector<int> ran_after_slice;
  int calls = 0;
  bool master = true;
  // 2,500 queues "/queue/q<i>", pending i % 3.
  s.destination_figures = [&](destination_cursor& at, std::size_t max, const std::string&) -> std::optional<destination_slice> {
    if (!master) return std::nullopt;
    maxima.push_back(max);
    if (++calls == 1) asio::post(io, [&] { ran_after_slice.push_back(calls); });  // a client's work
    destination_slice out;
    std::size_t next = at.after.empty() ? 0 : std::stoul(at.after.substr(8)) + 1;
    for (; next < 2500 && out.looked_at < max; ++next, ++out.looked_at) {
      destination_figures f;
      f.name = "/queue/q" + std::to_string(next);
      f.pending = next % 3;
      at.after = f.name;
      out.matched.push_back(f);
    }
    at.done = next == 2500;
    return out;
  };
  s.destination = [&](const std::string& name, bool) { return nlohmann::json{{"name", name}, {"type", "queue"}}; };
  admin_http a(io.get_executor(), s);

  auto page = nlohmann::json::parse(test::run_admin_request(io, a.destinations("limit=2&sort=pending")).body);
  CHECK(page["items"] == nlohmann::json::array({{{"name", "/queue/q2"}, {"type", "queue"}}, {{"name", "/queue/q5"}, {"type", "queue"}}}));
  CHECK(page["total"] == 2500);
  CHECK(maxima == std::vector<std::size_t>(3, admin_http::destination_key_slice));
  CHECK(ran_after_slice == std::vector<int>{1});  // before the second slice

  maxima.clear();
  auto all = test::run_admin_request(io, a.destinations(""));
  CHECK(all.status == 200);
  CHECK(maxima.size() == 2500 / admin_http::destination_row_slice + 1);
  std::string text;
  for (const auto& piece : all.pieces) text += piece;
  CHECK(nlohmann::json::parse(text).size() == 2500);

  // The broker steps down between two slices: 503, not a partial answer.
  int wrapped = 0;
  s.destination_figures = [&, inner = s.destination_figures](destination_cursor& at, std::size_t max, const std::string& f) {
    if (++wrapped == 2) master = false;
    return inner(at, max, f);
  };
  admin_http stepping(io.get_executor(), s);
  CHECK(test::run_admin_request(io, stepping.destinations("limit=5")).status == 503);
  master = true;
  wrapped = 0;
  CHECK(test::run_admin_request(io, stepping.destinations("")).status == 503);
  master = true;
  wrapped = 0;  // the first call only asks whether there is an engine
  CHECK(test::run_admin_request(io, stepping.jolokia("/api/jolokia/read/org.apache.activemq:type=Broker,brokerName=*")).status == 503);

  // No destinations: an empty array, as before.
  master = true;
  s.destination_figures = [](destination_cursor& at, std::size_t, const std::string&) {
    at.done = true;
    return std::optional<destination_slice>(destination_slice{});
  };
  admin_http empty(io.get_executor(), s);
  auto none = test::run_admin_request(io, empty.destinations(""));
  std::string none_text;
  for (const auto& piece : none.pieces) none_text += piece;
  CHECK(none_text == "[]\n");
}
