// tandemd: one broker process of a shared-store master/slave group.
//
// Life cycle (STYLE.md section 3, "A takeover, lock to serving"):
//
//   starting --(store checked)--> slave --(lock acquired, epoch+1, takeover delay,
//   journal recovered, engine.recover)--> master --(SIGTERM)--> stopping --> exit 0
//                                            \--(lock lost / journal failed)--> exit 75
//   slave --(SIGTERM)--> exit 0 at once (the wait is cancelled)
//
// Threads:
// - main thread (and threads-1 more when configured): runs the io_context. The engine, the
//   server, its connections, the admin port and every journal completion live here.
// - "election" thread: everything that blocks or may hang on a network file system before we
//   serve: the lock wait, the epoch bump, the store identity, journal recovery. It posts its
//   result to the io thread. On SIGTERM as master it also runs the journal close (checkpoint,
//   fsync) and the lock release, so the io thread never blocks on the store.
// - the journal writer thread and the lock watchdog thread (owned by those libraries) report
//   by posting to the io thread too.
// - a disk-usage sampler thread stats the journal directory every few seconds for /metrics.
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#if TANDEM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broker/admin_http.h"
#include "broker/asio.h"
#include "broker/config.h"
#include "broker/config_schema.h"
#include "broker/engine.h"
#include "broker/engine/auth.h"
#include "broker/log.h"
#include "broker/server.h"
#include "broker/tls.h"
#include "journal/errc.h"
#include "journal/identity.h"
#include "journal/store.h"
#include "lockmgr/lock_manager.h"
#include "lockmgr/query.h"

namespace tandem::broker {
namespace {

constexpr int exit_ok = 0;
constexpr int exit_usage = 2;      // bad command line or config (EX_USAGE would be 64; 2 is CLI11's)
constexpr int exit_startup = 1;    // could not start (store missing, port in use, recovery refused)

journal::sync_policy to_journal(sync_policy p) {
  switch (p) {
    case sync_policy::always: return journal::sync_policy::always;
    case sync_policy::periodic: return journal::sync_policy::periodic;
    case sync_policy::never: return journal::sync_policy::never;
  }
  return journal::sync_policy::always;
}

// systemd's notification protocol (Type=notify in packaging/systemd/tandem@.service):
// READY=1 once the role is known (slave waiting, or master serving), STATUS= the role in
// words for `systemctl status`, STOPPING=1 on the way out. Without NOTIFY_SOCKET (not under
// systemd) sd_notify does nothing. Safe from any thread: one datagram per call.
void notify(const std::string& state) {
#if TANDEM_HAVE_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

// Journal events for the operator's log (the journal itself does not log).
void log_journal_event(const journal::event& e) {
  using k = journal::event_kind;
  auto file = e.file.string();
  switch (e.kind) {
    case k::torn_tail_truncated:
      log::warn("journal", "torn tail truncated", {log::kv("file", file), log::kv("offset", e.offset),
                                                   log::kv("bytes", e.bytes), log::kv("reason", e.reason)});
      break;
    case k::corruption_skipped:
      log::error("journal", "damaged range skipped (salvage)", {log::kv("file", file), log::kv("offset", e.offset),
                                                                 log::kv("bytes", e.bytes), log::kv("lsn", e.first_lsn),
                                                                 log::kv("reason", e.reason)});
      break;
    case k::corruption_found:
      log::error("journal", "mid-log corruption", {log::kv("file", file), log::kv("offset", e.offset),
                                                   log::kv("bytes", e.bytes), log::kv("lsn", e.first_lsn),
                                                   log::kv("reason", e.reason)});
      break;
    case k::fenced_records:
      log::warn("journal", "records of a deposed master ignored",
                {log::kv("file", file), log::kv("offset", e.offset), log::kv("count", e.count),
                 log::kv("first_lsn", e.first_lsn), log::kv("last_lsn", e.last_lsn), log::kv("bytes", e.bytes)});
      break;
    case k::checkpoint_loaded:
      log::info("journal", "checkpoint loaded", {log::kv("file", file), log::kv("lsn", e.first_lsn),
                                                 log::kv("took_ms", e.duration.count())});
      break;
    case k::checkpoint_fallback:
      log::warn("journal", "checkpoint rejected, falling back", {log::kv("file", file), log::kv("reason", e.reason)});
      break;
    case k::checkpoint_written:
      log::debug("journal", "checkpoint written", {log::kv("file", file), log::kv("lsn", e.first_lsn),
                                                   log::kv("bytes", e.bytes), log::kv("took_ms", e.duration.count())});
      break;
    case k::slow_fsync:
      log::warn("journal", "slow fsync", {log::kv("file", file), log::kv("took_ms", e.duration.count())});
      break;
    case k::segment_created:
      log::debug("journal", "segment created", {log::kv("file", file)});
      break;
    case k::segment_deleted:
      log::debug("journal", "segment deleted", {log::kv("file", file), log::kv("reason", e.reason)});
      break;
    case k::compaction_done:
      log::info("journal", "segment compacted", {log::kv("file", file), log::kv("records", e.count), log::kv("bytes", e.bytes)});
      break;
    case k::temp_file_removed:
      log::info("journal", "stale temporary removed", {log::kv("file", file)});
      break;
    case k::journal_failed:
      log::error("journal", "journal failed", {log::kv("file", file), log::kv("reason", e.reason)});
      break;
  }
}

// Sums the sizes of the files under DIR/journal every few seconds on its own thread (stat can
// hang on NFS; the io thread must not).
class disk_usage_sampler {
 public:
  explicit disk_usage_sampler(std::filesystem::path dir) : dir_(std::move(dir)), thread_([this] { run(); }) {}
  ~disk_usage_sampler() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      lock.unlock();
      std::uint64_t total = 0;
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(dir_, ec); !ec && it != std::filesystem::recursive_directory_iterator();
           it.increment(ec)) {
        std::error_code size_ec;
        if (it->is_regular_file(size_ec)) {
          auto s = it->file_size(size_ec);
          if (!size_ec) total += s;
        }
      }
      bytes_.store(total, std::memory_order_relaxed);
      lock.lock();
      wake_.wait_for(lock, std::chrono::seconds(5), [this] { return stop_; });
    }
  }
  std::filesystem::path dir_;
  std::atomic<std::uint64_t> bytes_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

class broker_process {
 public:
  broker_process(config cfg, bool from_file, std::shared_ptr<ssl::context> tls)
      : cfg_(std::move(cfg)), from_file_(from_file), tls_(std::move(tls)), io_(static_cast<int>(cfg_.threads)) {
    executor_ = cfg_.threads > 1 ? asio::any_io_executor(asio::make_strand(io_)) : asio::any_io_executor(io_.get_executor());
  }

