// broker/ws_policy: the checks of a STOMP-over-WebSocket upgrade request (issue 18).
#include <doctest/doctest.h>

#include "broker/ws_policy.h"

namespace policy = tandem::broker::ws_policy;

TEST_CASE("the newest STOMP subprotocol the client offers is chosen") {
  CHECK(policy::choose_subprotocol("v10.stomp, v11.stomp, v12.stomp") == "v12.stomp");
  CHECK(policy::choose_subprotocol("v12.stomp,v11.stomp,v10.stomp") == "v12.stomp");
  CHECK(policy::choose_subprotocol("v11.stomp") == "v11.stomp");
  CHECK(policy::choose_subprotocol("mqtt, v10.stomp") == "v10.stomp");
  CHECK(policy::choose_subprotocol("mqtt") == "");
  CHECK(policy::choose_subprotocol("") == "");
  CHECK(policy::choose_subprotocol("v12.stompx") == "");  // a whole token, not a prefix
}

TEST_CASE("an Origin is accepted only when listed, case and trailing slash aside") {
  std::vector<std::string> allowed{"https://app.example", "http://localhost:8080/"};
  CHECK(policy::origin_allowed("https://app.example", allowed));
  CHECK(policy::origin_allowed("HTTPS://APP.EXAMPLE", allowed));
  CHECK(policy::origin_allowed("http://localhost:8080", allowed));
  CHECK_FALSE(policy::origin_allowed("http://app.example", allowed));        // another scheme
  CHECK_FALSE(policy::origin_allowed("https://app.example:8443", allowed));  // another port
  CHECK_FALSE(policy::origin_allowed("https://evil.example", allowed));
  CHECK_FALSE(policy::origin_allowed("null", allowed));
  CHECK_FALSE(policy::origin_allowed("https://app.example", {}));
  CHECK(policy::origin_allowed("https://evil.example", {"*"}));
  CHECK(policy::origin_allowed("null", {"*"}));
  CHECK_FALSE(policy::origin_allowed("null", {"null"}));  // a sandboxed page is nobody in particular
}

TEST_CASE("decide: a browser page from an unlisted origin is refused with 403") {
  auto d = policy::decide("v12.stomp", "https://evil.example", {"https://app.example"});
  CHECK_FALSE(d.accept);
  CHECK(d.status == 403);
  CHECK(d.reason.find("https://evil.example") != std::string::npos);
  CHECK(d.reason.find("ws_allowed_origins") != std::string::npos);
}

TEST_CASE("decide: a client without Origin is not a browser and gets through") {
  auto d = policy::decide("v11.stomp, v10.stomp", "", {});
  CHECK(d.accept);
  CHECK(d.subprotocol == "v11.stomp");
}

TEST_CASE("decide: no subprotocol offered is accepted without one") {
  auto d = policy::decide("", "https://app.example", {"https://app.example"});
  CHECK(d.accept);
  CHECK(d.subprotocol.empty());
}

TEST_CASE("decide: only foreign subprotocols are refused with 400") {
  auto d = policy::decide("mqtt", "", {});
  CHECK_FALSE(d.accept);
  CHECK(d.status == 400);
  CHECK(d.reason.find("mqtt") != std::string::npos);
}
