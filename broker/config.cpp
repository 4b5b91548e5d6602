#include "broker/config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broker/config_policies.h"
#include "broker/config_schema.h"
#include "journal/identity.h"
#include "journal/pg/connection.h"


namespace tandem::broker {

using json = nlohmann::json;

std::string endpoint_address::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

bool parse_endpoint(std::string_view text, endpoint_address& out) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  if (host.empty() || port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return false;
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return true;
}

std::string_view to_string(sync_policy p) {
  switch (p) {
    case sync_policy::always: return "always";
    case sync_policy::periodic: return "periodic";
    case sync_policy::never: return "never";
  }
  return "?";
}

bool parse_sync_policy(std::string_view text, sync_policy& out) {
  if (text == "always") out = sync_policy::always;
  else if (text == "periodic") out = sync_policy::periodic;
  else if (text == "never") out = sync_policy::never;
  else return false;
  return true;
}

std::string_view to_string(lock_wait_mode w) {
  switch (w) {
    case lock_wait_mode::blocking: return "blocking";
    case lock_wait_mode::polling: return "polling";
  }
  return "?";
}

bool parse_lock_wait(std::string_view text, lock_wait_mode& out) {
  if (text == "blocking") out = lock_wait_mode::blocking;
  else if (text == "polling") out = lock_wait_mode::polling;
  else return false;
  return true;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Levenshtein with one rolling row; keys are short.
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view nearest_key(std::string_view unknown, const std::vector<std::string_view>& keys) {
  std::string_view best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (auto key : keys) {
    auto d = edit_distance(unknown, key);
    if (d < best_distance) {
      best_distance = d;
      best = key;
    }
  }
  // A typo, not a different word: allow about a third of the key to differ (at least 2).
  std::size_t limit = std::max<std::size_t>(2, std::max(unknown.size(), best.size()) / 3);
  return best_distance <= limit ? best : std::string_view{};
}

bool is_password_hash_form(std::string_view text) {
  auto hex = [](std::string_view h, std::size_t min_len) {
    return h.size() >= min_len && h.size() % 2 == 0 &&
           std::all_of(h.begin(), h.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  // "pbkdf2-sha256:<iterations>:<salt hex>:<64 hex key>" (iterations 1000 .. 2^31-1)
  constexpr std::string_view pbkdf2 = "pbkdf2-sha256:";
  if (text.starts_with(pbkdf2)) {
    text.remove_prefix(pbkdf2.size());
    auto c1 = text.find(':');
    if (c1 == std::string_view::npos || c1 == 0 || c1 > 10) return false;
    auto digits = text.substr(0, c1);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    auto n = std::stoull(std::string(digits));
    if (n < 1000 || n > 0x7fffffffull) return false;
    text.remove_prefix(c1 + 1);
  } else {
    // legacy "sha256:<salt hex>:<64 hex digest>" (broker/engine/auth.h)
    constexpr std::string_view legacy = "sha256:";
    if (!text.starts_with(legacy)) return false;
    text.remove_prefix(legacy.size());
  }
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  return hex(text.substr(0, colon), 2) && text.substr(colon + 1).size() == 64 && hex(text.substr(colon + 1), 64);
}

void hash_plaintext_passwords(config& cfg, const std::function<std::string(std::string_view)>& hasher) {
  for (const auto& [login, password] : cfg.plaintext_passwords) {
    for (auto& user : cfg.engine.users) {
      if (user.login == login) user.password_hash = hasher(password);
    }
  }
}

namespace {

// One loader per key. Each reads `value`, stores into the config, or returns the expected form
// (non-empty string = error).
using loader = std::function<std::string(const json& value, config& cfg, std::vector<std::string>& errors,
                                         std::string_view source)>;

template <class T>
std::string read_unsigned(const json& v, T& out, std::uint64_t min, std::uint64_t max) {
  std::string expected = max == std::numeric_limits<std::uint64_t>::max()
                             ? fmt::format("an integer >= {}", min)
                             : fmt::format("an integer from {} to {}", min, max);
  if (!v.is_number_integer()) return expected;
  if (v.is_number_unsigned()) {
    auto x = v.get<std::uint64_t>();
    if (x < min || x > max) return expected;
    out = static_cast<T>(x);
    return {};
  }
  auto x = v.get<std::int64_t>();
  if (x < 0 || static_cast<std::uint64_t>(x) < min || static_cast<std::uint64_t>(x) > max) return expected;
  out = static_cast<T>(x);
  return {};
}

std::string read_ms(const json& v, std::chrono::milliseconds& out, std::uint64_t min, std::uint64_t max) {
  std::uint64_t ms = 0;
  auto e = read_unsigned(v, ms, min, max);
  if (e.empty()) out = std::chrono::milliseconds(static_cast<std::int64_t>(ms));
  else e += " (milliseconds)";
  return e;
}

std::string read_bool(const json& v, bool& out) {
  if (!v.is_boolean()) return "true or false";
  out = v.get<bool>();
  return {};
}

std::string read_string(const json& v, std::string& out, bool allow_empty = false) {
  if (!v.is_string() || (!allow_empty && v.get_ref<const std::string&>().empty())) return "a non-empty string";
  out = v.get<std::string>();
  return {};
}

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t u32_max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t one_day_ms = 24ull * 3600 * 1000;

std::string load_users(const json& v, config& cfg, std::vector<std::string>& errors, std::string_view source) {
  constexpr const char* expected =
      R"(a list of {"login": "...", "password_hash": "pbkdf2-sha256:...", "groups": [...]} (or "password": "..." in plaintext))";
  if (!v.is_array()) return expected;
  std::vector<user_account> users;
  std::vector<std::pair<std::string, std::string>> plain;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json& u = v[i];
    auto where = fmt::format("users[{}]", i);
    if (!u.is_object()) {
      errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected {}", source, where, short_json(u), expected));
      continue;
    }
    user_account account;
    bool has_hash = false;
    bool has_plain = false;
    std::string password;
    bool bad = false;
    for (auto it = u.begin(); it != u.end(); ++it) {
      const std::string& k = it.key();
      std::string key_name = fmt::format("{}.{}", where, k);
      if (k == "login") {
        if (!read_string(*it, account.login).empty()) {
          errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected a non-empty string", source, key_name, short_json(*it)));
          bad = true;
        }
      } else if (k == "password_hash") {
        has_hash = true;
        if (!it->is_string() || !is_password_hash_form(it->get<std::string>())) {
          errors.push_back(fmt::format(
              "{}: key \"{}\" has bad value {}: expected a hash made by `tandemd --hash-password` (\"pbkdf2-sha256:<iterations>:<salt hex>:<key hex>\")",
              source, key_name, short_json(*it)));
          bad = true;
        } else {
          account.password_hash = it->get<std::string>();
        }
      } else if (k == "groups") {
        bool good = it->is_array();
        if (good)
          for (const auto& g : *it) good = good && g.is_string() && !g.get_ref<const std::string&>().empty();
        if (!good) {
          errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected a list of group names, e.g. [\"admin\"]",
                                       source, key_name, short_json(*it)));
          bad = true;
        } else {
          account.groups = it->get<std::vector<std::string>>();
        }
      } else if (k == "password") {
        has_plain = true;
        if (!read_string(*it, password).empty()) {
          errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected a non-empty string", source, key_name, short_json(*it)));
          bad = true;
        }
      } else {
        static const std::vector<std::string_view> user_keys{"login", "password_hash", "password", "groups"};
        auto near = nearest_key(k, user_keys);
        errors.push_back(fmt::format("{}: unknown key \"{}\"{}", source, key_name,
                                     near.empty() ? std::string(" (valid: login, password_hash, password, groups)")
                                                  : fmt::format(": did you mean \"{}\"?", near)));
        bad = true;
      }
    }
    if (bad) continue;
    if (account.login.empty()) {
      errors.push_back(fmt::format("{}: key \"{}\" has no \"login\": expected {}", source, where, expected));
      continue;
    }
    if (has_hash == has_plain) {
      errors.push_back(fmt::format("{}: key \"{}\" (login \"{}\") needs exactly one of \"password_hash\" or \"password\"",
                                   source, where, account.login));
      continue;
    }
    if (std::any_of(users.begin(), users.end(), [&](const user_account& a) { return a.login == account.login; })) {
      errors.push_back(fmt::format("{}: key \"{}\" repeats login \"{}\"", source, where, account.login));
      continue;
    }
    if (has_plain) plain.push_back({account.login, password});
    users.push_back(std::move(account));
  }
  cfg.engine.users = std::move(users);
  cfg.plaintext_passwords = std::move(plain);
  return {};
}

// "authorization": [{"queue"|"topic": PATTERN, "read": GROUPS, "write": GROUPS, "admin": GROUPS}]
// GROUPS: a list of names, or one string with names separated by commas (ActiveMQ's form).
std::string load_authorization(const json& v, config& cfg, std::vector<std::string>& errors, std::string_view source) {
  constexpr const char* expected = R"(a list of {"queue": "PATTERN" or "topic": "PATTERN", "read": [...], "write": [...], "admin": [...]}, or null)";
  if (v.is_null()) {
    cfg.engine.authorization.reset();
    return {};
  }
  if (!v.is_array()) return expected;
  std::vector<authorization_entry> entries;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    auto where = fmt::format("authorization[{}]", i);
    if (!e.is_object()) {
      errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected {}", source, where, short_json(e), expected));
      continue;
    }
    authorization_entry entry;
    int kinds = 0;
    bool bad = false;
    for (auto it = e.begin(); it != e.end(); ++it) {
      const std::string& k = it.key();
      auto key_name = fmt::format("{}.{}", where, k);
      if (k == "queue" || k == "topic") {
        ++kinds;
        entry.topic = k == "topic";
        if (!read_string(*it, entry.pattern).empty()) {
          errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected a pattern such as \"orders.>\"", source,
                                       key_name, short_json(*it)));
          bad = true;
        }
      } else if (k == "read" || k == "write" || k == "admin") {
        auto& list = k == "read" ? entry.read : k == "write" ? entry.write : entry.admin;
        bool good = it->is_array() || it->is_string();
        if (it->is_string()) {
          std::string text = it->get<std::string>();
          std::size_t start = 0;
          while (start <= text.size()) {
            auto comma = text.find(',', start);
            auto name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            name.erase(0, name.find_first_not_of(' '));
            name.erase(name.find_last_not_of(' ') + 1);
            if (!name.empty()) list.push_back(name);
            if (comma == std::string::npos) break;
            start = comma + 1;
          }
        } else if (good) {
          for (const auto& g : *it) {
            if (!g.is_string() || g.get_ref<const std::string&>().empty()) good = false;
            else list.push_back(g.get<std::string>());
          }
        }
        if (!good) {
          errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected a list of group names", source, key_name,
                                       short_json(*it)));
          bad = true;
        }
      } else {
        static const std::vector<std::string_view> keys{"queue", "topic", "read", "write", "admin"};
        auto near = nearest_key(k, keys);
        errors.push_back(fmt::format("{}: unknown key \"{}\"{}", source, key_name,
                                     near.empty() ? std::string(" (valid: queue, topic, read, write, admin)")
                                                  : fmt::format(": did you mean \"{}\"?", near)));
        bad = true;
      }
    }
    if (bad) continue;
    if (kinds != 1) {
      errors.push_back(fmt::format("{}: key \"{}\" needs exactly one of \"queue\" or \"topic\"", source, where));
      continue;
    }
    entries.push_back(std::move(entry));
  }
  cfg.engine.authorization = std::move(entries);
  return {};
}