  int run() {
    log::info("main", "starting", {log::kv("broker_name", cfg_.engine.broker_name), log::kv("store", cfg_.store.string()),
                                   log::kv("listen", cfg_.listen.to_string()), log::kv("sync", to_string(cfg_.sync)),
                                   log::kv("threads", cfg_.threads), log::kv("pid", ::getpid())});
    if (!from_file_)
      log::warn("main", "no config file: anonymous access is allowed", {log::kv("hint", "use --config FILE with users")});
    for (const auto& [login, _] : cfg_.plaintext_passwords)
      log::warn("main", "plaintext password in the config file",
                {log::kv("login", login), log::kv("file", cfg_.source), log::kv("hint", "replace it with tandemd --hash-password")});

    if (int rc = check_store(); rc != exit_ok) return rc;

    work_.emplace(io_.get_executor());
    signals_.emplace(executor_, SIGINT, SIGTERM);
    signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) on_signal(sig);
    });
    if (cfg_.admin_listen && !open_admin()) return exit_startup;

    lockmgr_ = open_lock_manager();
    if (!lockmgr_) return exit_startup;
    election_ = std::thread([this] { elect(); });

    std::vector<std::thread> extra;
    for (unsigned i = 1; i < cfg_.threads; ++i) extra.emplace_back([this] { io_.run(); });
    io_.run();
    for (auto& t : extra) t.join();
    if (election_.joinable()) election_.join();
    // Everything below runs with the io_context stopped: no handler can touch what we destroy.
    server_.reset();
    admin_.reset();
    engine_.reset();
    store_.reset();
    return exit_code_;
  }

 private:
  enum class role { starting, slave, recovering, master, stopping };
  static const char* role_name(role r) {
    switch (r) {
      case role::starting: return "starting";
      case role::slave: return "slave";
      case role::recovering: return "recovering";
      case role::master: return "master";
      case role::stopping: return "stopping";
    }
    return "?";
  }

  // A broker never serves an empty directory because the shared mount was not mounted: the
  // store must exist unless --create-store.
  int check_store() {
    auto id = journal::read_identity(fs::posix_file_system(), cfg_.store);
    if (id) {
      store_id_ = id.value().id.to_hex();
      if (cfg_.store_id && *cfg_.store_id != store_id_) {
        log::error("main", "a different store than the config names",
                   {log::kv("store", cfg_.store.string()), log::kv("store_id", store_id_),
                    log::kv("expected_store_id", *cfg_.store_id), log::kv("config", cfg_.source),
                    log::kv("hint", "check which file system is mounted at the store path, or fix store_id in the config")});
        return exit_startup;
      }
      return exit_ok;
    }
    if (id.error() == journal::errc::not_a_store && cfg_.create_store) {
      std::error_code ec;
      std::filesystem::create_directories(cfg_.store, ec);
      if (ec) {
        log::error("main", "cannot create the store directory", {log::kv("store", cfg_.store.string()), log::kv("error", ec.message())});
        return exit_startup;
      }
      return exit_ok;  // created under the lock, in elect()
    }
    if (id.error() == journal::errc::not_a_store) {
      log::error("main", "not a store: no identity file",
                 {log::kv("store", cfg_.store.string()),
                  log::kv("hint", "check that the shared file system is mounted; to create a new store pass --create-store")});
    } else {
      log::error("main", "cannot read the store identity",
                 {log::kv("store", cfg_.store.string()), log::kv("error", id.error().message())});
    }
    return exit_startup;
  }

  bool open_admin() {
    admin_sources sources;
    sources.health = [this] { return health_json(); };
    sources.metrics = [this] { return metrics_text(); };
    sources.destinations = [this] { return engine_ && role_ == role::master ? engine_->destinations_json() : nlohmann::json(); };
    sources.connections = [this] { return engine_ && role_ == role::master ? engine_->connections_json() : nlohmann::json(); };
    sources.purge = [this](std::string destination, admin_sources::purge_reply reply) {
      if (!engine_ || role_ != role::master) {
        reply(503, {{"error", fmt::format("not master (role {}): purge on the master", role_name(role_))}});
        return;
      }
      bool found = engine_->purge(destination, [reply, destination](std::error_code ec, std::uint64_t purged) {
        if (ec) {
          log::error("admin", "purge failed", {log::kv("destination", destination), log::kv("error", ec.message())});
          reply(500, {{"error", "the journal could not record the purge: " + ec.message()}});
          return;
        }
        log::info("admin", "destination purged", {log::kv("destination", destination), log::kv("purged", purged)});
        reply(200, {{"destination", destination}, {"purged", purged}});
      });
      if (!found) reply(404, {{"error", fmt::format("no destination \"{}\"", destination)}});
    };
    admin_ = std::make_unique<admin_http>(executor_, std::move(sources));
    asio::ip::tcp::endpoint bound;
    if (auto ec = admin_->open(*cfg_.admin_listen, bound)) {
      log::error("admin", "cannot listen", {log::kv("address", cfg_.admin_listen->to_string()), log::kv("error", ec.message())});
      return false;
    }
    admin_->start();
    log::info("admin", "admin listening", {log::kv("address", bound.address().to_string()), log::kv("port", bound.port())});
    return true;
  }

  nlohmann::json health_json() const {
    nlohmann::json j;
    j["ok"] = role_ == role::master || role_ == role::slave || role_ == role::recovering;
    j["role"] = role_name(role_);
    j["epoch"] = epoch_;
    j["store"] = cfg_.store.string();
    j["store_id"] = store_id_;
    j["broker_name"] = cfg_.engine.broker_name;
    if (role_ == role::slave || role_ == role::starting) j["holder"] = holder_.is_null() ? nlohmann::json() : holder_;
    if (server_) j["connections"] = server_->connection_count();
    j["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_).count();
    return j;
  }

  std::string metrics_text() const {
    std::string out;
    out += "# HELP tandem_role 1 for the role this process has now.\n# TYPE tandem_role gauge\n";
    for (role r : {role::slave, role::recovering, role::master}) {
      out += fmt::format("tandem_role{{role=\"{}\"}} {}\n", role_name(r), r == role_ ? 1 : 0);
    }
    out += fmt::format("# HELP tandem_epoch Master epoch of this process (0 before the lock).\n# TYPE tandem_epoch gauge\ntandem_epoch {}\n", epoch_);
    out += fmt::format("# HELP tandem_uptime_seconds Seconds since this process started.\n# TYPE tandem_uptime_seconds gauge\n"
                       "tandem_uptime_seconds {}\n",
                       std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_).count());
    // A process takes over at most once (a deposed one exits): 0 or 1. Sum it over the
    // group's processes, or read tandem_epoch, for the store's count.
    out += fmt::format("# HELP tandem_takeovers_total Times this process became master.\n# TYPE tandem_takeovers_total counter\n"
                       "tandem_takeovers_total {}\n", takeovers_);
    out += fmt::format("# HELP tandem_recovery_seconds Lock acquired to serving, at the last takeover (journal recovery "
                       "included).\n# TYPE tandem_recovery_seconds gauge\ntandem_recovery_seconds {}\n",
                       static_cast<double>(recovery_time_.count()) / 1000.0);
    out += fmt::format("# HELP tandem_journal_recovery_seconds Journal recovery (checkpoint load and replay) at the last "
                       "takeover.\n# TYPE tandem_journal_recovery_seconds gauge\ntandem_journal_recovery_seconds {}\n",
                       static_cast<double>(journal_recovery_time_.count()) / 1000.0);
    if (lockmgr_) {
      const auto& ls = lockmgr_->stats();
      out += fmt::format("# HELP tandem_lock_checks_total Mastership checks (lock file, epoch) run while master.\n"
                         "# TYPE tandem_lock_checks_total counter\ntandem_lock_checks_total {}\n",
                         ls.checks.load(std::memory_order_relaxed));
      out += fmt::format("# HELP tandem_lock_check_failures_total Mastership checks that found the lock lost (the process "
                         "then steps down).\n# TYPE tandem_lock_check_failures_total counter\ntandem_lock_check_failures_total {}\n",
                         ls.failures.load(std::memory_order_relaxed));
      out += fmt::format("# HELP tandem_lock_check_seconds_total Time spent in mastership checks.\n"
                         "# TYPE tandem_lock_check_seconds_total counter\ntandem_lock_check_seconds_total {}\n",
                         static_cast<double>(ls.nanoseconds.load(std::memory_order_relaxed)) / 1e9);
      out += fmt::format("# HELP tandem_lock_check_max_seconds The slowest mastership check so far.\n"
                         "# TYPE tandem_lock_check_max_seconds gauge\ntandem_lock_check_max_seconds {}\n",
                         static_cast<double>(ls.max_nanoseconds.load(std::memory_order_relaxed)) / 1e9);
    }
    out += fmt::format("# HELP tandem_connections Open STOMP connections.\n# TYPE tandem_connections gauge\ntandem_connections {}\n",
                       server_ ? server_->connection_count() : 0);
    out += fmt::format("# HELP tandem_connections_accepted_total STOMP connections accepted.\n# TYPE tandem_connections_accepted_total counter\n"
                       "tandem_connections_accepted_total {}\n", server_ ? server_->accepted_total() : 0);
    out += fmt::format("# HELP tandem_connections_refused_total Connections refused at max_connections.\n# TYPE tandem_connections_refused_total counter\n"
                       "tandem_connections_refused_total {}\n", server_ ? server_->refused_total() : 0);
    if (store_) {
      const auto& idx = store_->index();
      out += fmt::format("# HELP tandem_journal_live_messages Live (destination, message) entries in the journal index.\n"
                         "# TYPE tandem_journal_live_messages gauge\ntandem_journal_live_messages {}\n", idx.live_messages());
      out += fmt::format("# HELP tandem_journal_live_bytes Bytes of live records in the journal.\n"
                         "# TYPE tandem_journal_live_bytes gauge\ntandem_journal_live_bytes {}\n", idx.live_bytes());
      out += fmt::format("# HELP tandem_journal_last_lsn Last log sequence number applied.\n"
                         "# TYPE tandem_journal_last_lsn counter\ntandem_journal_last_lsn {}\n", idx.last_lsn());
      const journal::io_stats& st = store_->stats();
      out += fmt::format("# HELP tandem_journal_appends_total Records appended to the journal.\n"
                         "# TYPE tandem_journal_appends_total counter\ntandem_journal_appends_total {}\n",
                         st.appends.load(std::memory_order_relaxed));
      out += "# HELP tandem_journal_fsync_seconds Duration of the journal's fdatasync calls.\n"
             "# TYPE tandem_journal_fsync_seconds histogram\n";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < journal::io_stats::fsync_bucket_seconds.size(); ++i) {
        cumulative += st.fsync_buckets[i].load(std::memory_order_relaxed);
        out += fmt::format("tandem_journal_fsync_seconds_bucket{{le=\"{}\"}} {}\n", journal::io_stats::fsync_bucket_seconds[i], cumulative);
      }
      cumulative += st.fsync_buckets.back().load(std::memory_order_relaxed);
      out += fmt::format("tandem_journal_fsync_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
      out += fmt::format("tandem_journal_fsync_seconds_sum {}\n", static_cast<double>(st.fsync_nanoseconds.load(std::memory_order_relaxed)) / 1e9);
      out += fmt::format("tandem_journal_fsync_seconds_count {}\n", cumulative);  // = +Inf bucket, read once
    }
    if (disk_) {
      out += fmt::format("# HELP tandem_journal_disk_bytes Bytes of files under the store's journal directory.\n"
                         "# TYPE tandem_journal_disk_bytes gauge\ntandem_journal_disk_bytes {}\n", disk_->bytes());
    }
    if (engine_ && role_ == role::master) engine_->append_metrics(out);
    return out;
  }

  // GC and compaction of the journal in small steps on the io thread (the store requires its
  // owner thread): 1 MiB of copying per step, steps 10 ms apart while there is work, else a
  // look every second, so appends never wait long behind it.
  asio::awaitable<void> compaction_loop() {
    asio::steady_timer timer(executor_);
    try {
      while (role_ == role::master && store_) {
        bool more = store_->compact_step(1u << 20);
        timer.expires_after(more ? std::chrono::milliseconds(10) : std::chrono::seconds(1));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    } catch (const std::exception& e) {
      log::error("journal", "compaction stopped", {log::kv("error", e.what())});
    }
  }

  std::unique_ptr<lockmgr::lock_manager> open_lock_manager();
  void elect();
  void on_master(std::unique_ptr<journal::store> store, std::uint64_t epoch, journal::recovery_report report,
                 std::chrono::steady_clock::time_point lock_at);

  void on_signal(int sig) {
    log::info("main", "signal received", {log::kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"), log::kv("role", role_name(role_))});
    notify(fmt::format("STOPPING=1\nSTATUS={}, stopping on {}", role_name(role_), sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    stop_requested_ = true;
    switch (role_) {
      case role::starting:
      case role::slave:
        // The election thread is blocked in the lock wait: cancel it; it posts finish(0).
        lockmgr_->cancel();
        break;
      case role::recovering:
        break;  // on_master sees stop_requested_ and shuts down right after recovery
      case role::master:
        graceful_shutdown();
        break;
      case role::stopping:
        break;
    }
    if (signals_) {
      signals_->async_wait([this](const boost::system::error_code& ec, int s) {
        if (!ec) on_signal(s);
      });
    }
  }

  // SIGTERM as master: no new clients, stop the engine, close connections, then journal close
  // (checkpoint + fsync) and lock release off the io thread, then exit 0.
  void graceful_shutdown() {
    if (role_ == role::stopping) return;
    role_ = role::stopping;
    log::info("main", "stopping", {log::kv("connections", server_ ? server_->connection_count() : 0)});
    if (server_) server_->stop_accepting();
    if (engine_) engine_->shutdown();
    if (server_) server_->stop_connections("broker shutting down");
    if (election_.joinable()) election_.join();
    election_ = std::thread([this] {
      std::error_code close_ec;
      if (store_) close_ec = store_->close();
      if (close_ec) log::error("journal", "close failed", {log::kv("error", close_ec.message())});
      auto release_ec = lockmgr_->release();
      if (release_ec) log::error("lockmgr", "release failed", {log::kv("error", release_ec.message())});
      else log::info("lockmgr", "lock released");
      asio::post(executor_, [this, rc = close_ec ? exit_startup : exit_ok] { finish(rc); });
    });
  }

  // Mastership lost or the journal failed: stop at once. No checkpoint, no release, no
  // more writes of any kind: another process may already be master. _exit skips the store's
  // destructor, which would try to write a checkpoint.
  void step_down(std::string_view reason) {
    log::error("main", "stepping down: mastership lost", {log::kv("reason", reason), log::kv("epoch", epoch_),
                                                          log::kv("exit_code", lockmgr::exit_code_deposed)});
    role_ = role::stopping;
    notify(fmt::format("STOPPING=1\nSTATUS=stepping down (exit {}): {}", lockmgr::exit_code_deposed, reason));
    if (server_) server_->stop_accepting();
    if (engine_) engine_->shutdown();
    if (server_) server_->stop_connections("broker stepping down");
    std::fflush(stderr);
    std::_Exit(lockmgr::exit_code_deposed);
  }

  void finish(int rc) {
    exit_code_ = rc;
    if (admin_) admin_->stop();
    if (server_) server_->stop_accepting();
    signals_.reset();
    work_.reset();
    disk_.reset();
    log::info("main", "exit", {log::kv("code", rc)});
    io_.stop();
  }

  config cfg_;
  bool from_file_;
  std::shared_ptr<ssl::context> tls_;  // made at start (tls.h says why); null without tls_listen
  std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
  asio::io_context io_;
  asio::any_io_executor executor_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::optional<asio::signal_set> signals_;

  std::unique_ptr<lockmgr::lock_manager> lockmgr_;
  std::thread election_;
  std::unique_ptr<journal::store> store_;
  std::unique_ptr<engine> engine_;
  std::unique_ptr<server> server_;
  std::unique_ptr<admin_http> admin_;
  std::unique_ptr<disk_usage_sampler> disk_;

  std::atomic<bool> stop_requested_{false};
  role role_ = role::starting;
  std::uint64_t epoch_ = 0;
  std::uint64_t takeovers_ = 0;
  std::chrono::milliseconds recovery_time_{0};
  std::chrono::milliseconds journal_recovery_time_{0};
  std::string store_id_;
  nlohmann::json holder_;
  int exit_code_ = exit_ok;
};

// ---- the election: lockmgr glue ----------------------------------------------------------

std::unique_ptr<lockmgr::lock_manager> broker_process::open_lock_manager() {
  lockmgr::options o;
  o.dir = cfg_.store;
  o.broker_name = cfg_.engine.broker_name;
  o.client_url = fmt::format("tcp://{}", cfg_.listen.to_string());
  o.check_interval = cfg_.lock_check_interval;
  o.takeover_delay = cfg_.takeover_delay;
  o.file_system = &fs::posix_file_system();
  auto m = lockmgr::lock_manager::open(o);
  if (!m) {
    log::error("lockmgr", "cannot open the lock file", {log::kv("store", cfg_.store.string()), log::kv("error", m.error().message())});
    return nullptr;
  }
  return std::move(m).value();
}

void broker_process::elect() {
  auto post_finish = [this](int rc) { asio::post(executor_, [this, rc] { finish(rc); }); };
  // Log once whom we wait for (not each poll), from a lock query (F_OFD_GETLK, never a
  // try-lock). Only a slave logs this; a free lock goes straight to "lock acquired".
  asio::post(executor_, [this] { role_ = role::slave; });
  if (auto q = lockmgr::query(cfg_.store); q && q.value().held) {
    const auto& st = q.value();
    std::string held_by = st.holder ? fmt::format("{} (pid {} on {}, epoch {})", st.holder->broker_name, st.holder->pid,
                                                  st.holder->host, st.holder->epoch)
                                    : "an unknown process (no holder record)";
    log::info("main", fmt::format("slave: waiting for lock, held by {}", held_by), {log::kv("store", cfg_.store.string())});
    // The role is known: a slave is "ready" for systemd (it does what it should: wait).
    notify(fmt::format("READY=1\nSTATUS=slave, waiting for {}", held_by));
    nlohmann::json holder = st.holder ? lockmgr::to_json(*st.holder) : nlohmann::json();
    asio::post(executor_, [this, holder] { holder_ = holder; });
  } else {
    notify("STATUS=acquiring the lock of " + cfg_.store.string());
  }
  auto acquired = lockmgr_->acquire();
  if (!acquired) {
    if (acquired.error() == lockmgr::errc::cancelled) {
      log::info("main", "slave: lock wait cancelled");
      post_finish(exit_ok);
    } else {
      log::error("lockmgr", "cannot acquire the lock", {log::kv("error", acquired.error().message())});
      post_finish(exit_startup);
    }
    return;
  }
  auto lock_at = std::chrono::steady_clock::now();
  const lockmgr::acquisition& a = acquired.value();
  std::uint64_t epoch = a.epoch;
  log::info("lockmgr", "lock acquired", {log::kv("epoch", epoch), log::kv("previous_clean", a.previous_released_cleanly),
                                         log::kv("fs", a.fs_kind), log::kv("takeover_delay_ms", a.takeover_delay.count()),
                                         log::kv("waited_ms", a.waited.count()), log::kv("why", a.takeover.reason)});
  asio::post(executor_, [this] { role_ = role::recovering; });
  notify(fmt::format("STATUS=recovering the journal, epoch {}", epoch));

  // Under the lock: create the store if asked and absent (nobody else can be creating it).
  auto id = journal::read_identity(fs::posix_file_system(), cfg_.store);
  if (!id && id.error() == journal::errc::not_a_store && cfg_.create_store) {
    auto created = journal::create_store(fs::posix_file_system(), cfg_.store);
    if (!created) {
      log::error("main", "cannot create the store", {log::kv("store", cfg_.store.string()), log::kv("error", created.error().message())});
      lockmgr_->release();
      post_finish(exit_startup);
      return;
    }
    log::info("main", "store created", {log::kv("store", cfg_.store.string()), log::kv("store_id", created.value().id.to_hex())});
    id = created;
  }
  if (!id) {
    log::error("main", "cannot read the store identity", {log::kv("store", cfg_.store.string()), log::kv("error", id.error().message())});
    lockmgr_->release();
    post_finish(exit_startup);
    return;
  }

  // A store created just now was not known at check_store: /health shows it from here on.
  asio::post(executor_, [this, hex = id.value().id.to_hex()] { store_id_ = hex; });
  journal::options jo;
  jo.expected_store_id = id.value().id;
  jo.epoch = epoch;
  jo.broker_name = cfg_.engine.broker_name;
  jo.segment_bytes = cfg_.segment_bytes;
  jo.sync = to_journal(cfg_.sync);
  jo.sync_interval = cfg_.sync_interval;
  jo.body_cache_bytes = cfg_.body_cache_bytes;
  jo.producer_window = cfg_.engine.dedup_window;
  jo.post = [ex = executor_](std::function<void()> f) { asio::post(ex, std::move(f)); };
  jo.fence = [m = lockmgr_.get()] { return m->fence_check(); };
  jo.report = [this](const journal::event& e) {
    log_journal_event(e);
    if (e.kind == journal::event_kind::journal_failed)
      asio::post(executor_, [this, reason = e.reason] { step_down("journal failed: " + reason); });
  };
  journal::recovery_report report;
  auto store = journal::store::open(cfg_.store, jo, report);
  if (!store) {
    if (report.refused) {
      log::error("journal", "recovery refused: mid-log corruption",
                 {log::kv("file", report.refused->file.string()), log::kv("offset", report.refused->offset),
                  log::kv("lsn", report.refused->lsn), log::kv("reason", report.refused->reason),
                  log::kv("hint", fmt::format("run: tandem-journal verify {}", cfg_.store.string()))});
    } else {
      log::error("journal", "cannot open the journal", {log::kv("store", cfg_.store.string()), log::kv("error", store.error().message())});
    }
    // We hold the lock but cannot serve: release it so an operator sees the store free and
    // the error above, rather than a silent hung master.
    lockmgr_->release();
    post_finish(exit_startup);
    return;
  }
  asio::post(executor_, [this, s = std::move(store).value(), epoch, report, lock_at]() mutable {
    on_master(std::move(s), epoch, std::move(report), lock_at);
  });
}

void broker_process::on_master(std::unique_ptr<journal::store> store, std::uint64_t epoch, journal::recovery_report report,
                               std::chrono::steady_clock::time_point lock_at) {
  store_ = std::move(store);
  epoch_ = epoch;
  holder_ = nullptr;
  disk_ = std::make_unique<disk_usage_sampler>(cfg_.store / "journal");
  engine_ = std::make_unique<engine>(cfg_.engine, store_.get());
  engine_->recover();
  server_ = std::make_unique<server>(executor_, *engine_, cfg_);
  asio::ip::tcp::endpoint bound;
  if (auto ec = server_->open(bound)) {
    log::error("server", "cannot listen", {log::kv("address", cfg_.listen.to_string()), log::kv("error", ec.message())});
    // Give the store back cleanly: another broker may be able to serve it.
    role_ = role::master;
    exit_code_ = exit_startup;
    graceful_shutdown();
    return;
  }
  asio::ip::tcp::endpoint tls_bound;
  if (cfg_.tls_listen) {
    if (auto ec = server_->open_tls(tls_, tls_bound)) {
      log::error("server", "cannot listen (tls)", {log::kv("address", cfg_.tls_listen->to_string()), log::kv("error", ec.message())});
      role_ = role::master;
      exit_code_ = exit_startup;
      graceful_shutdown();
      return;
    }
  }
  server_->start();
  role_ = role::master;
  // A takeover that replayed a long journal tail checkpoints at once: otherwise the next
  // takeover replays that tail again, and more (checkpoint_every_bytes is 64 MiB of appends,
  // which a master killed after a few seconds never reaches). Found by tandem-drill.
  if (report.records_replayed > 4096) store_->checkpoint();
  asio::co_spawn(executor_, compaction_loop(), asio::detached);
  // The watchdog calls on_lost on its own thread: hop to the io thread.
  if (auto ec = lockmgr_->start_watchdog([this](const std::string& reason) {
        asio::post(executor_, [this, reason] { step_down(reason); });
      })) {
    step_down("cannot start the lock watchdog: " + ec.message());
    return;
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - lock_at);
  ++takeovers_;
  recovery_time_ = took;
  journal_recovery_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(report.duration);
  if (cfg_.tls_listen)
    log::info("server", "stomp tls listening", {log::kv("address", tls_bound.address().to_string()), log::kv("port", tls_bound.port()),
                                                  log::kv("verify_client", cfg_.tls_verify_client)});
  log::info("server", "stomp listening", {log::kv("address", bound.address().to_string()), log::kv("port", bound.port())});
  log::info("main", "master", {log::kv("epoch", epoch_), log::kv("recovered", report.live_messages), log::kv("bytes", report.live_bytes),
                               log::kv("took_ms", took.count()), log::kv("records_replayed", report.records_replayed),
                               log::kv("from_checkpoint", report.from_checkpoint), log::kv("journal_ms", report.duration.count())});
  std::string serving = fmt::format("{}:{}", bound.address().to_string(), bound.port());
  if (cfg_.tls_listen) serving += fmt::format(" and {}:{} (tls)", tls_bound.address().to_string(), tls_bound.port());
  notify(fmt::format("READY=1\nSTATUS=master, epoch {}, serving on {}", epoch_, serving));
  if (stop_requested_) graceful_shutdown();
}

std::string read_password_from_stdin() {
  std::string line;
  std::getline(std::cin, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace
}  // namespace tandem::broker

int main(int argc, char** argv) {
  using namespace tandem::broker;
  CLI::App app{"tandemd: a persistent STOMP 1.2 broker; brokers sharing one --store elect a master by file lock"};
  command_line cl;
  add_command_line_options(app, cl);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.count("--hash-password") > 0) {
    std::string password = *cl.hash_password == "-" ? read_password_from_stdin() : *cl.hash_password;
    if (password.empty()) {
      std::fprintf(stderr, "tandemd: --hash-password: the password is empty\n");
      return exit_usage;
    }
    std::printf("%s\n", hash_password(password).c_str());
    return 0;
  }
  if (cl.print_config_reference) {
    std::fputs(render_config_reference().c_str(), stdout);
    return 0;
  }
  if (cl.check_config_file) {
    auto r = load_config_file(*cl.check_config_file);
    if (r.ok()) validate(r.value, r.errors);
    std::string why;
    if (r.ok() && r.value.tls_listen && !make_tls_context(r.value, why)) r.errors.push_back(why);
    for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.c_str());
    if (!r.ok()) return exit_usage;
    std::printf("%s: ok\n", cl.check_config_file->string().c_str());
    return 0;
  }
  config cfg;
  std::vector<std::string> errors;
  bool from_file = cl.config_file.has_value();
  if (from_file) {
    auto r = load_config_file(*cl.config_file);
    errors = std::move(r.errors);
    cfg = std::move(r.value);
  } else {
    // Quick start without a file: nobody configured users, so anonymous access (logged).
    cfg.engine.allow_anonymous = true;
  }
  if (errors.empty()) apply_command_line(cl, cfg, errors);
  if (errors.empty()) validate(cfg, errors);
  if (!errors.empty()) {
    for (const auto& e : errors) std::fprintf(stderr, "tandemd: %s\n", e.c_str());
    return exit_usage;
  }
  log::level lvl = log::level::info;
  log::parse_level(cfg.log_level, lvl);
  log::init(lvl);
  hash_plaintext_passwords(cfg, [](std::string_view p) { return hash_password(p); });
  try {
    std::shared_ptr<ssl::context> tls;
    if (cfg.tls_listen) {
      std::string why;
      tls = make_tls_context(cfg, why);
      if (!tls) {
        std::fprintf(stderr, "tandemd: %s\n", why.c_str());
        return exit_usage;
      }
    }
    broker_process process(std::move(cfg), from_file, std::move(tls));
    return process.run();
  } catch (const std::exception& e) {
    log::error("main", "fatal", {log::kv("error", e.what())});
    return 1;
  }
}
