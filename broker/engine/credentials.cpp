#include "broker/engine/credentials.h"

#include <algorithm>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "broker/engine/auth.h"
#include "broker/log.h"

namespace tandem::broker {

namespace {

// The iteration count of a "pbkdf2-sha256:N:..." hash, 0 for the legacy form.
std::uint64_t cost_of(std::string_view hash) {
  constexpr std::string_view prefix = "pbkdf2-sha256:";
  if (!hash.starts_with(prefix)) return 0;
  hash.remove_prefix(prefix.size());
  std::uint64_t n = 0;
  for (char c : hash) {
    if (c < '0' || c > '9') break;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n;
}

}  // namespace

std::string peer_address(std::string_view endpoint) {
  if (endpoint.starts_with('[')) {
    auto close = endpoint.find(']');
    return std::string(endpoint.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  auto colon = endpoint.rfind(':');
  return std::string(colon == std::string_view::npos ? endpoint : endpoint.substr(0, colon));
}

std::string login_verdict::explain(const login_attempt& a) const {
  switch (result) {
    case outcome::accepted: return fmt::format("login '{}' accepted.", a.login);
    case outcome::refused: return "The login is unknown or the passcode is wrong.";
    case outcome::throttled:
      return fmt::format("Too many failed logins from {} or for login '{}': retry in {} s.", a.peer, a.login,
                         std::max<std::int64_t>(1, retry_after.count()));
  }
  return {};
}

credential_checker::credential_checker(std::vector<user_account> users, throttle_limits limits)
    : users_(std::move(users)), limits_(limits) {
  std::uint64_t best = 0;
  for (const auto& u : users_) {
    if (decoy_hash_.empty() || cost_of(u.password_hash) > best) {
      best = cost_of(u.password_hash);
      decoy_hash_ = u.password_hash;
    }
  }
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1) {
    // Without randomness the cache key is predictable; it still only answers a password that
    // was verified, so the cache stays correct, merely less private in a core dump.
    key_.fill(0x5a);
  }
}

const user_account* credential_checker::find(std::string_view login) const {
  auto it = std::find_if(users_.begin(), users_.end(), [&](const user_account& u) { return u.login == login; });
  return it == users_.end() ? nullptr : &*it;
}

credential_checker::digest credential_checker::fingerprint(std::string_view password) const {
  digest out{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 && EVP_DigestUpdate(ctx, key_.data(), key_.size()) == 1 &&
      EVP_DigestUpdate(ctx, password.data(), password.size()) == 1)
    EVP_DigestFinal_ex(ctx, out.data(), &len);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::optional<credential_checker::clock::time_point> credential_checker::blocked(const std::string& key, clock::time_point now) {
  auto it = counts_.find(key);
  if (it == counts_.end() || now >= it->second.blocked_until) return std::nullopt;
  return it->second.blocked_until;
}

std::optional<login_verdict> credential_checker::quick(const login_attempt& a, clock::time_point now) {
  auto by_peer = blocked("peer:" + a.peer, now);
  auto by_login = blocked("login:" + a.login, now);
  if (by_peer || by_login) {
    ++throttled_;
    auto until = std::max(by_peer.value_or(now), by_login.value_or(now));
    login_verdict v;
    v.result = login_verdict::outcome::throttled;
    v.retry_after = std::chrono::ceil<std::chrono::seconds>(until - now);
    auto& entry = counts_[by_peer ? "peer:" + a.peer : "login:" + a.login];
    if (!entry.block_logged) {
      entry.block_logged = true;
      log::warn("auth", "login attempts throttled",
                {log::kv("login", a.login), log::kv("peer", a.peer), log::kv("failures", entry.failures),
                 log::kv("retry_after_s", v.retry_after.count())});
    }
    return v;
  }
  auto cached = verified_.find(a.login);
  if (cached == verified_.end()) return std::nullopt;
  auto f = fingerprint(a.password);
  if (CRYPTO_memcmp(f.data(), cached->second.data(), f.size()) != 0) return std::nullopt;
  const auto* user = find(a.login);
  if (!user) return std::nullopt;
  login_verdict v;
  v.result = login_verdict::outcome::accepted;
  v.groups = user->groups;
  return v;
}

bool credential_checker::verify(const login_attempt& a) const {
  const auto* user = find(a.login);
  if (user) return verify_password(user->password_hash, a.password);
  // Same work as a real check, result thrown away (see the header).
  if (!decoy_hash_.empty()) (void)verify_password(decoy_hash_, a.password);
  return false;
}

void credential_checker::note_failure(const std::string& key, clock::time_point now) {
  auto& c = counts_[key];
  if (c.failures > 0 && now - c.last >= limits_.forget_after) c = failure_count{};
  ++c.failures;
  c.last = now;
  if (c.failures > limits_.free_failures) {
    unsigned step = std::min(c.failures - limits_.free_failures - 1, 16u);
    auto delay = std::min<std::chrono::seconds>(std::chrono::seconds(1ll << step), limits_.max_delay);
    c.blocked_until = now + delay;
    c.block_logged = false;
  }
}

void credential_checker::trim(clock::time_point now) {
  if (counts_.size() <= limits_.max_tracked) return;
  std::erase_if(counts_, [&](const auto& e) { return now - e.second.last >= limits_.forget_after; });
  if (counts_.size() <= limits_.max_tracked) return;
  std::erase_if(counts_, [&](const auto& e) { return now >= e.second.blocked_until; });
}

login_verdict credential_checker::record(const login_attempt& a, bool ok, clock::time_point now) {
  login_verdict v;
  if (ok) {
    const auto* user = find(a.login);
    counts_.erase("peer:" + a.peer);
    counts_.erase("login:" + a.login);
    verified_[a.login] = fingerprint(a.password);
    v.result = login_verdict::outcome::accepted;
    if (user) {
      v.groups = user->groups;
      if (is_legacy_hash(user->password_hash))
        log::warn("auth", "password hash to be rehashed",
                  {log::kv("login", a.login),
                   log::kv("hint", "the sha256: form is one round of SHA-256; make a new password_hash with "
                                   "`tandemd --hash-password -` and replace it in the config")});
    }
    return v;
  }
  ++failures_;
  note_failure("peer:" + a.peer, now);
  note_failure("login:" + a.login, now);
  trim(now);
  auto& c = counts_["login:" + a.login];
  log::warn("auth", "login failed",
            {log::kv("login", a.login), log::kv("peer", a.peer), log::kv("failures", c.failures),
             log::kv("known_login", find(a.login) != nullptr)});
  v.result = login_verdict::outcome::refused;
  return v;
}

}  // namespace tandem::broker
