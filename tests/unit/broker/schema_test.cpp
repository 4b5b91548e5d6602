// broker/config_schema: the schema is the single description of the config file. These tests
// fail when the schema, the loaders in config.cpp and docs/configuration.md drift apart.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "broker/config.h"
#include "broker/config_schema.h"

using namespace tandem::broker;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

bool any_error_contains(const std::vector<std::string>& errors, std::initializer_list<std::string_view> parts) {
  return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
    return std::all_of(parts.begin(), parts.end(), [&](std::string_view p) { return e.find(p) != std::string::npos; });
  });
}

std::string dump(const std::vector<std::string>& errors) {
  std::string s;
  for (auto& e : errors) s += e + "\n";
  return s;
}

// Walks every schema node and reports keywords the validator does not implement.
void unknown_keywords(const ojson& node, const std::string& where, std::vector<std::string>& out) {
  static const std::set<std::string> known{"$schema", "$id", "title", "description", "type", "enum", "minimum", "maximum",
                                           "minLength", "format", "properties", "additionalProperties", "required",
                                           "items", "anyOf", "default", "x-unit", "x-group"};
  static const std::set<std::string> formats{"host-port", "password-hash", "store-id"};
  for (const auto& [k, v] : node.items()) {
    if (!known.count(k)) out.push_back(where + ": " + k);
    if (k == "format" && !formats.count(v.get<std::string>())) out.push_back(where + ": format " + v.dump());
  }
  if (auto p = node.find("properties"); p != node.end())
    for (const auto& [k, v] : p->items()) unknown_keywords(v, where + "." + k, out);
  if (auto i = node.find("items"); i != node.end()) unknown_keywords(*i, where + "[]", out);
  if (auto a = node.find("anyOf"); a != node.end())
    for (const auto& b : *a) unknown_keywords(b, where + "|", out);
}

