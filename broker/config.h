// tandemd's configuration: the JSON file, the command line, and how they combine.
//
// The file is one JSON object with snake_case keys (example in broker/README.md). The schema,
// broker/config_schema.json, is the authority on keys, types, ranges and defaults (it
// validates every file, see config_schema.h, and docs/configuration.md is made from it); the
// table below is a summary:
//
//   key                     type / form                          default
//   listen                  "HOST:PORT" ("[::1]:61613" for IPv6)  "127.0.0.1:61613"
//   admin_listen            "HOST:PORT" or null (no admin port)   null
//   admin_tls_listen        "HOST:PORT" or null: the admin port     null
//                           over HTTPS (with the TLS settings below)
//   admin_open_reads        bool: GET /metrics, /api/* open       false (no config file and a
//                                                                 loopback admin_listen: true)
//   admin_allowed_hosts     ["name", "name:port"]: Host / Origin  []
//   group_admin_urls        ["http://HOST:PORT"]: peers' admin     []
//   store                   path of the shared store directory    (required)
//   create_store            bool: create the store if missing     false
//   store_id                32 hex digits (the store's identity,  null (any store)
//                           /health "store_id") or null: refuse
//                           to serve any other store
//   broker_name             string                                "tandem"
//   sync                    "always" | "periodic" | "never", or
//                           {"policy": ..., "interval_ms": N}     "always", interval 100 ms
//   segment_bytes           integer >= 1 MiB                      32 MiB
//   body_cache_bytes        integer                               64 MiB
//   threads                 integer 1..64 (connection threads)    1
//   lock_check_interval_ms  integer >= 10                         1000
//   lock_wait               "blocking" | "polling" (a slave's     "blocking"
//                           wait for the lock, lockmgr::wait_mode)
//   lock_poll_interval_ms   integer 10..60000 (with "polling")    500
//   takeover_delay_ms       integer >= 0, or null = lockmgr's     null (lockmgr decides by fs type)
//                           default by file-system type
//   checkpoint_preload_interval_ms  integer 0..60000: a slave     250
//                           looks this often for a new checkpoint
//                           to preload (journal/standby.h); 0 = off
//   checkpoint_preload_segment_bytes  integer >= 0: a slave holds  134217728
//                           at most this much of the sealed segments
//                           after that checkpoint; 0 = none
//   fence_command           shell command or null (broker/fence_hook.h)  null
//   fence_after_ms          integer 100..600000                  5000
//   fence_timeout_ms        integer 100..600000                  30000
//   connect_timeout_ms      integer >= 100: a client must CONNECT 10000
//   log_level               "debug" | "info" | "warn" | "error"   "info"
//   allow_anonymous         bool                                  false with a file
//   users                   [{"login": s, "password_hash": s}]    []
//                           or {"login": s, "password": s} (plaintext: accepted, hashed at
//                           startup, and warned about; use `tandemd --hash-password`)
//   tls_listen              "HOST:PORT" or null: STOMP over TLS   null
//   tls_cert, tls_key       PEM files (required with tls_listen)
//   tls_ca                  PEM CA file; tls_verify_client (bool) requires client certificates
//   ws_listen, wss_listen   "HOST:PORT" or null: STOMP over WebSocket null
//                           (wss: with the TLS settings above)
//   ws_allowed_origins      ["https://app.example"] or ["*"]      []
//   and every engine_config field (broker/engine_config.h) under its own name; durations carry
//   their unit in the key: send_timeout_ms, heartbeat_send_ms, heartbeat_expect_ms.
//
// Unknown keys and bad values are errors. Each error names the key, the file, the bad value
// and the expected form, and for an unknown key the nearest valid key (edit distance), so a
// typo like "segment_byte" says `did you mean "segment_bytes"?`. All errors of a file are
// reported at once, not only the first.
//
// Without a config file (quick start: --store/--listen) the broker allows anonymous access
// and main logs so. Command-line options override the file.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/engine_config.h"

namespace CLI {
class App;
}

