// broker/config: the JSON file, the command line and how they combine.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "broker/config.h"

using namespace tandem::broker;

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

}  // namespace

TEST_CASE("an empty object gives the documented defaults with anonymous access off") {
  auto r = parse_config("{}", "t.json");
  REQUIRE(r.ok());
  CHECK(r.value.listen == endpoint_address{"127.0.0.1", 61613});
  CHECK_FALSE(r.value.admin_listen.has_value());
  CHECK(r.value.sync == sync_policy::always);
  CHECK(r.value.threads == 1u);
  CHECK(r.value.segment_bytes == (32ull << 20));
  CHECK(r.value.lock_check_interval == std::chrono::milliseconds(1000));
  CHECK(r.value.lock_wait == lock_wait_mode::blocking);
  CHECK(r.value.lock_poll_interval == std::chrono::milliseconds(500));
  CHECK_FALSE(r.value.takeover_delay.has_value());
  CHECK_FALSE(r.value.engine.allow_anonymous);
  CHECK(r.value.source == "t.json");
}

TEST_CASE("every documented key is read into the config") {
  auto r = parse_config(R"({
    "listen": "0.0.0.0:61700", "admin_listen": "[::1]:8200", "store": "/srv/tandem",
    "create_store": true, "broker_name": "b1",
    "sync": {"policy": "periodic", "interval_ms": 25},
    "segment_bytes": 4194304, "body_cache_bytes": 1000, "threads": 2,
    "lock_check_interval_ms": 250, "lock_wait": "polling", "lock_poll_interval_ms": 40,
    "takeover_delay_ms": 3000, "connect_timeout_ms": 5000,
    "log_level": "debug", "allow_anonymous": true,
    "default_prefetch": 10, "max_deliveries": 3, "dead_letter_strategy": "shared",
    "expired_to_dlq": true, "max_destination_bytes": 2048, "max_memory_bytes": 4096,
    "max_store_bytes": 2097152, "send_timeout_ms": 700, "max_session_backlog_bytes": 8192,
    "max_connections": 50, "max_subscriptions_per_session": 7, "max_transactions_per_session": 8,
    "heartbeat_send_ms": 1500, "heartbeat_expect_ms": 2500, "heartbeat_grace": 2.0,
    "dedup_window": 64
  })", "full.json");
  INFO(dump(r.errors));
  REQUIRE(r.ok());
  const config& c = r.value;
  CHECK(c.listen == endpoint_address{"0.0.0.0", 61700});
  REQUIRE(c.admin_listen.has_value());
  CHECK(c.admin_listen->host == "::1");
  CHECK(c.admin_listen->port == 8200);
  CHECK(c.admin_listen->to_string() == "[::1]:8200");
  CHECK(c.store == "/srv/tandem");
  CHECK(c.create_store);
  CHECK(c.engine.broker_name == "b1");
  CHECK(c.sync == sync_policy::periodic);
  CHECK(c.sync_interval == std::chrono::milliseconds(25));
  CHECK(c.segment_bytes == 4194304u);
  CHECK(c.body_cache_bytes == 1000u);
  CHECK(c.threads == 2u);
  CHECK(c.lock_check_interval == std::chrono::milliseconds(250));
  CHECK(c.lock_wait == lock_wait_mode::polling);
  CHECK(c.lock_poll_interval == std::chrono::milliseconds(40));
  CHECK(c.takeover_delay == std::chrono::milliseconds(3000));
  CHECK(c.connect_timeout == std::chrono::milliseconds(5000));
  CHECK(c.log_level == "debug");
  CHECK(c.engine.allow_anonymous);
  CHECK(c.engine.default_prefetch == 10u);
  CHECK(c.engine.max_deliveries == 3u);
  CHECK(c.engine.dead_letter_strategy == "shared");
  CHECK(c.engine.expired_to_dlq);
  CHECK(c.engine.max_destination_bytes == 2048u);
  CHECK(c.engine.max_memory_bytes == 4096u);
  CHECK(c.engine.max_store_bytes == 2097152u);
  CHECK(c.engine.send_timeout == std::chrono::milliseconds(700));
  CHECK(c.engine.max_session_backlog_bytes == 8192u);
  CHECK(c.engine.max_connections == 50u);
  CHECK(c.engine.max_subscriptions_per_session == 7u);
  CHECK(c.engine.max_transactions_per_session == 8u);
  CHECK(c.engine.heartbeat_send == std::chrono::milliseconds(1500));
  CHECK(c.engine.heartbeat_expect == std::chrono::milliseconds(2500));
  CHECK(c.engine.heartbeat_grace == doctest::Approx(2.0));
  CHECK(c.engine.dedup_window == 64u);
}

