// broker/admin_guard: the admin port's Host, Origin, simple-request and credential checks.
// Regression (issue 17, finding 1): a cross-site text/plain POST purged a queue, and a
// DNS-rebinding page could read /api/connections.
#include <doctest/doctest.h>

#include "broker/admin_guard.h"

using namespace tandem::broker;
namespace guard = tandem::broker::admin_guard;

TEST_CASE("Host must name the admin port") {
  auto names = guard::own_names("10.1.2.3", 8161, {"broker-a.mgmt.example", "alias.example:9000"});
  CHECK(guard::host_allowed("10.1.2.3:8161", names));
  CHECK(guard::host_allowed("localhost:8161", names));
  CHECK(guard::host_allowed("LOCALHOST:8161", names));
  CHECK(guard::host_allowed("127.0.0.1:8161", names));
  CHECK(guard::host_allowed("[::1]:8161", names));
  CHECK(guard::host_allowed("broker-a.mgmt.example:8161", names));
  CHECK(guard::host_allowed("broker-a.mgmt.example", names));
  CHECK(guard::host_allowed("alias.example:9000", names));
  CHECK_FALSE(guard::host_allowed("evil.example:8161", names));  // DNS rebinding
  CHECK_FALSE(guard::host_allowed("evil.example", names));
  CHECK_FALSE(guard::host_allowed("localhost:9999", names));
  CHECK_FALSE(guard::host_allowed("", names));
  auto v6 = guard::own_names("fd00::5", 8161, {});
  CHECK(guard::host_allowed("[fd00::5]:8161", v6));
}

TEST_CASE("Origin must be the admin port itself") {
  auto names = guard::own_names("127.0.0.1", 8161, {});
  CHECK(guard::origin_allowed("http://127.0.0.1:8161", names));
  CHECK(guard::origin_allowed("https://localhost:8161", names));
  CHECK_FALSE(guard::origin_allowed("http://evil.example", names));
  CHECK_FALSE(guard::origin_allowed("http://127.0.0.1:8162", names));
  CHECK_FALSE(guard::origin_allowed("null", names));
  CHECK_FALSE(guard::origin_allowed("file://", names));
  CHECK_FALSE(guard::origin_allowed("http://127.0.0.1:8161/path", names));
}

TEST_CASE("a POST a browser can send without preflight is simple") {
  CHECK(guard::is_simple_request("", false));
  CHECK(guard::is_simple_request("text/plain", false));
  CHECK(guard::is_simple_request("application/x-www-form-urlencoded", false));
  CHECK(guard::is_simple_request("multipart/form-data; boundary=x", false));
  CHECK_FALSE(guard::is_simple_request("application/json", false));
  CHECK_FALSE(guard::is_simple_request("Application/JSON; charset=utf-8", false));
  CHECK_FALSE(guard::is_simple_request("text/plain", true));
}

TEST_CASE("what each request needs") {
  CHECK(guard::required_access("GET", "/health", false) == guard::access::open);
  CHECK(guard::required_access("GET", "/health?x=1", false) == guard::access::open);
  CHECK(guard::required_access("GET", "/metrics", false) == guard::access::read);
  CHECK(guard::required_access("HEAD", "/api/connections", false) == guard::access::read);
  CHECK(guard::required_access("GET", "/metrics", true) == guard::access::open);
  CHECK(guard::required_access("POST", "/api/destinations/x/purge", true) == guard::access::admin);
  CHECK(guard::required_access("DELETE", "/health", true) == guard::access::admin);
  // Message bodies need the admin group even when reads are open (issue 18, browse).
  CHECK(guard::required_access("GET", "/api/destinations/%2Fqueue%2Fa/browse", true) == guard::access::admin);
  CHECK(guard::required_access("GET", "/api/destinations/%2Fqueue%2Fa/browse?after=3&limit=5", true) == guard::access::admin);
  CHECK(guard::required_access("GET", "/api/destinations?filter=browse", true) == guard::access::open);
  CHECK(guard::grants({"admin"}, guard::access::admin));
  CHECK(guard::grants({"admin"}, guard::access::read));
  CHECK(guard::grants({"metrics"}, guard::access::read));
  CHECK_FALSE(guard::grants({"metrics"}, guard::access::admin));
  CHECK_FALSE(guard::grants({}, guard::access::read));
}

TEST_CASE("HTTP Basic credentials") {
  auto c = guard::basic_credentials("Basic b3BzOm9wczpzZWNyZXQ=");  // ops:ops:secret
  REQUIRE(c);
  CHECK(c->first == "ops");
  CHECK(c->second == "ops:secret");
  c = guard::basic_credentials("basic YTpi");  // a:b
  REQUIRE(c);
  CHECK(c->first == "a");
  CHECK(c->second == "b");
  c = guard::basic_credentials("Basic YTo=");  // "a:" (empty password)
  REQUIRE(c);
  CHECK(c->second.empty());
  CHECK_FALSE(guard::basic_credentials(""));
  CHECK_FALSE(guard::basic_credentials("Bearer abc"));
  CHECK_FALSE(guard::basic_credentials("Basic !!!!"));
  CHECK_FALSE(guard::basic_credentials("Basic YWJj"));  // "abc": no colon
}