namespace tandem::broker {

struct endpoint_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 61613;  // 0 = any free port (the bound port is logged)
  std::string to_string() const;
  friend bool operator==(const endpoint_address&, const endpoint_address&) = default;
};
// "HOST:PORT", "[V6]:PORT". False (and `out` untouched) on a bad form.
bool parse_endpoint(std::string_view text, endpoint_address& out);

enum class sync_policy { always, periodic, never };
std::string_view to_string(sync_policy p);
bool parse_sync_policy(std::string_view text, sync_policy& out);

// How a slave waits for the lock (lockmgr::wait_mode; the config module does not link lockmgr).
enum class lock_wait_mode { blocking, polling };
std::string_view to_string(lock_wait_mode w);
bool parse_lock_wait(std::string_view text, lock_wait_mode& out);

struct config {
  std::string source = "command line";  // the file it came from, for messages
  endpoint_address listen;
  std::optional<endpoint_address> admin_listen;
  // The admin port over HTTPS (admin_http.h), with tls_cert / tls_key / tls_ca, so HTTP Basic
  // credentials do not cross the management network in the clear. Beside or instead of
  // admin_listen.
  std::optional<endpoint_address> admin_tls_listen;
  // Admin port access (broker/admin_guard.h): GET /metrics and /api/* without credentials,
  // and the extra names (DNS names of the admin address) Host and Origin may carry.
  bool admin_open_reads = false;
  std::vector<std::string> admin_allowed_hosts;
  // The other brokers' admin ports ("http://HOST:PORT"), for the console's group view.
  std::vector<std::string> group_admin_urls;
  // The TLS listener (broker/tls.h): certificate, key, and client verification.
  std::optional<endpoint_address> tls_listen;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  bool tls_verify_client = false;
  // STOMP over WebSocket (broker/ws_transport.h, ws_policy.h); wss uses the TLS settings.
  std::optional<endpoint_address> ws_listen;
  std::optional<endpoint_address> wss_listen;
  std::vector<std::string> ws_allowed_origins;
  // A listener needs the TLS context (tls_listen, wss_listen or admin_tls_listen).
  bool uses_tls() const { return tls_listen.has_value() || wss_listen.has_value() || admin_tls_listen.has_value(); }
  std::filesystem::path store;
  bool create_store = false;
  // The identity the store must have (lowercase hex); unset = any Tandem store. Guards against
  // a mount of the wrong store at the configured path.
  std::optional<std::string> store_id;
  sync_policy sync = sync_policy::always;
  std::chrono::milliseconds sync_interval{100};
  std::uint64_t segment_bytes = 32ull << 20;
  std::uint64_t body_cache_bytes = 64ull << 20;
  unsigned threads = 1;
  std::chrono::milliseconds lock_check_interval{1000};
  lock_wait_mode lock_wait = lock_wait_mode::blocking;
  std::chrono::milliseconds lock_poll_interval{500};
  std::optional<std::chrono::milliseconds> takeover_delay;
  // How often a slave looks for a new checkpoint to read and decode ahead of a takeover
  // (journal/standby.h); 0 = it preloads nothing.
  std::chrono::milliseconds checkpoint_preload_interval{250};
  // At most this many bytes of the sealed segments after the preloaded checkpoint, held by
  // a slave so that its takeover reads only the last segment (journal/standby.h); 0 = none.
  std::uint64_t checkpoint_preload_segment_bytes = 128ull << 20;
  // The fence hook (broker/fence_hook.h): unset = no fencing.
  std::optional<std::string> fence_command;
  std::chrono::milliseconds fence_after{5000};
  std::chrono::milliseconds fence_timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};
  // Bounds after CONNECT (broker/connection.h connection_options says what each does).
  std::chrono::milliseconds idle_timeout{300000};
  std::chrono::milliseconds frame_timeout{60000};
  std::chrono::milliseconds write_timeout{60000};
  std::chrono::seconds tcp_keepalive{60};
  std::string log_level = "info";
  // Users given with a plaintext "password": (login, password). Their engine.users entry has
  // an empty password_hash until hash_plaintext_passwords() fills it; main warns about each.
  std::vector<std::pair<std::string, std::string>> plaintext_passwords;
  engine_config engine;
};