TEST_CASE("sync accepts a bare policy string") {
  auto r = parse_config(R"({"sync": "never"})", "t.json");
  REQUIRE(r.ok());
  CHECK(r.value.sync == sync_policy::never);
}

TEST_CASE("an unknown key is an error naming the key, the file and the nearest valid key") {
  auto r = parse_config(R"({"segment_byte": 1048576})", "/etc/tandem/tandemd.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(any_error_contains(r.errors, {"/etc/tandem/tandemd.json", "unknown key \"segment_byte\"",
                                      "did you mean \"segment_bytes\""}));
}

TEST_CASE("an unknown key far from every valid key gets no suggestion") {
  auto r = parse_config(R"({"zzzzqqqqxxxx": 1})", "t.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("did you mean") == std::string::npos);
  CHECK(r.errors[0].find("zzzzqqqqxxxx") != std::string::npos);
}

TEST_CASE("a duration key written without its unit suffix suggests the _ms key") {
  auto r = parse_config(R"({"send_timeout": 5})", "t.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(any_error_contains(r.errors, {"did you mean \"send_timeout_ms\""}));
}

TEST_CASE("a bad value names the key, the file, the value and the expected form") {
  auto r = parse_config(R"({"threads": "two"})", "cfg.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(any_error_contains(r.errors, {"cfg.json", "\"threads\"", "\"two\"", "expected an integer from 1 to 64"}));

  r = parse_config(R"({"listen": "localhost"})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"listen\"", "\"localhost\"", "HOST:PORT"}));

  r = parse_config(R"({"sync": "sometimes"})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"sync\"", "sometimes", "periodic"}));

  r = parse_config(R"({"segment_bytes": 100})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"segment_bytes\"", "100", "integer from 1048576"}));

  r = parse_config(R"({"lock_check_interval_ms": -5})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"lock_check_interval_ms\"", "-5", "milliseconds"}));

  r = parse_config(R"({"lock_wait": "spin", "lock_poll_interval_ms": 0})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"lock_wait\"", "\"spin\"", "\"blocking\" or \"polling\""}));
  CHECK(any_error_contains(r.errors, {"\"lock_poll_interval_ms\"", "0", "milliseconds"}));

  r = parse_config(R"({"allow_anonymous": "yes"})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"allow_anonymous\"", "true or false"}));

  r = parse_config(R"({"dead_letter_strategy": "both"})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"dead_letter_strategy\"", "individual"}));

  r = parse_config(R"({"heartbeat_grace": 0.5})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"\"heartbeat_grace\"", "0.5"}));
}

TEST_CASE("issue 16: message_group_map_cache_size is read per policy, 1024 when absent, and range checked") {
  auto r = parse_config(R"({"destination_policies": [{"queue": "a.>", "message_group_map_cache_size": 16},
                                                     {"queue": "b"}]})", "cfg.json");
  REQUIRE(r.ok());
  const auto& p = r.value.engine.destination_policies;
  REQUIRE(p.size() == 2);
  CHECK(p[0].message_group_map_cache_size == 16);
  CHECK(p[1].message_group_map_cache_size == 1024);  // ActiveMQ's default cacheSize
  r = parse_config(R"({"destination_policies": [{"queue": "a", "message_group_map_cache_size": 0}]})", "cfg.json");
  CHECK(any_error_contains(r.errors, {"cfg.json", "message_group_map_cache_size", "0"}));
}

TEST_CASE("every error of a file is reported at once") {
  auto r = parse_config(R"({"threads": 0, "listn": "a:1", "sync": {"policy": "always", "intervl_ms": 3}})", "t.json");
  CHECK(r.errors.size() == 3);
  CHECK(any_error_contains(r.errors, {"\"threads\""}));
  CHECK(any_error_contains(r.errors, {"\"listn\"", "did you mean \"listen\""}));
  CHECK(any_error_contains(r.errors, {"\"sync.intervl_ms\"", "did you mean \"sync.interval_ms\""}));
}