std::string load_sync(const json& v, config& cfg, std::vector<std::string>& errors, std::string_view source) {
  constexpr const char* expected =
      R"("always", "periodic", "never", or {"policy": "periodic", "interval_ms": 100})";
  if (v.is_string()) {
    if (!parse_sync_policy(v.get<std::string>(), cfg.sync)) return expected;
    return {};
  }
  if (!v.is_object()) return expected;
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string key_name = "sync." + it.key();
    if (it.key() == "policy") {
      if (!it->is_string() || !parse_sync_policy(it->get<std::string>(), cfg.sync)) {
        errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected \"always\", \"periodic\" or \"never\"",
                                     source, key_name, short_json(*it)));
      }
    } else if (it.key() == "interval_ms") {
      auto e = read_ms(*it, cfg.sync_interval, 1, 60000);
      if (!e.empty()) errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected {}", source, key_name, short_json(*it), e));
    } else {
      static const std::vector<std::string_view> sync_keys{"policy", "interval_ms"};
      auto near = nearest_key(it.key(), sync_keys);
      errors.push_back(fmt::format("{}: unknown key \"{}\"{}", source, key_name,
                                   near.empty() ? std::string(" (valid: policy, interval_ms)")
                                                : fmt::format(": did you mean \"sync.{}\"?", near)));
    }
  }
  return {};
}