// What loading produced: the config, and every error (empty = ok).
struct config_result {
  config value;
  std::vector<std::string> errors;
  bool ok() const { return errors.empty(); }
};

// Parse JSON text. `source` names the file in messages. Starts from `base` (defaults), with
// allow_anonymous false unless the file says so.
config_result parse_config(std::string_view json_text, std::string_view source, config base = {});
// Read and parse a file; an unreadable file is one error naming the path and errno text.
config_result load_config_file(const std::filesystem::path& path);

// The command line. Every option is optional so that "not given" keeps the file's value.
struct command_line {
  std::optional<std::filesystem::path> config_file;
  std::optional<std::filesystem::path> check_config_file;  // --check-config FILE
  std::optional<std::string> hash_password;                // --hash-password PASSWORD ("-": stdin)
  bool hash_password_given = false;
  bool print_config_reference = false;                     // --print-config-reference
  std::optional<std::filesystem::path> store;
  std::optional<std::string> listen;
  std::optional<std::string> admin;
  std::optional<std::string> name;
  bool create_store = false;
  std::optional<std::string> sync;
  std::optional<unsigned> threads;
  std::optional<unsigned> lock_check_interval_ms;
  std::optional<std::string> lock_wait;
  std::optional<unsigned> lock_poll_interval_ms;
  std::optional<unsigned> takeover_delay_ms;
  std::optional<unsigned> checkpoint_preload_interval_ms;
  std::optional<std::string> log_level;
};

// Register every option on `app` (so --help lists them all), writing into `out`.
void add_command_line_options(CLI::App& app, command_line& out);
// tandemd's whole command line into `out` (hash_password_given included). nullopt: go on;
// otherwise CLI11 has answered (--help printed, or a usage error on stderr) and this is the
// exit status. Both in config_command_line.cpp, the one file with CLI11.
std::optional<int> parse_command_line(int argc, char** argv, command_line& out);

// Apply command-line values over `cfg` (they win over the file). Bad values are appended to
// `errors` naming the option.
void apply_command_line(const command_line& cl, config& cfg, std::vector<std::string>& errors);

// Final checks that need the merged result (e.g. a store is required).
void validate(const config& cfg, std::vector<std::string>& errors);

// "No security" (no users, anonymous allowed: every CONNECT is accepted whatever its login,
// as ActiveMQ without an authentication plugin) is the development default of a broker
// started without a config file, and it is only safe where only this host can connect.
// The rule: without a config file, every client listener (listen, tls_listen) must bind a
// loopback address (127.0.0.0/8, ::1, localhost), else tandemd refuses to start and says
// so. A config file that sets "allow_anonymous": true with no "users" opts in to no
// security on any address, on purpose (tandemd warns at start). Appends the refusal to
// `errors`.
void check_no_security_listeners(const config& cfg, bool from_file, std::vector<std::string>& errors);
// True for 127.0.0.0/8, ::1 (also as [::1]) and "localhost".
bool is_loopback_host(std::string_view host);

// "sha256:<salt hex>:<64 hex digest>", the form engine_config.h documents (format only; the
// engine's auth checks passwords against it).
bool is_password_hash_form(std::string_view text);
// Fills the password_hash of every user given in plaintext, with `hasher` (the engine's auth).
// The config module stays free of the engine so tools can read config files.
void hash_plaintext_passwords(config& cfg, const std::function<std::string(std::string_view)>& hasher);

// Every key the file accepts, for suggestions and for tests.
const std::vector<std::string_view>& config_keys();
// The key nearest to `unknown` by edit distance if close enough to be a typo, else "".
std::string_view nearest_key(std::string_view unknown, const std::vector<std::string_view>& keys);
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace tandem::broker