TEST_CASE("invalid JSON is reported with file, line and column") {
  auto r = parse_config("{\n  \"threads\": 1,\n  oops\n}", "bad.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("bad.json:3:") != std::string::npos);
  CHECK(r.errors[0].find("not valid JSON") != std::string::npos);
}

TEST_CASE("a top level that is not an object is refused") {
  auto r = parse_config("[1, 2]", "t.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("JSON object") != std::string::npos);
}

TEST_CASE("users with password_hash are taken as is; plaintext passwords are listed and hashed on request") {
  std::string hash = "sha256:00112233445566778899aabbccddeeff:" + std::string(64, 'a');
  auto r = parse_config(
      R"({"users": [{"login": "alice", "password_hash": ")" + hash + R"("}, {"login": "bob", "password": "pw"}]})",
      "t.json");
  INFO(dump(r.errors));
  REQUIRE(r.ok());
  REQUIRE(r.value.engine.users.size() == 2);
  CHECK(r.value.engine.users[0].login == "alice");
  CHECK(r.value.engine.users[0].password_hash == hash);
  CHECK(r.value.engine.users[1].login == "bob");
  CHECK(r.value.engine.users[1].password_hash.empty());
  REQUIRE(r.value.plaintext_passwords.size() == 1);
  CHECK(r.value.plaintext_passwords[0].first == "bob");
  CHECK(r.value.plaintext_passwords[0].second == "pw");
  hash_plaintext_passwords(r.value, [](std::string_view p) { return "hashed(" + std::string(p) + ")"; });
  CHECK(r.value.engine.users[0].password_hash == hash);
  CHECK(r.value.engine.users[1].password_hash == "hashed(pw)");
}

TEST_CASE("the password hash form is checked") {
  CHECK(is_password_hash_form("sha256:0011:" + std::string(64, 'f')));
  CHECK_FALSE(is_password_hash_form("sha256:0011:" + std::string(63, 'f')));
  CHECK_FALSE(is_password_hash_form("sha256::" + std::string(64, 'f')));
  CHECK_FALSE(is_password_hash_form("sha256:00GG:" + std::string(64, 'f')));
  CHECK_FALSE(is_password_hash_form("md5:0011:" + std::string(64, 'f')));
  CHECK_FALSE(is_password_hash_form("plain"));
}

TEST_CASE("bad user entries are errors naming the entry") {
  auto r = parse_config(R"({"users": [{"login": "a"}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"users[0]", "exactly one of"}));
  r = parse_config(R"({"users": [{"login": "a", "password_hash": "md5:abc"}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"users[0].password_hash", "md5:abc", "--hash-password"}));
  r = parse_config(R"({"users": [{"login": "a", "passwrd": "x"}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"users[0].passwrd", "did you mean \"password\""}));
  r = parse_config(R"({"users": [{"login": "a", "password": "x"}, {"login": "a", "password": "y"}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"users[1]", "repeats login \"a\""}));
  r = parse_config(R"({"users": {"login": "a"}})", "t.json");
  CHECK(any_error_contains(r.errors, {"\"users\"", "a list of"}));
}

TEST_CASE("endpoints parse host and port, bracketed IPv6, and refuse bad forms") {
  endpoint_address a;
  CHECK(parse_endpoint("127.0.0.1:61613", a));
  CHECK(a == endpoint_address{"127.0.0.1", 61613});
  CHECK(parse_endpoint("[::1]:0", a));
  CHECK(a == endpoint_address{"::1", 0});
  CHECK(parse_endpoint("broker.example:1", a));
  CHECK(a.host == "broker.example");
  CHECK_FALSE(parse_endpoint("127.0.0.1", a));
  CHECK_FALSE(parse_endpoint(":61613", a));
  CHECK_FALSE(parse_endpoint("h:65536", a));
  CHECK_FALSE(parse_endpoint("h:6x", a));
  CHECK_FALSE(parse_endpoint("::1:80", a));
  CHECK_FALSE(parse_endpoint("[::1]80", a));
}

TEST_CASE("edit distance and the nearest key") {
  CHECK(edit_distance("", "abc") == 3u);
  CHECK(edit_distance("kitten", "sitting") == 3u);
  CHECK(edit_distance("same", "same") == 0u);
  CHECK(nearest_key("thread", config_keys()) == "threads");
  CHECK(nearest_key("brokername", config_keys()) == "broker_name");
  CHECK(nearest_key("x", config_keys()).empty());
}

