// broker/engine: sessions, CONNECT negotiation, authentication, receipts and errors.
#include "engine_fixture.h"

#include <set>

#include "broker/engine/auth.h"
#include "broker/errc.h"

using namespace tandem::broker;
using namespace tandem::broker::test;

TEST_CASE("a password hash verifies only the password it was made from") {
  auto h = hash_password("s3cret", 1000);
  CHECK(h.starts_with("pbkdf2-sha256:1000:"));  // issue 17: a slow KDF (credentials_test.cpp)
  CHECK(verify_password(h, "s3cret"));
  CHECK_FALSE(verify_password(h, "s3creT"));
  CHECK_FALSE(verify_password(h, ""));
  CHECK(hash_password("s3cret", 1000) != h);  // salted
  // The legacy form, still verified. A golden value: SHA-256("salt" "pw") = sha256 of "saltpw".
  CHECK(hash_password_with_salt("pw", "salt") ==
        "sha256:73616c74:" "21baed949b716c49cbf7d8fe79412f1dc104745650a32081ae0be0b967aeb7f3");
  CHECK_FALSE(verify_password("sha256:zz:00", "pw"));
  CHECK_FALSE(verify_password("md5:00:00", "pw"));
}

TEST_CASE("a frame before CONNECT gets an ERROR and the connection closes") {
  fixture fx;
  client c(fx);
  c.frame("SEND", {{"destination", "/queue/a"}, {"receipt", "x"}}, "hi");
  REQUIRE(c.last_error());
  CHECK(c.last_error()->get("message") == "not connected");
  CHECK(c.last_error()->get("receipt-id") == "x");
  CHECK(c.sink.closed);
  // Later frames are ignored.
  auto n = c.sink.frames.size();
  c.frame("CONNECT", {{"accept-version", "1.2"}});
  CHECK(c.sink.frames.size() == n);
}

TEST_CASE("CONNECT negotiates the highest common version, heart-beats and names the server") {
  fixture fx;
  client c(fx);
  c.frame("CONNECT", {{"accept-version", "1.0,1.1,1.2"}, {"host", "x"}, {"heart-beat", "1000,8000"}});
  REQUIRE(c.sink.frames.size() == 1);
  const auto& f = c.sink.frames[0];
  CHECK(f.command == "CONNECTED");
  CHECK(f.get("version") == "1.2");
  CHECK(f.get("server").value_or("").starts_with("Tandem/"));
  CHECK(f.get("session").has_value());
  // Issue 15: CONNECTED carries the negotiated periods: the client's wishes raised to the
  // broker's floors (5000 send, 6000 expect in the fixture).
  CHECK(f.get("heart-beat") == "8000,6000");
  CHECK(c.sink.version == "1.2");
  // We send every max(5000, their 8000); we expect every max(their 1000, our 6000).
  CHECK(c.sink.hb_send == std::chrono::milliseconds(8000));
  CHECK(c.sink.hb_expect == std::chrono::milliseconds(6000));

  client old(fx);
  old.frame("STOMP", {{"accept-version", "1.1"}});
  CHECK(old.sink.frames.at(0).get("version") == "1.1");
  client ancient(fx);
  ancient.frame("CONNECT", {});
  CHECK(ancient.sink.frames.at(0).get("version") == "1.0");
  CHECK(ancient.sink.version == "1.0");
  CHECK(ancient.sink.hb_send == std::chrono::milliseconds(0));
  // Issue 15: a 1.0 CONNECTED says heart-beat:0,0, as ActiveMQ and RabbitMQ send it.
  CHECK(ancient.sink.frames.at(0).get("heart-beat") == "0,0");
}

TEST_CASE("issue 15: heart-beats are the client's, raised to the floor; 0 stays off") {
  auto cfg = fixture::default_config();
  cfg.heartbeat_send = std::chrono::milliseconds(100);
  cfg.heartbeat_expect = std::chrono::milliseconds(100);
  fixture fx(cfg);
  client c(fx);
  c.frame("CONNECT", {{"accept-version", "1.2"}, {"heart-beat", "1000,2000"}});
  CHECK(c.sink.frames.at(0).get("heart-beat") == "2000,1000");
  CHECK(c.sink.hb_send == std::chrono::milliseconds(2000));
  CHECK(c.sink.hb_expect == std::chrono::milliseconds(1000));
  client fast(fx);
  fast.frame("CONNECT", {{"accept-version", "1.2"}, {"heart-beat", "10,0"}});
  CHECK(fast.sink.frames.at(0).get("heart-beat") == "0,100");
  CHECK(fast.sink.hb_expect == std::chrono::milliseconds(100));
}