const std::map<std::string_view, loader>& loaders() {
  static const std::map<std::string_view, loader> table = [] {
    std::map<std::string_view, loader> t;
    auto simple = [&t](std::string_view key, std::function<std::string(const json&, config&)> f) {
      t.emplace(key, [f](const json& v, config& c, std::vector<std::string>&, std::string_view) { return f(v, c); });
    };
    simple("listen", [](const json& v, config& c) -> std::string {
      if (!v.is_string() || !parse_endpoint(v.get<std::string>(), c.listen)) return "\"HOST:PORT\", e.g. \"127.0.0.1:61613\"";
      return {};
    });
    simple("admin_listen", [](const json& v, config& c) -> std::string {
      if (v.is_null()) {
        c.admin_listen.reset();
        return {};
      }
      endpoint_address a;
      if (!v.is_string() || !parse_endpoint(v.get<std::string>(), a)) return "\"HOST:PORT\", e.g. \"127.0.0.1:8161\", or null";
      c.admin_listen = a;
      return {};
    });
    simple("admin_open_reads", [](const json& v, config& c) { return read_bool(v, c.admin_open_reads); });
    simple("admin_allowed_hosts", [](const json& v, config& c) -> std::string {
      bool good = v.is_array();
      if (good)
        for (const auto& h : v) good = good && h.is_string() && !h.get_ref<const std::string&>().empty();
      if (!good) return "a list of host names, e.g. [\"broker-a.mgmt.example\"]";
      c.admin_allowed_hosts = v.get<std::vector<std::string>>();
      return {};
    });
    simple("group_admin_urls", [](const json& v, config& c) -> std::string {
      bool good = v.is_array();
      if (good)
        for (const auto& u : v) good = good && u.is_string() && u.get_ref<const std::string&>().starts_with("http://");
      if (!good) return "a list of the other brokers' admin URLs, e.g. [\"http://10.0.0.6:8161\"]";
      c.group_admin_urls = v.get<std::vector<std::string>>();
      return {};
    });
    simple("store", [](const json& v, config& c) -> std::string {
      std::string s;
      auto e = read_string(v, s);
      if (!e.empty()) return "a directory path, or a postgresql:// URI without a password";
      c.store = s;
      return {};
    });
    simple("create_store", [](const json& v, config& c) { return read_bool(v, c.create_store); });
    simple("tls_listen", [](const json& v, config& c) -> std::string {
      if (v.is_null()) {
        c.tls_listen.reset();
        return {};
      }
      endpoint_address a;
      if (!v.is_string() || !parse_endpoint(v.get<std::string>(), a)) return "\"HOST:PORT\", e.g. \"0.0.0.0:61614\", or null";
      c.tls_listen = a;
      return {};
    });
    auto optional_endpoint = [&simple](std::string_view key, std::optional<endpoint_address> config::*field) {
      simple(key, [field](const json& v, config& c) -> std::string {
        if (v.is_null()) {
          (c.*field).reset();
          return {};
        }
        endpoint_address a;
        if (!v.is_string() || !parse_endpoint(v.get<std::string>(), a)) return "\"HOST:PORT\", e.g. \"0.0.0.0:61614\", or null";
        c.*field = a;
        return {};
      });
    };
    optional_endpoint("ws_listen", &config::ws_listen);
    optional_endpoint("wss_listen", &config::wss_listen);
    optional_endpoint("admin_tls_listen", &config::admin_tls_listen);
    simple("ws_allowed_origins", [](const json& v, config& c) -> std::string {
      bool good = v.is_array();
      if (good)
        for (const auto& o : v) good = good && o.is_string() && !o.get_ref<const std::string&>().empty();
      if (!good) return "a list of origins, e.g. [\"https://app.example\"], or [\"*\"]";
      c.ws_allowed_origins = v.get<std::vector<std::string>>();
      return {};
    });
    simple("tls_cert", [](const json& v, config& c) {
      std::string s;
      auto e = read_string(v, s);
      c.tls_cert = s;
      return e;
    });
    simple("tls_key", [](const json& v, config& c) {
      std::string s;
      auto e = read_string(v, s);
      c.tls_key = s;
      return e;
    });
    simple("tls_ca", [](const json& v, config& c) {
      std::string s;
      auto e = read_string(v, s);
      c.tls_ca = s;
      return e;
    });
    simple("tls_verify_client", [](const json& v, config& c) { return read_bool(v, c.tls_verify_client); });
    simple("store_id", [](const json& v, config& c) -> std::string {
      if (v.is_null()) {
        c.store_id.reset();
        return {};
      }
      auto id = v.is_string() ? journal::store_id::parse(v.get<std::string>()) : std::nullopt;
      if (!id) return "32 hex digits (the \"store_id\" of GET /health), or null";
      c.store_id = id->to_hex();
      return {};
    });
    simple("broker_name", [](const json& v, config& c) { return read_string(v, c.engine.broker_name); });
    t.emplace("sync", load_sync);
    simple("segment_bytes", [](const json& v, config& c) { return read_unsigned(v, c.segment_bytes, 1ull << 20, 1ull << 34); });
    simple("body_cache_bytes", [](const json& v, config& c) { return read_unsigned(v, c.body_cache_bytes, 0, u64_max); });
    simple("threads", [](const json& v, config& c) { return read_unsigned(v, c.threads, 1, 64); });
    simple("lock_check_interval_ms", [](const json& v, config& c) { return read_ms(v, c.lock_check_interval, 10, 600000); });
    simple("lock_wait", [](const json& v, config& c) -> std::string {
      if (!v.is_string() || !parse_lock_wait(v.get<std::string>(), c.lock_wait)) return "\"blocking\" or \"polling\"";
      return {};
    });
    simple("lock_poll_interval_ms", [](const json& v, config& c) { return read_ms(v, c.lock_poll_interval, 10, 60000); });
    simple("checkpoint_preload_interval_ms",
           [](const json& v, config& c) { return read_ms(v, c.checkpoint_preload_interval, 0, 60000); });
    simple("checkpoint_preload_segment_bytes", [](const json& v, config& c) {
      return read_unsigned(v, c.checkpoint_preload_segment_bytes, 0, u64_max);
    });
    simple("takeover_delay_ms", [](const json& v, config& c) -> std::string {
      if (v.is_null()) {
        c.takeover_delay.reset();
        return {};
      }
      std::chrono::milliseconds d{};
      auto e = read_ms(v, d, 0, 600000);
      if (!e.empty()) return e + " or null";
      c.takeover_delay = d;
      return {};
    });
    simple("fence_command", [](const json& v, config& c) -> std::string {
      if (v.is_null()) {
        c.fence_command.reset();
        return {};
      }
      std::string s;
      auto e = read_string(v, s);
      if (!e.empty()) return e + " or null";
      c.fence_command = s;
      return {};
    });
    simple("fence_after_ms", [](const json& v, config& c) { return read_ms(v, c.fence_after, 100, 600000); });
    simple("fence_timeout_ms", [](const json& v, config& c) { return read_ms(v, c.fence_timeout, 100, 600000); });
    simple("connect_timeout_ms", [](const json& v, config& c) { return read_ms(v, c.connect_timeout, 100, one_day_ms); });
    simple("idle_timeout_ms", [](const json& v, config& c) { return read_ms(v, c.idle_timeout, 0, one_day_ms); });
    simple("frame_timeout_ms", [](const json& v, config& c) { return read_ms(v, c.frame_timeout, 0, one_day_ms); });
    simple("write_timeout_ms", [](const json& v, config& c) { return read_ms(v, c.write_timeout, 0, one_day_ms); });
    simple("tcp_keepalive_s", [](const json& v, config& c) -> std::string {
      std::uint64_t s = 0;
      auto e = read_unsigned(v, s, 0, 7200);
      if (e.empty()) c.tcp_keepalive = std::chrono::seconds(s);
      return e;
    });
    simple("log_level", [](const json& v, config& c) -> std::string {
      static const std::vector<std::string_view> levels{"debug", "info", "warn", "error"};
      if (!v.is_string() || std::find(levels.begin(), levels.end(), v.get<std::string>()) == levels.end())
        return "\"debug\", \"info\", \"warn\" or \"error\"";
      c.log_level = v.get<std::string>();
      return {};
    });
    simple("allow_anonymous", [](const json& v, config& c) { return read_bool(v, c.engine.allow_anonymous); });
    t.emplace("users", load_users);
    t.emplace("authorization", load_authorization);
    // engine_config fields, same names (durations with _ms).
    simple("default_prefetch", [](const json& v, config& c) { return read_unsigned(v, c.engine.default_prefetch, 1, u32_max); });
    simple("max_deliveries", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_deliveries, 1, u32_max); });
    simple("dead_letter_strategy", [](const json& v, config& c) -> std::string {
      if (!v.is_string() || (v.get<std::string>() != "individual" && v.get<std::string>() != "shared"))
        return "\"individual\" (/queue/DLQ.<name>) or \"shared\" (/queue/ActiveMQ.DLQ)";
      c.engine.dead_letter_strategy = v.get<std::string>();
      return {};
    });
    simple("expired_to_dlq", [](const json& v, config& c) { return read_bool(v, c.engine.expired_to_dlq); });
    t.emplace("destination_policies", load_destination_policies);
    simple("max_destination_bytes", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_destination_bytes, 1024, u64_max); });
    simple("max_memory_bytes", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_memory_bytes, 1024, u64_max); });
    simple("max_memory_counts_baseline", [](const json& v, config& c) { return read_bool(v, c.engine.max_memory_counts_baseline); });
    simple("max_store_bytes", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_store_bytes, 1ull << 20, u64_max); });
    simple("send_timeout_ms", [](const json& v, config& c) { return read_ms(v, c.engine.send_timeout, 1, one_day_ms); });
    simple("max_session_backlog_bytes", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_session_backlog_bytes, 1024, u64_max); });
    simple("max_frame_bytes", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_frame_bytes, 4096, 4ull << 30); });
    simple("max_connections", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_connections, 1, u32_max); });
    simple("max_subscriptions_per_session", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_subscriptions_per_session, 1, u32_max); });
    simple("max_destinations", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_destinations, 1, u32_max); });
    simple("destination_gc_ms", [](const json& v, config& c) { return read_ms(v, c.engine.destination_gc, 0, one_day_ms); });
    simple("max_destination_name_bytes", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_destination_name_bytes, 16, 65536); });
    simple("max_transactions_per_session", [](const json& v, config& c) { return read_unsigned(v, c.engine.max_transactions_per_session, 1, u32_max); });
    simple("heartbeat_send_ms", [](const json& v, config& c) { return read_ms(v, c.engine.heartbeat_send, 0, one_day_ms); });
    simple("heartbeat_expect_ms", [](const json& v, config& c) { return read_ms(v, c.engine.heartbeat_expect, 0, one_day_ms); });
    simple("heartbeat_grace", [](const json& v, config& c) -> std::string {
      if (!v.is_number() || v.get<double>() < 1.0 || v.get<double>() > 10.0) return "a number from 1.0 to 10.0";
      c.engine.heartbeat_grace = v.get<double>();
      return {};
    });
    simple("dedup_window", [](const json& v, config& c) { return read_unsigned(v, c.engine.dedup_window, 0, 1u << 20); });
    simple("dedup_max_producers",
           [](const json& v, config& c) { return read_unsigned(v, c.engine.dedup_max_producers, 0, 1u << 24); });
    return t;
  }();
  return table;
}

}  // namespace