TEST_CASE("command-line options override the file") {
  auto file = parse_config(R"({"store": "/a", "listen": "127.0.0.1:1000", "broker_name": "file",
                               "sync": "always", "threads": 1, "allow_anonymous": true})", "t.json");
  REQUIRE(file.ok());
  CLI::App app;
  command_line cl;
  add_command_line_options(app, cl);
  const char* argv[] = {"tandemd", "--store", "/b", "--listen", "127.0.0.1:2000", "--name", "cli",
                        "--sync", "periodic", "--threads", "3", "--lock-check-interval", "50",
                        "--create-store", "--admin", "127.0.0.1:2001", "--takeover-delay", "10",
                        "--lock-wait", "polling", "--lock-poll-interval-ms", "25"};
  REQUIRE_NOTHROW(app.parse(static_cast<int>(std::size(argv)), argv));
  std::vector<std::string> errors;
  apply_command_line(cl, file.value, errors);
  REQUIRE(errors.empty());
  const config& c = file.value;
  CHECK(c.store == "/b");
  CHECK(c.listen.port == 2000);
  CHECK(c.engine.broker_name == "cli");
  CHECK(c.sync == sync_policy::periodic);
  CHECK(c.threads == 3u);
  CHECK(c.lock_check_interval == std::chrono::milliseconds(50));
  CHECK(c.create_store);
  REQUIRE(c.admin_listen.has_value());
  CHECK(c.admin_listen->port == 2001);
  CHECK(c.takeover_delay == std::chrono::milliseconds(10));
  CHECK(c.lock_wait == lock_wait_mode::polling);
  CHECK(c.lock_poll_interval == std::chrono::milliseconds(25));
}

TEST_CASE("bad command-line values are errors naming the option") {
  CLI::App app;
  command_line cl;
  add_command_line_options(app, cl);
  const char* argv[] = {"tandemd", "--listen", "nowhere", "--sync", "maybe", "--threads", "0",
                        "--lock-wait", "spin", "--lock-poll-interval-ms", "5"};
  REQUIRE_NOTHROW(app.parse(static_cast<int>(std::size(argv)), argv));
  config c;
  std::vector<std::string> errors;
  apply_command_line(cl, c, errors);
  CHECK(any_error_contains(errors, {"--listen", "nowhere"}));
  CHECK(any_error_contains(errors, {"--sync", "maybe"}));
  CHECK(any_error_contains(errors, {"--threads", "0"}));
  CHECK(any_error_contains(errors, {"--lock-wait", "spin", "\"blocking\" or \"polling\""}));
  CHECK(any_error_contains(errors, {"--lock-poll-interval-ms", "5", "from 10 to 60000"}));
  CHECK(c.lock_wait == lock_wait_mode::blocking);
}

TEST_CASE("help lists every command-line option under its fixed name") {
  CLI::App app{"tandemd"};
  command_line cl;
  add_command_line_options(app, cl);
  std::string help = app.help();
  for (const char* flag : {"--config", "--store", "--listen", "--admin", "--name", "--create-store",
                           "--check-config", "--sync", "--threads", "--lock-check-interval", "--lock-wait",
                           "--lock-poll-interval-ms", "--hash-password"}) {
    INFO(flag);
    CHECK(help.find(flag) != std::string::npos);
  }
}

TEST_CASE("validation requires a store and someone who can log in") {
  config c;
  std::vector<std::string> errors;
  validate(c, errors);
  CHECK(any_error_contains(errors, {"store"}));
  CHECK(any_error_contains(errors, {"allow_anonymous"}));
  c.store = "/x";
  c.engine.allow_anonymous = true;
  errors.clear();
  validate(c, errors);
  CHECK(errors.empty());
}

TEST_CASE("a missing file is one error naming the path") {
  auto r = load_config_file("/nonexistent/dir/tandemd.json");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("/nonexistent/dir/tandemd.json") != std::string::npos);
}

TEST_CASE("a file on disk loads with its path as the source") {
  auto path = std::filesystem::temp_directory_path() / ("tandem_config_test_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(path);
    out << R"({"store": "/s", "allow_anonymous": true, "threads": 2})";
  }
  auto r = load_config_file(path);
  std::filesystem::remove(path);
  REQUIRE(r.ok());
  CHECK(r.value.source == path.string());
  CHECK(r.value.threads == 2u);
}

TEST_CASE("store_id names the one store a broker may serve, as 32 hex digits") {
  auto ok = parse_config(R"({"store": "/s", "store_id": "00112233445566778899AABBCCDDEEFF"})", "t.json");
  REQUIRE(ok.ok());
  CHECK(ok.value.store_id == "00112233445566778899aabbccddeeff");
  CHECK_FALSE(parse_config(R"({"store": "/s", "store_id": null})", "t.json").value.store_id.has_value());
  auto bad = parse_config(R"({"store": "/s", "store_id": "not-hex"})", "t.json");
  CHECK(any_error_contains(bad.errors, {"store_id", "32 hex digits"}));
}

