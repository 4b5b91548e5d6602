// broker/engine/auth and credentials: PBKDF2 hashes, legacy hashes, the verified-login cache
// and throttling. Regression (issue 17, finding 6): one round of salted SHA-256 and no
// throttling (4,525 wrong passcodes a second were answered).
#include <doctest/doctest.h>

#include "broker/engine/auth.h"
#include "broker/engine/credentials.h"

using namespace tandem::broker;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t test_iterations = 1000;  // the minimum: the unit tests stay fast

std::vector<user_account> users() {
  return {{"alice", hash_password("wonder", test_iterations), {"admin"}},
          {"old", hash_password_with_salt("legacy", "0123456789abcdef"), {}}};
}

}  // namespace

TEST_CASE("PBKDF2 hashes: the form, a golden value, and verification") {
  // Golden value from an independent implementation:
  //   python3 -c "import hashlib; print(hashlib.pbkdf2_hmac('sha256', b'pw', b'saltsaltsaltsalt', 1000).hex())"
  auto h = hash_password_pbkdf2("pw", "saltsaltsaltsalt", 1000);
  CHECK(h == "pbkdf2-sha256:1000:73616c7473616c7473616c7473616c74:"
             "4fb7a959fc411e229040694d277fbd08cd7b750b8a55e5aefbe6a7b8801feaf8");
  CHECK(verify_password(h, "pw"));
  CHECK_FALSE(verify_password(h, "pW"));
  CHECK_FALSE(is_legacy_hash(h));
  auto fresh = hash_password("pw", test_iterations);
  CHECK(fresh != hash_password("pw", test_iterations));  // a random salt each time
  CHECK(verify_password(fresh, "pw"));
  CHECK(hash_password("x").starts_with("pbkdf2-sha256:600000:"));
  // Malformed hashes never match.
  CHECK_FALSE(verify_password("pbkdf2-sha256:999:00:" + std::string(64, '0'), "pw"));
  CHECK_FALSE(verify_password("pbkdf2-sha256:x:00:" + std::string(64, '0'), "pw"));
  CHECK_FALSE(verify_password("pbkdf2-sha256:1000:00", "pw"));
  CHECK_FALSE(verify_password("", ""));
}

TEST_CASE("legacy salted SHA-256 hashes still verify and are flagged") {
  auto h = hash_password_with_salt("legacy", "0123456789abcdef");
  CHECK(is_legacy_hash(h));
  CHECK(verify_password(h, "legacy"));
  CHECK_FALSE(verify_password(h, "Legacy"));
}

TEST_CASE("a verified password is answered from the cache; anything else is checked") {
  credential_checker c(users());
  auto now = credential_checker::clock::now();
  login_attempt a{"alice", "wonder", "10.0.0.1"};
  CHECK_FALSE(c.quick(a, now));  // first time: the slow check
  auto v = c.record(a, c.verify(a), now);
  CHECK(v.accepted());
  CHECK(v.groups == std::vector<std::string>{"admin"});
  auto q = c.quick(a, now);
  REQUIRE(q);
  CHECK(q->accepted());
  // A different password is never answered from the cache (same cost as an unknown login).
  CHECK_FALSE(c.quick({"alice", "nope", "10.0.0.1"}, now));
  CHECK_FALSE(c.verify({"alice", "nope", "10.0.0.1"}));
  CHECK_FALSE(c.verify({"mallory", "wonder", "10.0.0.1"}));  // unknown login, a real user's password
  CHECK(c.verify({"old", "legacy", "10.0.0.1"}));
}

TEST_CASE("failures are throttled per peer address and per login, with growing delays") {
  credential_checker c(users(), throttle_limits{3, 60s, 900s, 100});
  auto t = credential_checker::clock::now();
  login_attempt bad{"alice", "guess", "10.0.0.1"};
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(c.quick(bad, t));
    CHECK(c.record(bad, false, t).result == login_verdict::outcome::refused);
  }
  CHECK_FALSE(c.quick(bad, t));  // the free failures cost nothing
  c.record(bad, false, t);       // the 4th: blocked for 1 s
  auto q = c.quick(bad, t + 500ms);
  REQUIRE(q);
  CHECK(q->result == login_verdict::outcome::throttled);
  CHECK(q->retry_after == 1s);
  CHECK(q->explain(bad).find("retry in 1 s") != std::string::npos);
  // The right password waits too, and so does another login from that peer, and this login
  // from another peer.
  CHECK(c.quick({"alice", "wonder", "10.0.0.1"}, t + 500ms));
  CHECK(c.quick({"old", "legacy", "10.0.0.1"}, t + 500ms));
  CHECK(c.quick({"alice", "wonder", "10.0.0.2"}, t + 500ms));
  CHECK_FALSE(c.quick({"old", "legacy", "10.0.0.2"}, t + 500ms));
  // After the delay one more try; its failure doubles the delay.
  CHECK_FALSE(c.quick(bad, t + 1s));
  c.record(bad, false, t + 1s);
  CHECK(c.quick(bad, t + 2900ms));
  CHECK_FALSE(c.quick(bad, t + 3s));
  CHECK(c.throttled() >= 4);
  // A success clears both counts.
  c.record({"alice", "wonder", "10.0.0.1"}, true, t + 3s);
  CHECK_FALSE(c.quick(bad, t + 3s));
  c.record(bad, false, t + 3s);
  CHECK_FALSE(c.quick(bad, t + 3s));  // counting starts again from zero
}

TEST_CASE("the delay is capped and counts are bounded") {
  credential_checker c(users(), throttle_limits{0, 5s, 900s, 10});
  auto t = credential_checker::clock::now();
  for (int i = 0; i < 20; ++i) c.record({"alice", "x", "10.0.0.1"}, false, t);
  auto q = c.quick({"alice", "x", "10.0.0.1"}, t);
  REQUIRE(q);
  CHECK(q->retry_after == 5s);
  // A spray of addresses (one failure each, far apart) does not grow the table past its bound.
  for (int i = 0; i < 100; ++i) c.record({"u" + std::to_string(i), "x", "10.1.0." + std::to_string(i)}, false, t + std::chrono::hours(i + 1));
  CHECK(c.tracked() <= 12);
}

TEST_CASE("peer addresses drop the port") {
  CHECK(peer_address("127.0.0.1:5000") == "127.0.0.1");
  CHECK(peer_address("[::1]:5000") == "::1");
}