const std::vector<std::string_view>& config_keys() { return schema_keys(); }

config_result parse_config(std::string_view json_text, std::string_view source, config base) {
  config_result result{std::move(base), {}};
  result.value.source = std::string(source);
  result.value.engine.allow_anonymous = false;  // a config file must opt in
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end(), nullptr, true, /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based; report line and column an editor can jump to.
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i + 1 < e.byte && i < json_text.size(); ++i) {
      if (json_text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    result.errors.push_back(fmt::format("{}:{}:{}: not valid JSON: {}", source, line, column, e.what()));
    return result;
  }
  if (!doc.is_object()) {
    result.errors.push_back(fmt::format("{}: expected a JSON object of settings at the top, got {}", source, short_json(doc)));
    return result;
  }
  // The schema (broker/config_schema.json) decides what is valid: types, ranges, enums,
  // unknown keys. The loaders below only convert what passed; a key that failed is not read.
  std::set<std::string> failed;
  result.errors = check_against_schema(doc, source, failed);
  const auto& table = loaders();
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (failed.count(it.key())) continue;
    auto found = table.find(it.key());
    if (found == table.end()) {
      // In the schema but not read here: a build defect that schema_test catches.
      if (std::find(schema_keys().begin(), schema_keys().end(), it.key()) != schema_keys().end())
        result.errors.push_back(fmt::format("{}: key \"{}\" is in the schema but tandemd cannot read it", source, it.key()));
      continue;
    }
    auto expected = found->second(*it, result.value, result.errors, source);
    if (!expected.empty()) {
      result.errors.push_back(fmt::format("{}: key \"{}\" has bad value {}: expected {}", source, it.key(),
                                          short_json(*it), expected));
    }
  }
  return result;
}