TEST_CASE("issue 15: without users, any login and passcode are accepted (no security)") {
  fixture fx;  // allow_anonymous, no users: what tandemd runs with no config file
  client c(fx);
  c.frame("CONNECT", {{"accept-version", "1.2"}, {"login", "guest"}, {"passcode", "guest"}});
  CHECK(c.sink.frames.at(0).command == "CONNECTED");
  client anon(fx);
  anon.frame("CONNECT", {{"accept-version", "1.2"}});
  CHECK(anon.sink.frames.at(0).command == "CONNECTED");
}

TEST_CASE("an unsupported accept-version gets an ERROR listing the versions we speak") {
  fixture fx;
  client c(fx);
  c.frame("CONNECT", {{"accept-version", "2.0"}});
  REQUIRE(c.last_error());
  CHECK(c.last_error()->get("version") == "1.0,1.1,1.2");
  CHECK(c.sink.closed);
}

TEST_CASE("login with the right passcode connects, a wrong one or an anonymous one is refused") {
  auto cfg = fixture::default_config();
  cfg.allow_anonymous = false;
  cfg.users.push_back({"alice", hash_password("wonderland", 1000), {}});
  fixture fx(cfg);
  client good(fx);
  good.connect({{"login", "alice"}, {"passcode", "wonderland"}});

  client bad(fx);
  bad.frame("CONNECT", {{"accept-version", "1.2"}, {"login", "alice"}, {"passcode", "nope"}});
  REQUIRE(bad.last_error());
  CHECK(bad.last_error()->get("message") == "authentication failed");
  CHECK(bad.sink.closed);

  client unknown(fx);
  unknown.frame("CONNECT", {{"accept-version", "1.2"}, {"login", "bob"}, {"passcode", "wonderland"}});
  CHECK(unknown.sink.closed);

  client anonymous(fx);
  anonymous.frame("CONNECT", {{"accept-version", "1.2"}});
  REQUIRE(anonymous.last_error());
  CHECK(anonymous.sink.closed);
}

TEST_CASE("bad frames get an ERROR carrying the receipt-id, then the connection closes") {
  fixture fx;
  struct bad {
    std::string command;
    headers hs;
    std::string message;
  };
  std::vector<bad> cases = {
      {"SEND", {{"receipt", "r"}}, "missing destination"},
      {"SEND", {{"destination", "/exchange/x"}, {"receipt", "r"}}, "unsupported destination"},
      {"SEND", {{"destination", "/queue/"}, {"receipt", "r"}}, "unsupported destination"},
      {"SEND", {{"destination", "/queue/a"}, {"transaction", "t9"}, {"receipt", "r"}}, "unknown transaction"},
      {"SEND", {{"destination", "/queue/a"}, {"expires", "soon"}, {"receipt", "r"}}, "bad expires header"},
      {"SEND", {{"destination", "/queue/a"}, {"tandem-producer-id", "p"}, {"receipt", "r"}}, "bad producer headers"},
      {"SUBSCRIBE", {{"destination", "/queue/a"}, {"receipt", "r"}}, "missing id"},
      {"SUBSCRIBE", {{"id", "1"}, {"destination", "/queue/a"}, {"ack", "sometimes"}, {"receipt", "r"}}, "bad ack mode"},
      {"SUBSCRIBE", {{"id", "1"}, {"destination", "/queue/a"}, {"activemq.prefetchSize", "x"}, {"receipt", "r"}},
       "bad activemq.prefetchSize"},
      {"SUBSCRIBE", {{"id", "1"}, {"destination", "/topic/t"}, {"activemq.subscriptionName", "d"}, {"receipt", "r"}},
       "durable subscription needs client-id"},
      {"UNSUBSCRIBE", {{"id", "nope"}, {"receipt", "r"}}, "unknown subscription"},
      {"ACK", {{"id", "42"}, {"receipt", "r"}}, "unknown ACK"},
      {"NACK", {{"id", "42"}, {"receipt", "r"}}, "unknown NACK"},
      {"COMMIT", {{"transaction", "t1"}, {"receipt", "r"}}, "unknown transaction"},
      {"ABORT", {{"transaction", "t1"}, {"receipt", "r"}}, "unknown transaction"},
      {"BEGIN", {{"receipt", "r"}}, "missing transaction"},
      {"CONNECT", {{"accept-version", "1.2"}, {"receipt", "r"}}, "already connected"},
  };
  for (const auto& b : cases) {
    CAPTURE(b.command);
    CAPTURE(b.message);
    client c(fx, connected);
    c.frame(b.command, b.hs);
    REQUIRE(c.last_error());
    CHECK(c.last_error()->get("message") == b.message);
    CHECK(c.last_error()->get("receipt-id") == "r");
    CHECK_FALSE(c.last_error()->body.empty());
    CHECK(c.sink.closed);
  }
  // A duplicate subscription id.
  client c(fx, connected);
  c.subscribe("s", "/queue/a");
  c.frame("SUBSCRIBE", {{"id", "s"}, {"destination", "/queue/b"}});
  REQUIRE(c.last_error());
  CHECK(c.last_error()->get("message") == "duplicate subscription id");
}

