// broker/admin_http: routing and status codes of the admin port (no sockets: handle() only).
#include <doctest/doctest.h>

#include "broker/admin_http.h"

using namespace tandem;
using namespace tandem::broker;

namespace {

admin_sources sources_for(std::string role, bool with_engine) {
  admin_sources s;
  s.health = [role] { return nlohmann::json{{"role", role}, {"epoch", 7}}; };
  s.metrics = [] { return std::string("tandem_role{role=\"master\"} 1\n"); };
  if (with_engine) {
    s.destinations = [] { return nlohmann::json::array({{{"name", "/queue/a"}}}); };
    s.connections = [] { return nlohmann::json::array(); };
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
  CHECK(master.handle("GET", "/api/connections").status == 200);

  admin_http slave(io.get_executor(), sources_for("slave", false));
  CHECK(slave.handle("GET", "/api/destinations").status == 503);
  CHECK(slave.handle("GET", "/api/connections").status == 503);
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
  s.scheduled = [&](std::size_t offset, std::size_t limit) {
    got_offset = offset;
    got_limit = limit;
    return nlohmann::json{{"total", 0}, {"items", nlohmann::json::array()}};
  };
  admin_http a(io.get_executor(), std::move(s));
  CHECK(a.handle("GET", "/api/scheduled").status == 200);
  CHECK(got_offset == 0);
  CHECK(got_limit == 100);
  CHECK(a.handle("GET", "/api/scheduled?offset=20&limit=5").status == 200);
  CHECK(got_offset == 20);
  CHECK(got_limit == 5);
  CHECK(a.handle("GET", "/api/scheduled?limit=0").status == 400);
  CHECK(a.handle("GET", "/api/scheduled?limit=1001").status == 400);
  CHECK(a.handle("GET", "/api/scheduled?page=2").status == 400);
  CHECK(a.handle("GET", "/api/scheduled?offset=x").status == 400);

  admin_http slave(io.get_executor(), sources_for("slave", false));
  CHECK(slave.handle("GET", "/api/scheduled").status == 503);

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