config_result load_config_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    config_result r;
    r.errors.push_back(fmt::format("{}: cannot read the config file: {}", path.string(), std::strerror(errno)));
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path.string());
}

void apply_command_line(const command_line& cl, config& cfg, std::vector<std::string>& errors) {
  if (cl.store) cfg.store = *cl.store;
  if (cl.create_store) cfg.create_store = true;
  if (cl.listen && !parse_endpoint(*cl.listen, cfg.listen))
    errors.push_back(fmt::format("--listen: bad value \"{}\": expected HOST:PORT, e.g. 127.0.0.1:61613", *cl.listen));
  if (cl.admin) {
    endpoint_address a;
    if (parse_endpoint(*cl.admin, a)) cfg.admin_listen = a;
    else errors.push_back(fmt::format("--admin: bad value \"{}\": expected HOST:PORT, e.g. 127.0.0.1:8161", *cl.admin));
  }
  if (cl.name) {
    if (cl.name->empty()) errors.push_back("--name: bad value \"\": expected a non-empty name");
    else cfg.engine.broker_name = *cl.name;
  }
  if (cl.sync && !parse_sync_policy(*cl.sync, cfg.sync))
    errors.push_back(fmt::format("--sync: bad value \"{}\": expected always, periodic or never", *cl.sync));
  // Options that set a config key are checked against that key's schema.
  auto bad = [&errors](std::string_view option, std::string_view key, const json& value) {
    auto expected = check_setting(key, value);
    if (!expected.empty()) errors.push_back(fmt::format("{}: bad value {}: expected {}", option, value.dump(), expected));
    return !expected.empty();
  };
  if (cl.threads && !bad("--threads", "threads", *cl.threads)) cfg.threads = *cl.threads;
  if (cl.lock_check_interval_ms && !bad("--lock-check-interval", "lock_check_interval_ms", *cl.lock_check_interval_ms))
    cfg.lock_check_interval = std::chrono::milliseconds(*cl.lock_check_interval_ms);
  if (cl.lock_wait && !bad("--lock-wait", "lock_wait", *cl.lock_wait)) parse_lock_wait(*cl.lock_wait, cfg.lock_wait);
  if (cl.lock_poll_interval_ms && !bad("--lock-poll-interval-ms", "lock_poll_interval_ms", *cl.lock_poll_interval_ms))
    cfg.lock_poll_interval = std::chrono::milliseconds(*cl.lock_poll_interval_ms);
  if (cl.takeover_delay_ms && !bad("--takeover-delay", "takeover_delay_ms", *cl.takeover_delay_ms))
    cfg.takeover_delay = std::chrono::milliseconds(*cl.takeover_delay_ms);
  if (cl.checkpoint_preload_interval_ms &&
      !bad("--checkpoint-preload-interval-ms", "checkpoint_preload_interval_ms", *cl.checkpoint_preload_interval_ms))
    cfg.checkpoint_preload_interval = std::chrono::milliseconds(*cl.checkpoint_preload_interval_ms);
  if (cl.log_level && !bad("--log-level", "log_level", *cl.log_level)) cfg.log_level = *cl.log_level;
}