// A valid value for a top-level key: its default, else a sample of its type.
json sample_value(const std::string& key, const ojson& node) {
  if (node.contains("default")) return json::parse(node["default"].dump());
  if (key == "store") return "/srv/tandem/x";
  return "/etc/tandem/tls/x.pem";  // tls_cert, tls_key, tls_ca: strings
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("the schema parses and uses only keywords the validator implements") {
  const ojson& schema = config_schema();
  REQUIRE(schema.is_object());
  CHECK(schema.at("type") == "object");
  CHECK(schema.at("additionalProperties") == false);
  std::vector<std::string> unknown;
  unknown_keywords(schema, "$", unknown);
  INFO(dump(unknown));
  CHECK(unknown.empty());
}

TEST_CASE("every key of the schema is read by tandemd and its default is valid") {
  json doc = json::object();
  for (const auto& [key, node] : config_schema().at("properties").items()) doc[key] = sample_value(key, node);
  doc["tls_listen"] = "127.0.0.1:0";  // so that the tls files make sense together
  auto r = parse_config(doc.dump(), "all.json");
  INFO(dump(r.errors));
  CHECK(r.ok());
  CHECK(config_keys() == schema_keys());
}

TEST_CASE("each integer key accepts its minimum and maximum and refuses the values beyond") {
  for (const auto& [key, node] : config_schema().at("properties").items()) {
    auto types = node.value("type", ojson());
    bool integer = types == "integer" || (types.is_array() && std::find(types.begin(), types.end(), "integer") != types.end());
    if (!integer) continue;
    CAPTURE(key);
    if (node.contains("minimum")) {
      auto min = node["minimum"].get<std::int64_t>();
      auto ok = parse_config(json{{key, min}}.dump(), "t.json");
      INFO(dump(ok.errors));
      CHECK(ok.ok());
      auto below = parse_config(json{{key, min - 1}}.dump(), "t.json");
      CHECK(any_error_contains(below.errors, {"\"" + key + "\"", std::to_string(min - 1), "expected an integer"}));
    }
    if (node.contains("maximum")) {
      auto max = node["maximum"].get<std::uint64_t>();
      auto ok = parse_config(json{{key, max}}.dump(), "t.json");
      INFO(dump(ok.errors));
      CHECK(ok.ok());
      auto above = parse_config(json{{key, max + 1}}.dump(), "t.json");
      CHECK(any_error_contains(above.errors, {"\"" + key + "\"", std::to_string(max + 1)}));
    }
  }
}

TEST_CASE("each enum value of the schema is accepted") {
  for (const auto& [key, node] : config_schema().at("properties").items()) {
    if (!node.contains("enum")) continue;
    for (const auto& v : node["enum"]) {
      CAPTURE(key);
      auto r = parse_config(json{{key, json::parse(v.dump())}}.dump(), "t.json");
      INFO(dump(r.errors));
      CHECK(r.ok());
    }
  }
}

TEST_CASE("the schema's defaults are the defaults tandemd uses") {
  auto r = parse_config("{}", "t.json");
  REQUIRE(r.ok());
  const config& c = r.value;
  const auto& p = config_schema().at("properties");
  CHECK(p["listen"]["default"] == c.listen.to_string());
  CHECK(p["admin_listen"]["default"].is_null() == !c.admin_listen.has_value());
  CHECK(p["tls_listen"]["default"].is_null() == !c.tls_listen.has_value());
  CHECK(p["tls_verify_client"]["default"] == c.tls_verify_client);
  CHECK(p["create_store"]["default"] == c.create_store);
  CHECK(p["sync"]["default"] == std::string(to_string(c.sync)));
  CHECK(p["sync"]["anyOf"][1]["properties"]["interval_ms"]["default"] == c.sync_interval.count());
  CHECK(p["segment_bytes"]["default"] == c.segment_bytes);
  CHECK(p["body_cache_bytes"]["default"] == c.body_cache_bytes);
  CHECK(p["lock_check_interval_ms"]["default"] == c.lock_check_interval.count());
  CHECK(p["takeover_delay_ms"]["default"].is_null() == !c.takeover_delay.has_value());
  CHECK(p["broker_name"]["default"] == c.engine.broker_name);
  CHECK(p["threads"]["default"] == c.threads);
  CHECK(p["connect_timeout_ms"]["default"] == c.connect_timeout.count());
  CHECK(p["log_level"]["default"] == c.log_level);
  CHECK(p["allow_anonymous"]["default"] == c.engine.allow_anonymous);
  CHECK(p["default_prefetch"]["default"] == c.engine.default_prefetch);
  CHECK(p["max_deliveries"]["default"] == c.engine.max_deliveries);
  CHECK(p["dead_letter_strategy"]["default"] == c.engine.dead_letter_strategy);
  CHECK(p["expired_to_dlq"]["default"] == c.engine.expired_to_dlq);
  CHECK(p["dedup_window"]["default"] == c.engine.dedup_window);
  CHECK(p["max_destination_bytes"]["default"] == c.engine.max_destination_bytes);
  CHECK(p["max_memory_bytes"]["default"] == c.engine.max_memory_bytes);
  CHECK(p["max_store_bytes"]["default"] == c.engine.max_store_bytes);
  CHECK(p["send_timeout_ms"]["default"] == c.engine.send_timeout.count());
  CHECK(p["max_session_backlog_bytes"]["default"] == c.engine.max_session_backlog_bytes);
  CHECK(p["max_connections"]["default"] == c.engine.max_connections);
  CHECK(p["max_subscriptions_per_session"]["default"] == c.engine.max_subscriptions_per_session);
  CHECK(p["max_transactions_per_session"]["default"] == c.engine.max_transactions_per_session);
  CHECK(p["heartbeat_send_ms"]["default"] == c.engine.heartbeat_send.count());
  CHECK(p["heartbeat_expect_ms"]["default"] == c.engine.heartbeat_expect.count());
  CHECK(p["heartbeat_grace"]["default"].get<double>() == doctest::Approx(c.engine.heartbeat_grace));
}

TEST_CASE("a schema error names the file, the key, the bad value and the expected form") {
  auto r = parse_config(R"({"tls_verify_client": "yes", "tls_listen": 61614, "log_level": "verbose",
                            "sync": {"policy": "often"}, "users": [{"login": "", "passwrd": "x"}]})",
                        "/etc/tandem/a.json");
  INFO(dump(r.errors));
  CHECK(any_error_contains(r.errors, {"/etc/tandem/a.json", "\"tls_verify_client\"", "\"yes\"", "true or false"}));
  CHECK(any_error_contains(r.errors, {"\"tls_listen\"", "61614", "HOST:PORT", "or null"}));
  CHECK(any_error_contains(r.errors, {"\"log_level\"", "\"verbose\"", R"("debug", "info", "warn" or "error")"}));
  CHECK(any_error_contains(r.errors, {"\"sync.policy\"", "\"often\"", "\"periodic\""}));
  CHECK(any_error_contains(r.errors, {"\"users[0].login\"", "a non-empty string"}));
  CHECK(any_error_contains(r.errors, {"unknown key \"users[0].passwrd\"", "did you mean \"password\""}));
}

