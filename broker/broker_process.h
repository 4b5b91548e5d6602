// broker_process: one tandemd process of a shared-store master/slave group. It owns the
// io_context, the signals and the role machine (Asio's http server example: main.cpp parses
// the command line, this runs).
//
// Life cycle (STYLE.md section 3, "A takeover, lock to serving"):
//
//   starting --(store checked)--> slave --(lock acquired, epoch+1, takeover delay,
//   journal recovered, engine.recover)--> master --(SIGTERM)--> stopping --> exit 0
//                                            \--(lock lost / journal failed)--> exit 75
//   slave --(SIGTERM)--> exit 0 at once (the wait is cancelled)
//
// Threads (broker/README.md has the full table):
// - the thread calling run() runs the io_context io_ (context 0). The engine, the server,
//   the admin port and every journal completion live there, and with `threads: 1` every
//   connection too.
// - with `threads: N` > 1, N-1 more threads each run an io_context of connections_pool_;
//   the server hands new connections to contexts 0..N-1 round robin (docs/threads.md).
// - "election" thread: everything that blocks or may hang on a network file system before we
//   serve: the lock wait, the epoch bump, the store identity, journal recovery. It posts its
//   result to the io thread. On SIGTERM as master it also runs the journal close (checkpoint,
//   fsync) and the lock release, so the io thread never blocks on the store.
// - the journal writer thread and the lock watchdog thread (owned by those libraries) report
//   by posting to the io thread too.
// - a disk_usage_sampler thread stats the journal directory every few seconds for /metrics.
// - a disk_space_guard thread (master) watches the store's free space and keeps its reserve
//   file (disk_space_guard.h); it posts "full" / "room again" to the io thread.
//
// Compaction: the journal store is the one compaction driver (journal::options
// auto_compact_bytes, see open_store in broker_process.cpp); the process runs none.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/asio.h"
#include "broker/checkpoint_preload.h"
#include "broker/config.h"
#include "broker/disk_space_guard.h"
#include "broker/tls.h"
#include "lockmgr/history.h"

namespace tandem::journal {
class message_store;
class store;
struct recovery_report;
namespace pg {
class lease;
class store;
}  // namespace pg
}  // namespace tandem::journal
namespace tandem::lockmgr {
class lock_manager;
}  // namespace tandem::lockmgr

namespace tandem::broker {

namespace prometheus {
struct sliced_families;
}
class admin_http;
class credential_checker;
class fence_hook;
class disk_usage_sampler;
class engine;
class server;

// tandemd's exit codes (lockmgr::exit_code_deposed, 75, is the fourth).
inline constexpr int exit_ok = 0;
inline constexpr int exit_startup = 1;  // could not start (store missing, port in use, recovery refused)
inline constexpr int exit_usage = 2;    // bad command line or config (EX_USAGE would be 64; 2 is CLI11's)

class broker_process {
 public:
  // `from_file`: cfg came from a config file (without one, anonymous access is logged).
  // `tls`: the context for cfg.tls_listen (tls.h says why it is made before run), or null.
  broker_process(config cfg, bool from_file, std::shared_ptr<ssl::context> tls);
  ~broker_process();
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;

  // Runs the process to its end on the calling thread; returns the exit code. Once only.
  int run();

 private:
  enum class role { starting, slave, recovering, master, stopping };
  static const char* role_name(role r);

  int check_store();
  bool open_admin();
  // Opens and starts one admin port (scheme "http" or "https"), logs it, notes its origins.
  bool listen_admin(admin_http& admin, const endpoint_address& address, std::string_view scheme);
  // Runs `slow` on the login worker, then `done(result)` on the broker's executor.
  void offload_login(std::function<bool()> slow, std::function<void(bool)> done);
  nlohmann::json health_json() const;
  // The whole exposition in pieces to be sent one after the other; the engine's
  // per-destination families are moved out of `scrape` (what admin_sources::metrics_slice
  // gathered; what it lacks is rendered here in one go).
  std::vector<std::string> metrics_pieces(prometheus::sliced_families& scrape) const;

  // The election thread.
  std::unique_ptr<lockmgr::lock_manager> open_lock_manager();
  void elect();
  void announce_wait();
  // After acquire(): stops the fence hook, waiting for a fence run in progress (fence_hook.h).
  void end_fence_watch(fence_hook* hook, bool acquired);
  std::unique_ptr<checkpoint_preload> start_checkpoint_preload();  // null when configured off
  // clean_release_epoch: journal::options::clean_release_epoch (0 after an unclean end).
  std::unique_ptr<journal::store> open_store(std::uint64_t epoch, std::uint64_t clean_release_epoch,
                                             std::shared_ptr<journal::preloaded_checkpoint> preloaded,
                                             journal::recovery_report& report);
  // The PostgreSQL store (broker/pg_store_process.cpp): the same steps with the election
  // and the fence in the database (journal/pg/lease.h) instead of lockmgr.
  bool uses_database() const;
  int check_database_store();
  void elect_in_database();
  std::unique_ptr<journal::pg::store> open_database_store(std::uint64_t epoch, journal::recovery_report& report);
  void log_replication();
  std::error_code release_mastership(bool journal_closed);
  void cancel_election();
  std::error_code start_mastership_watch();