namespace {

// admin_tls_listen: the TLS settings, and an address no other listener has (the admin ports
// are opened on slaves too, so a clash fails at start, not at takeover).
void check_admin_tls(const config& cfg, std::vector<std::string>& errors) {
  if (!cfg.admin_tls_listen) return;
  const auto& a = *cfg.admin_tls_listen;
  if (cfg.tls_cert.empty() || cfg.tls_key.empty())
    errors.push_back(fmt::format("{}: admin_tls_listen {} needs \"tls_cert\" and \"tls_key\" (PEM files)", cfg.source,
                                 a.to_string()));
  if (a.port == 0) return;
  std::vector<std::pair<const char*, endpoint_address>> others{{"listen", cfg.listen}};
  if (cfg.admin_listen) others.emplace_back("admin_listen", *cfg.admin_listen);
  if (cfg.tls_listen) others.emplace_back("tls_listen", *cfg.tls_listen);
  if (cfg.ws_listen) others.emplace_back("ws_listen", *cfg.ws_listen);
  if (cfg.wss_listen) others.emplace_back("wss_listen", *cfg.wss_listen);
  for (const auto& [key, other] : others)
    if (other == a)
      errors.push_back(fmt::format("{}: admin_tls_listen {} is the same address as {}", cfg.source, a.to_string(), key));
}

}  // namespace