TEST_CASE("issue 15: without a config file only loopback listeners may run with no security") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("[::1]"));
  CHECK(is_loopback_host("localhost"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("127.0.0"));
  CHECK_FALSE(is_loopback_host("127.0.0.1.5"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
  CHECK_FALSE(is_loopback_host("::"));

  config c;
  c.engine.allow_anonymous = true;  // what main sets without a file
  std::vector<std::string> errors;
  check_no_security_listeners(c, false, errors);
  CHECK(errors.empty());
  REQUIRE(parse_endpoint("0.0.0.0:61613", c.listen));
  check_no_security_listeners(c, false, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("not a loopback address") != std::string::npos);
  CHECK(errors[0].find("--config") != std::string::npos);
  errors.clear();
  check_no_security_listeners(c, true, errors);  // a config file opted in
  CHECK(errors.empty());
  c.engine.users.push_back({"alice", "sha256:00:00"});
  check_no_security_listeners(c, false, errors);  // users: security is on
  CHECK(errors.empty());
}

TEST_CASE("issue 17 keys: PBKDF2 hashes, groups, authorization entries, admin access, bounds") {
  CHECK(is_password_hash_form("pbkdf2-sha256:600000:0011:" + std::string(64, 'f')));
  CHECK_FALSE(is_password_hash_form("pbkdf2-sha256:999:0011:" + std::string(64, 'f')));  // too few iterations
  CHECK_FALSE(is_password_hash_form("pbkdf2-sha256:x:0011:" + std::string(64, 'f')));
  CHECK_FALSE(is_password_hash_form("pbkdf2-sha256:1000:0011:" + std::string(63, 'f')));
  auto r = parse_config(
      R"({"users": [{"login": "ops", "password": "pw", "groups": ["admin", "ops"]}],
          "authorization": [{"queue": "orders.>", "read": "shipping, ops", "write": ["shop"]},
                            {"topic": ">", "admin": ["ops"]}],
          "admin_open_reads": true, "admin_allowed_hosts": ["mq1.example"],
          "idle_timeout_ms": 0, "frame_timeout_ms": 500, "write_timeout_ms": 700, "tcp_keepalive_s": 30,
          "max_destinations": 5, "destination_gc_ms": 0, "max_destination_name_bytes": 64})",
      "t.json");
  REQUIRE(r.ok());
  CHECK(r.value.engine.users[0].groups == std::vector<std::string>{"admin", "ops"});
  REQUIRE(r.value.engine.authorization);
  REQUIRE(r.value.engine.authorization->size() == 2);
  CHECK((*r.value.engine.authorization)[0].read == std::vector<std::string>{"shipping", "ops"});
  CHECK((*r.value.engine.authorization)[1].topic);
  CHECK(r.value.admin_open_reads);
  CHECK(r.value.admin_allowed_hosts == std::vector<std::string>{"mq1.example"});
  CHECK(r.value.idle_timeout.count() == 0);
  CHECK(r.value.frame_timeout.count() == 500);
  CHECK(r.value.write_timeout.count() == 700);
  CHECK(r.value.tcp_keepalive.count() == 30);
  CHECK(r.value.engine.max_destinations == 5);
  CHECK(r.value.engine.destination_gc.count() == 0);
  CHECK(r.value.engine.max_destination_name_bytes == 64);
  CHECK_FALSE(parse_config("{}", "t.json").value.engine.authorization);  // absent: not checked

  r = parse_config(R"({"authorization": [{"queue": "a", "topic": "b"}, {"read": ["x"]}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"authorization[0]", "exactly one of"}));
  CHECK(any_error_contains(r.errors, {"authorization[1]", "exactly one of"}));
  r = parse_config(R"({"authorization": [{"qeue": "x"}, {"queue": "a", "read": [1]}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"authorization[0].qeue", "did you mean \"queue\""}));
  CHECK(any_error_contains(r.errors, {"authorization[1].read[0]", "non-empty string"}));
  r = parse_config(R"({"users": [{"login": "a", "password": "x", "groups": "admin"}]})", "t.json");
  CHECK(any_error_contains(r.errors, {"users[0].groups", "expected a list"}));
}