  // The io thread.
  void on_master(std::unique_ptr<journal::message_store> store, std::uint64_t epoch, const journal::recovery_report& report,
                 std::chrono::steady_clock::time_point lock_at);
  bool open_listeners(asio::ip::tcp::endpoint& bound, asio::ip::tcp::endpoint& tls_bound);
  void announce_master(const nlohmann::json& previous, std::chrono::milliseconds took);
  bool reserve_memory_baseline();
  void on_signal(int sig);
  void graceful_shutdown();
  // The end of graceful_shutdown once no connection is left: journal close and lock release
  // on the election thread, then finish().
  void close_store_and_release(std::chrono::steady_clock::time_point stopping_at);
  void step_down(std::string_view reason);
  void start_space_guard();
  void on_space(const disk_space_guard::status& st);
  void finish(int rc);

  config cfg_;
  bool from_file_;
  std::shared_ptr<ssl::context> tls_;  // null without a TLS listener (config::uses_tls)
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  // Declared before io_, so destroyed after it: a handler still queued on io_ may hold the
  // last reference to a connection whose socket belongs to one of these.
  std::vector<std::unique_ptr<asio::io_context>> connection_pool_;
  asio::io_context io_;
  asio::any_io_executor executor_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::optional<asio::signal_set> signals_;
  // The takeover's checkpoint, a little after the port opens (on_master says why).
  std::optional<asio::steady_timer> takeover_checkpoint_timer_;

  std::unique_ptr<lockmgr::lock_manager> lockmgr_;
  std::thread election_;
  // Logins (STOMP and admin) share one checker; its slow hash runs on login_pool_ (one
  // thread: a login storm waits its turn instead of taking every core).
  std::shared_ptr<credential_checker> credentials_;
  std::optional<asio::thread_pool> login_pool_;
  std::unique_ptr<journal::message_store> store_;
  journal::store* journal_ = nullptr;     // store_ when it is the journal (metrics, disk)
  journal::pg::store* database_ = nullptr;  // store_ when it is PostgreSQL
  std::unique_ptr<journal::pg::lease> lease_;  // the election of a PostgreSQL store
  std::unique_ptr<engine> engine_;
  std::unique_ptr<server> server_;
  std::unique_ptr<admin_http> admin_;
  std::unique_ptr<admin_http> admin_tls_;  // admin_tls_listen: the same views over HTTPS
  std::unique_ptr<disk_usage_sampler> disk_;
  std::unique_ptr<disk_space_guard> space_;  // master only: the full-store floor and reserve
  std::atomic<bool> journal_open_{false};    // journal_failed before this is open's error, not a loss
  // The epoch whose master this slave's own fence command cut off (0: none yet); the fence
  // hook's thread writes it, the lock manager's acquire() reads it (no lease wait then).
  std::atomic<std::uint64_t> fenced_epoch_{0};

  std::atomic<bool> stop_requested_{false};
  role role_ = role::starting;
  std::uint64_t epoch_ = 0;
  std::uint64_t takeovers_ = 0;
  std::chrono::milliseconds recovery_time_{0};
  std::chrono::milliseconds journal_recovery_time_{0};
  std::string store_id_;
  // "http://HOST:PORT" once the admin port is bound (or "https://..." with only
  // admin_tls_listen), for holder.json
  std::string admin_url_;
  // The admin port's own origins ("http://NAME:PORT"): its console may open a WebSocket.
  std::vector<std::string> console_origins_;
  // Role changes go through set_role, which stamps role_since_ms_ (Unix ms, for /health).
  void set_role(role r);
  std::vector<std::string> configured_client_urls() const;
  std::int64_t role_since_ms_ = 0;
  struct stint {
    std::uint64_t epoch;
    std::int64_t since_ms;     // Unix ms when it became master
    std::int64_t takeover_ms;  // lock acquired -> serving
  };
  std::vector<stint> stints_;             // this process's mastership stints, newest last (<= 100)
  // The store's history of masters (DIR/masters.jsonl, lockmgr/history.h), for the console's
  // timeline across restarts: read by the election thread while a slave waits, written
  // (and read back) on login_pool_ once this master serves. The entry being built travels
  // from the election thread to on_master in pending_history_.
  struct history_draft {
    lockmgr::master_stint stint;
    std::optional<std::string> previous_released_at;
  };
  std::optional<history_draft> pending_history_;
  nlohmann::json history_ = nlohmann::json::array();
  void record_history(std::chrono::milliseconds took);
  void load_history();  // not on the io thread: it reads the shared mount
  std::vector<std::string> client_urls_;  // bound client listeners while master
  // The WebSocket listeners bound as master ("ws" / "wss", endpoint), for the log and STATUS.
  std::vector<std::pair<std::string, asio::ip::tcp::endpoint>> ws_bound_;
  nlohmann::json holder_;
  // While a slave: the checkpoint its preload holds (/health "preloaded_checkpoint").
  nlohmann::json preloaded_;
  int exit_code_ = exit_ok;
};

}  // namespace tandem::broker