void validate(const config& cfg, std::vector<std::string>& errors) {
  if (cfg.store.empty())
    errors.push_back(fmt::format("{}: no store directory: give --store DIR or the \"store\" key", cfg.source));
  if (journal::pg::is_database_uri(cfg.store.string())) {
    if (auto why = journal::pg::check_conninfo(cfg.store.string()); !why.empty())
      errors.push_back(fmt::format("{}: store: {}", cfg.source, why));
  }
  if (cfg.admin_listen && cfg.admin_listen->port != 0 && cfg.admin_listen->port == cfg.listen.port &&
      cfg.admin_listen->host == cfg.listen.host)
    errors.push_back(fmt::format("{}: admin_listen {} is the same address as listen", cfg.source, cfg.admin_listen->to_string()));
  if (!cfg.engine.allow_anonymous && cfg.engine.users.empty())
    errors.push_back(fmt::format("{}: nobody could log in: set \"allow_anonymous\": true or add \"users\"", cfg.source));
  if (cfg.tls_listen) {
    if (cfg.tls_cert.empty() || cfg.tls_key.empty())
      errors.push_back(fmt::format("{}: tls_listen {} needs \"tls_cert\" and \"tls_key\" (PEM files)", cfg.source,
                                   cfg.tls_listen->to_string()));
    if (cfg.tls_listen->port != 0 && cfg.tls_listen->port == cfg.listen.port && cfg.tls_listen->host == cfg.listen.host)
      errors.push_back(fmt::format("{}: tls_listen {} is the same address as listen", cfg.source, cfg.tls_listen->to_string()));
  }
  if (cfg.wss_listen && (cfg.tls_cert.empty() || cfg.tls_key.empty()))
    errors.push_back(fmt::format("{}: wss_listen {} needs \"tls_cert\" and \"tls_key\" (PEM files)", cfg.source,
                                 cfg.wss_listen->to_string()));
  check_admin_tls(cfg, errors);
  {
    // Two listeners on one address: the second bind fails at takeover, when it hurts most.
    std::vector<std::pair<const char*, endpoint_address>> all{{"listen", cfg.listen}};
    if (cfg.tls_listen) all.emplace_back("tls_listen", *cfg.tls_listen);
    if (cfg.ws_listen) all.emplace_back("ws_listen", *cfg.ws_listen);
    if (cfg.wss_listen) all.emplace_back("wss_listen", *cfg.wss_listen);
    for (std::size_t i = 2; i < all.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (all[i].second.port != 0 && all[i].second == all[j].second)
          errors.push_back(fmt::format("{}: {} {} is the same address as {}", cfg.source, all[i].first,
                                       all[i].second.to_string(), all[j].first));
  }
  if (cfg.tls_verify_client && cfg.tls_ca.empty())
    errors.push_back(fmt::format("{}: tls_verify_client needs \"tls_ca\": the CA file client certificates must chain to",
                                 cfg.source));
  if (!cfg.uses_tls() && (!cfg.tls_cert.empty() || !cfg.tls_key.empty() || !cfg.tls_ca.empty() || cfg.tls_verify_client))
    errors.push_back(fmt::format("{}: tls_cert, tls_key, tls_ca and tls_verify_client have no effect without \"tls_listen\", "
                                 "\"wss_listen\" or \"admin_tls_listen\"",
                                 cfg.source));
}

bool is_loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.a.b.c with decimal octets.
  if (!host.starts_with("127.")) return false;
  int dots = 0, digits = 0;
  for (char ch : host.substr(4)) {
    if (ch == '.') {
      if (digits == 0) return false;
      ++dots;
      digits = 0;
    } else if (ch >= '0' && ch <= '9' && digits < 3) {
      ++digits;
    } else {
      return false;
    }
  }
  return dots == 2 && digits > 0;
}

void check_no_security_listeners(const config& cfg, bool from_file, std::vector<std::string>& errors) {
  if (from_file || !cfg.engine.users.empty() || !cfg.engine.allow_anonymous) return;
  auto check = [&](const char* key, const endpoint_address& a) {
    if (is_loopback_host(a.host)) return;
    errors.push_back(fmt::format(
        "{}: {} {} is not a loopback address, and without a config file the broker has no security (any "
        "login is accepted). Listen on 127.0.0.1, or give --config FILE with \"users\" (or with "
        "\"allow_anonymous\": true to accept anyone on purpose)",
        cfg.source, key, a.to_string()));
  };
  check("listen", cfg.listen);
  if (cfg.tls_listen) check("tls_listen", *cfg.tls_listen);
  if (cfg.ws_listen) check("ws_listen", *cfg.ws_listen);
  if (cfg.wss_listen) check("wss_listen", *cfg.wss_listen);
}

}  // namespace tandem::broker