TEST_CASE("a typo of a TLS key names the nearest valid key") {
  auto r = parse_config(R"({"tls_certs": "/x.pem", "tls_verify_clients": true})", "a.json");
  CHECK(any_error_contains(r.errors, {"unknown key \"tls_certs\"", "did you mean \"tls_cert\""}));
  CHECK(any_error_contains(r.errors, {"unknown key \"tls_verify_clients\"", "did you mean \"tls_verify_client\""}));
}

TEST_CASE("TLS settings are checked together") {
  auto check = [](std::string_view text) {
    auto r = parse_config(text, "t.json");
    REQUIRE(r.ok());
    r.value.store = "/s";
    r.value.engine.allow_anonymous = true;
    std::vector<std::string> errors;
    validate(r.value, errors);
    return errors;
  };
  CHECK(any_error_contains(check(R"({"tls_listen": "127.0.0.1:61614"})"), {"tls_listen", "tls_cert", "tls_key"}));
  CHECK(any_error_contains(check(R"({"tls_listen": "127.0.0.1:61614", "tls_cert": "c", "tls_key": "k",
                                     "tls_verify_client": true})"),
                           {"tls_verify_client needs \"tls_ca\""}));
  CHECK(any_error_contains(check(R"({"tls_cert": "c"})"), {"no effect without \"tls_listen\""}));
  CHECK(any_error_contains(check(R"({"listen": "127.0.0.1:7000", "tls_listen": "127.0.0.1:7000", "tls_cert": "c", "tls_key": "k"})"),
                           {"same address as listen"}));
  CHECK(check(R"({"tls_listen": "127.0.0.1:61614", "tls_cert": "c", "tls_key": "k", "tls_ca": "a", "tls_verify_client": true})")
            .empty());
  // The admin port over HTTPS (issue 17) uses the same settings.
  CHECK(any_error_contains(check(R"({"admin_tls_listen": "127.0.0.1:8162"})"), {"admin_tls_listen", "tls_cert", "tls_key"}));
  CHECK(any_error_contains(check(R"({"admin_listen": "127.0.0.1:8161", "admin_tls_listen": "127.0.0.1:8161", "tls_cert": "c",
                                     "tls_key": "k"})"),
                           {"admin_tls_listen 127.0.0.1:8161 is the same address as admin_listen"}));
  CHECK(check(R"({"admin_tls_listen": "127.0.0.1:8162", "tls_cert": "c", "tls_key": "k"})").empty());
}

TEST_CASE("command-line options are checked against the schema of the key they set") {
  CLI::App app;
  command_line cl;
  add_command_line_options(app, cl);
  const char* argv[] = {"tandemd", "--threads", "65", "--lock-check-interval", "5", "--log-level", "loud"};
  app.parse(static_cast<int>(std::size(argv)), argv);
  config cfg;
  std::vector<std::string> errors;
  apply_command_line(cl, cfg, errors);
  INFO(dump(errors));
  CHECK(any_error_contains(errors, {"--threads", "65", "an integer from 1 to 64"}));
  CHECK(any_error_contains(errors, {"--lock-check-interval", "5", "from 10 to 600000 (milliseconds)"}));
  CHECK(any_error_contains(errors, {"--log-level", "loud", "\"debug\""}));
  CHECK(cfg.threads == 1u);
}

TEST_CASE("docs/configuration.md is what the schema gives (regenerate: --target config-reference)") {
  std::string in_tree = read_file(TANDEM_SOURCE_DIR "/docs/configuration.md");
  REQUIRE_FALSE(in_tree.empty());
  std::string generated = render_config_reference();
  // Fails when the schema changed and the doc was not regenerated (or the doc was hand-edited).
  // Report the first line that differs rather than two whole documents.
  std::istringstream a(in_tree), b(generated);
  std::string line_a, line_b;
  int line = 0;
  bool same = true;
  while (same) {
    bool more_a = static_cast<bool>(std::getline(a, line_a)), more_b = static_cast<bool>(std::getline(b, line_b));
    ++line;
    if (!more_a && !more_b) break;
    same = more_a == more_b && line_a == line_b;
  }
  INFO("docs/configuration.md line " << line << " is\n  " << line_a << "\nthe schema gives\n  " << line_b
                                     << "\nregenerate: cmake --build BUILD --target config-reference");
  CHECK(same);
  for (auto key : schema_keys()) CHECK(in_tree.find(fmt::format("| `{}` |", key)) != std::string::npos);
}