TEST_CASE("receipts come in frame order and DISCONNECT's receipt comes last, then the close") {
  fixture fx;
  client c(fx, connected);
  // The persistent SEND's receipt waits for the journal; the SUBSCRIBE after it is applied
  // at once but its receipt must not overtake.
  c.frame("SEND", {{"destination", "/queue/a"}, {"persistent", "true"}, {"receipt", "1"}}, "x");
  c.frame("SUBSCRIBE", {{"id", "s"}, {"destination", "/queue/b"}, {"receipt", "2"}});
  c.frame("DISCONNECT", {{"receipt", "3"}});
  CHECK(c.of("RECEIPT").empty());
  CHECK_FALSE(c.sink.closed);
  REQUIRE(fx.pump([&] { return c.sink.closed; }));
  auto receipts = c.of("RECEIPT");
  REQUIRE(receipts.size() == 3);
  CHECK(receipts[0].get("receipt-id") == "1");
  CHECK(receipts[1].get("receipt-id") == "2");
  CHECK(receipts[2].get("receipt-id") == "3");
}

TEST_CASE("a broker without a store refuses persistent messages but serves others") {
  fixture fx(fixture::default_config(), false);
  client c(fx, connected);
  c.subscribe("s", "/queue/a");
  c.send("/queue/a", "plain");
  CHECK(c.bodies() == strings({"plain"}));
  c.frame("SEND", {{"destination", "/queue/a"}, {"persistent", "true"}});
  REQUIRE(c.last_error());
  CHECK(c.last_error()->get("message") == "persistence unavailable");
}

TEST_CASE("shutdown refuses new SENDs with an ERROR and stops dispatch") {
  fixture fx;
  client c(fx, connected);
  fx.eng->shutdown();
  c.frame("SEND", {{"destination", "/queue/a"}, {"receipt", "r"}}, "late");
  REQUIRE(c.last_error());
  CHECK(c.last_error()->get("message") == "broker shutting down");
}

TEST_CASE("a second connection with the same client-id is refused") {
  fixture fx;
  client a(fx);
  a.connect({{"client-id", "app"}});
  client b(fx);
  b.frame("CONNECT", {{"accept-version", "1.2"}, {"client-id", "app"}});
  REQUIRE(b.last_error());
  CHECK(b.last_error()->get("message") == "client-id already connected");
  a.close();
  client c(fx);
  c.connect({{"client-id", "app"}});
}

TEST_CASE("a client-id is free again as soon as DISCONNECT's receipt is sent") {
  // Regression: the RECEIPT reached the client before the socket closed, so a client that
  // reconnected at once with its client-id was refused as "already connected".
  fixture fx;
  client a(fx);
  a.connect({{"client-id", "app"}});
  a.frame("DISCONNECT", {{"receipt", "bye"}});
  REQUIRE(a.wait_receipt("bye"));
  client b(fx);  // `a` has not called close_session yet
  b.connect({{"client-id", "app"}});
  CHECK_FALSE(b.last_error());
}

