// Who may log in, for STOMP CONNECT and for the admin port's HTTP Basic: the configured users,
// checked against their slow password hashes (auth.h), with failed logins slowed down per
// peer address and per login.
//
// The three steps and their threads:
//   quick(attempt)   io thread, cheap: a verdict when one is due without the KDF (throttled,
//                    or the login was verified before with this very password); else nullopt
//   verify(attempt)  any thread, slow (PBKDF2): run it on a worker, never on the io thread.
//                    An unknown login is checked against a real user's hash of the highest
//                    cost, so "no such user" and "wrong password" take the same time.
//   record(attempt)  io thread: the verdict of verify; updates throttling and the cache, and
//                    logs every failure (login, peer, how many, the delay now imposed).
//
// Throttling (the brute force of issue 17 answered 4,525 guesses a second): each peer address
// and each login has a failure count. The first `free_failures` cost nothing; after that each
// failure blocks further attempts from that address or for that login for 1 s, 2 s, 4 s ...
// up to `max_delay`; a blocked attempt is refused at once ("retry in N s") without the KDF.
// A success clears the count of its address and its login; a count is forgotten after
// `forget_after` without failures. At most `max_tracked` counts are kept (the ones not
// blocking anything are dropped first), so a spray of addresses cannot grow memory.
//
// The cache: a verified password is remembered as SHA-256(random process key || password) per
// login, so a reconnect storm pays the KDF once per login, not once per connection. Only a
// match is answered from the cache; any other password goes through verify, so a wrong
// password for a cached login costs what it costs for any other login.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/engine_config.h"

namespace tandem::broker {

struct login_attempt {
  std::string login;
  std::string password;
  std::string peer;  // the client's address without its port ("127.0.0.1")
};

struct login_verdict {
  enum class outcome { accepted, refused, throttled };
  outcome result = outcome::refused;
  std::vector<std::string> groups;        // accepted: the user's groups
  std::chrono::seconds retry_after{0};    // throttled
  bool accepted() const { return result == outcome::accepted; }
  // For an ERROR body or an HTTP 401/429: what happened and what to do.
  std::string explain(const login_attempt& a) const;
};

struct throttle_limits {
  unsigned free_failures = 5;
  std::chrono::seconds max_delay{60};
  std::chrono::seconds forget_after{900};
  std::size_t max_tracked = 10000;
};

class credential_checker {
 public:
  using clock = std::chrono::steady_clock;
  explicit credential_checker(std::vector<user_account> users, throttle_limits limits = {});

  bool has_users() const { return !users_.empty(); }
  const user_account* find(std::string_view login) const;

  std::optional<login_verdict> quick(const login_attempt& a, clock::time_point now);
  // Thread-safe: reads only what the constructor set.
  bool verify(const login_attempt& a) const;
  login_verdict record(const login_attempt& a, bool ok, clock::time_point now);

  // Counters for /metrics and tests.
  std::uint64_t failures() const { return failures_; }
  std::uint64_t throttled() const { return throttled_; }
  std::size_t tracked() const { return counts_.size(); }

 private:
  struct failure_count {
    unsigned failures = 0;
    clock::time_point last{};
    clock::time_point blocked_until{};
    bool block_logged = false;
  };
  using digest = std::array<unsigned char, 32>;
  digest fingerprint(std::string_view password) const;
  void note_failure(const std::string& key, clock::time_point now);
  std::optional<clock::time_point> blocked(const std::string& key, clock::time_point now);
  void trim(clock::time_point now);

  std::vector<user_account> users_;
  throttle_limits limits_;
  std::string decoy_hash_;  // the costliest user hash: what an unknown login is checked against
  std::array<unsigned char, 32> key_{};
  std::map<std::string, digest, std::less<>> verified_;
  std::map<std::string, failure_count, std::less<>> counts_;  // "peer:ADDR" and "login:NAME"
  std::uint64_t failures_ = 0, throttled_ = 0;
};

// "127.0.0.1:5000" -> "127.0.0.1", "[::1]:5000" -> "::1".
std::string peer_address(std::string_view endpoint);

}  // namespace tandem::broker