TEST_CASE("admin snapshots list destinations, connections and metrics") {
  auto cfg = fixture::default_config();
  cfg.users.push_back({"alice", hash_password("wonderland")});
  fixture fx(cfg);
  client c(fx);
  c.frame("CONNECT", {{"accept-version", "1.2"}, {"login", "guest"}, {"passcode", "x"}});
  // Anonymous allowed, users configured, a login given: it is checked, and guest is unknown.
  CHECK(c.sink.frames.back().command == "ERROR");
  c.close();
  client p(fx);
  p.connect({{"client-id", "admin-test"}});
  p.send("/queue/orders", "a", {{"persistent", "true"}});
  p.send("/queue/orders", "b");
  p.subscribe("t", "/topic/news");
  p.send("/topic/news", "n");
  REQUIRE(p.wait_messages(1));

  REQUIRE(fx.eng->destinations_json().is_array());
  auto q = fx.destination("/queue/orders");
  REQUIRE(!q.is_null());
  CHECK(q["type"] == "queue");
  CHECK(q["pending"] == 2);
  CHECK(q["enqueued"] == 2);
  // "persistent:true" (14) + "a", and "b"; each with the broker's "timestamp" (9) and the
  // fixture's 13-digit clock.
  CHECK(q["bytes"] == 16 + 2 * (9 + 13));
  CHECK(q["limits"]["max_bytes"] == fx.config.max_destination_bytes);
  auto t = fx.destination("/topic/news");
  REQUIRE(!t.is_null());
  CHECK(t["consumers"] == 1);
  CHECK(t["enqueued"] == 1);

  auto conns = fx.eng->connections_json();
  REQUIRE(conns.size() == 1);
  CHECK(conns[0]["client_id"] == "admin-test");
  CHECK(conns[0]["subscriptions"].size() == 1);
  // Issue 17: the paged listing's parts (admin_connections.cpp): a filter on the client id
  // (ASCII case ignored), the figure a page is sorted by, slices of at most `max` sessions.
  auto keys = fx.eng->connection_keys(0, 10, "ADMIN-T", "subscriptions");
  REQUIRE(keys.matched.size() == 1);
  CHECK(keys.matched[0].second == 1);
  CHECK(keys.looked_at == 1);
  CHECK(keys.done);
  CHECK(fx.eng->connection_json(keys.matched[0].first) == conns[0]);
  CHECK(fx.eng->connection_json(keys.matched[0].first + 1000).is_null());
  auto none = fx.eng->connection_keys(0, 10, "nobody", "");
  CHECK((none.matched.empty() && none.looked_at == 1 && none.done));
  auto empty_slice = fx.eng->connection_keys(0, 0, "", "");
  CHECK((empty_slice.looked_at == 0 && !empty_slice.done));
  CHECK(fx.eng->connection_keys(keys.last, 10, "", "").done);

  std::string metrics;
  fx.eng->append_metrics(metrics);
  CHECK(metrics.find("tandem_messages_in_total{destination=\"/queue/orders\"} 2") != std::string::npos);
  CHECK(metrics.find("tandem_messages_pending{destination=\"/queue/orders\"} 2") != std::string::npos);
  CHECK(metrics.find("tandem_connections 1") != std::string::npos);
  CHECK(metrics.find("# TYPE tandem_messages_out_total counter") != std::string::npos);
}

TEST_CASE("a receipt id that STOMP 1.1 cannot write back gets an ERROR instead of the RECEIPT") {
  fixture fx;
  client c(fx);
  c.connect({{"accept-version", "1.1"}});
  c.frame("SUBSCRIBE", {{"id", "s"}, {"destination", "/queue/a"}, {"receipt", "ab\r"}});  // a value ending in CR
  REQUIRE(c.last_error());
  CHECK(c.last_error()->get("message") == "receipt id cannot be encoded");
  CHECK(c.of("RECEIPT").empty());
  CHECK(c.sink.closed);
}

TEST_CASE("every broker error code has its own ERROR message text") {
  std::set<std::string> seen;
  for (int v = static_cast<int>(errc::unknown_command); v <= static_cast<int>(errc::commit_not_stored); ++v) {
    auto text = make_error_code(static_cast<errc>(v)).message();
    CAPTURE(v);
    CHECK_FALSE(text.starts_with("broker error"));
    CHECK(seen.insert(text).second);
  }
  CHECK(std::error_code(errc::unknown_ack).category().name() == std::string("broker"));
}

TEST_CASE("issue 15: a STOMP 1.0 SUBSCRIBE without id is named by its destination, UNSUBSCRIBE finds it") {
  // Regression: resolving temporary destinations moved the destination out before the 1.0
  // subscription took its name from it, so MESSAGE said subscription:'' and UNSUBSCRIBE
  // by destination failed (found by RabbitMQ's STOMP suite, unsubscribe.py).
  fixture fx;
  client c(fx);
  c.connect({{"accept-version", "1.0"}});
  c.frame("SUBSCRIBE", {{"destination", "/queue/u1"}});
  c.frame("SEND", {{"destination", "/queue/u1"}}, "m");
  REQUIRE(c.wait_messages(1));
  CHECK(c.messages()[0].get("subscription") == "/queue/u1");
  c.frame("UNSUBSCRIBE", {{"destination", "/queue/u1"}, {"receipt", "u"}});
  REQUIRE(c.wait_receipt("u"));
  CHECK(c.last_error() == nullptr);
}
