// broker_process (see broker_process.h). Divisions:
//   1. start: store check, admin port
//   2. the election thread: lock, identity, journal recovery (lockmgr and journal glue)
//   3. master: engine, listeners, watchdog
//   4. stop: signals, graceful shutdown, step-down
//   5. /health and /metrics
#include "broker/broker_process.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <vector>

#include <fmt/format.h>

#include "broker/admin_guard.h"
#include "broker/admin_http.h"
#include "broker/disk_space_guard.h"
#include "broker/disk_usage_sampler.h"
#include "broker/engine.h"
#include "broker/engine/auth.h"
#include "broker/engine/credentials.h"
#include "broker/fence_hook.h"
#include "broker/journal_log.h"
#include "broker/log.h"
#include "broker/process_metrics.h"
#include "broker/server.h"
#include "broker/systemd_notify.h"
#include "journal/errc.h"
#include "journal/identity.h"
#include "journal/pg/lease.h"
#include "journal/pg/store.h"
#include "journal/store.h"
#include "lockmgr/lock_manager.h"
#include "lockmgr/query.h"

namespace tandem::broker {
namespace {

// A journal tail longer than this is checkpointed: soon after a takeover that replayed it,
// and at SIGTERM (journal::options::close_checkpoint_min_records).
constexpr std::uint64_t takeover_checkpoint_records = 4096;
// How long after the port opens that checkpoint waits: the clients that were waiting for a
// master reconnect and get their first RECEIPTs first. At once, its index encode ran on the
// io thread (4.6-18 ms at 100,000 pending) and its 3 MB write beside their first group
// commits: on the CephFS kill drill the first message accepted came 42 ms after the port
// opened with it, 28 ms without (80 takeovers; bench/results/cephfs-drill.md, session 17).
constexpr std::chrono::milliseconds takeover_checkpoint_delay{300};

journal::sync_policy to_journal(sync_policy p) {
  switch (p) {
    case sync_policy::always: return journal::sync_policy::always;
    case sync_policy::periodic: return journal::sync_policy::periodic;
    case sync_policy::never: return journal::sync_policy::never;
  }
  return journal::sync_policy::always;
}

std::chrono::milliseconds ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t);
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

broker_process::broker_process(config cfg, bool from_file, std::shared_ptr<ssl::context> tls)
    : cfg_(std::move(cfg)), from_file_(from_file), tls_(std::move(tls)), io_(1) {
  executor_ = io_.get_executor();
  for (unsigned i = 1; i < cfg_.threads; ++i) connection_pool_.push_back(std::make_unique<asio::io_context>(1));
}

broker_process::~broker_process() = default;

const char* broker_process::role_name(role r) {
  switch (r) {
    case role::starting: return "starting";
    case role::slave: return "slave";
    case role::recovering: return "recovering";
    case role::master: return "master";
    case role::stopping: return "stopping";
  }
  return "?";
}

// ---- 1. start ------------------------------------------------------------------------------

int broker_process::run() {
  log::info("main", "starting", {log::kv("broker_name", cfg_.engine.broker_name), log::kv("store", cfg_.store.string()),
                                 log::kv("listen", cfg_.listen.to_string()), log::kv("sync", to_string(cfg_.sync)),
                                 log::kv("threads", cfg_.threads), log::kv("pid", ::getpid())});
  if (!from_file_)
    log::warn("main", "no config file: anonymous access is allowed, any login is accepted unchecked (loopback only)",
              {log::kv("hint", "use --config FILE with users")});
  else if (cfg_.engine.users.empty() && cfg_.engine.allow_anonymous)
    log::warn("main", "no users configured: anonymous access is allowed, any login is accepted unchecked",
              {log::kv("file", cfg_.source), log::kv("listen", cfg_.listen.to_string())});
  for (const auto& [login, _] : cfg_.plaintext_passwords)
    log::warn("main", "plaintext password in the config file",
              {log::kv("login", login), log::kv("file", cfg_.source), log::kv("hint", "replace it with tandemd --hash-password")});

  for (const auto& u : cfg_.engine.users) {
    if (is_legacy_hash(u.password_hash))
      log::warn("main", "password hash to be rehashed",
                {log::kv("login", u.login), log::kv("file", cfg_.source),
                 log::kv("hint", "the sha256: form is one round of SHA-256; replace it with the output of "
                                 "`tandemd --hash-password -` (PBKDF2)")});
  }
  credentials_ = std::make_shared<credential_checker>(cfg_.engine.users);
  login_pool_.emplace(1);

  if (int rc = uses_database() ? check_database_store() : check_store(); rc != exit_ok) return rc;

  work_.emplace(io_.get_executor());
  signals_.emplace(executor_, SIGINT, SIGTERM);
  signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (!ec) on_signal(sig);
  });
  if ((cfg_.admin_listen || cfg_.admin_tls_listen) && !open_admin()) return exit_startup;

  if (uses_database()) {
    election_ = std::thread([this] { elect_in_database(); });
  } else {
    lockmgr_ = open_lock_manager();
    if (!lockmgr_) return exit_startup;
    election_ = std::thread([this] { elect(); });
  }

  // threads > 1: each connection context runs on a thread of its own until io_ stops.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> pool_work;
  std::vector<std::thread> pool_threads;
  for (auto& context : connection_pool_) {
    pool_work.emplace_back(context->get_executor());
    pool_threads.emplace_back([&context] { context->run(); });
  }
  io_.run();
  pool_work.clear();
  for (auto& context : connection_pool_) context->stop();
  for (auto& t : pool_threads) t.join();
  if (election_.joinable()) election_.join();
  login_pool_->join();  // a check still running posts to the stopped io_context: dropped
  // Everything below runs with the io_context stopped: no handler can touch what we destroy.
  server_.reset();
  admin_.reset();
  admin_tls_.reset();
  engine_.reset();
  store_.reset();
  return exit_code_;
}

// A broker never serves an empty directory because the shared mount was not mounted: the
// store must exist unless --create-store.
int broker_process::check_store() {
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
  } else if (id.error() == std::error_condition(ESHUTDOWN, std::generic_category()) ||
             id.error() == std::errc::not_connected) {
    // A fenced CephFS client answers ESHUTDOWN to every call until it is mounted again; a
    // FUSE mount whose daemon died answers ENOTCONN. Restarting the broker cannot help.
    log::error("main", "cannot read the store identity: the store's mount is cut off (fenced, or its client died)",
               {log::kv("store", cfg_.store.string()), log::kv("error", id.error().message()),
                log::kv("hint", "unmount and mount the file system again on this host, then restart the broker")});
  } else {
    log::error("main", "cannot read the store identity",
               {log::kv("store", cfg_.store.string()), log::kv("error", id.error().message())});
  }
  return exit_startup;
}

void broker_process::offload_login(std::function<bool()> slow, std::function<void(bool)> done) {
  asio::post(*login_pool_, [slow = std::move(slow), done = std::move(done), ex = executor_]() mutable {
    bool ok = slow();
    asio::post(ex, [done = std::move(done), ok] { done(ok); });
  });
}

namespace {

// The console shows the start of each body; the full body stays a STOMP browse away.
constexpr std::size_t browse_preview_bytes = 1024;

admin_identity identity_of(const login_verdict& v, const login_attempt& a) {
  admin_identity id;
  id.result = v.result == login_verdict::outcome::accepted    ? admin_identity::outcome::accepted
              : v.result == login_verdict::outcome::throttled ? admin_identity::outcome::throttled
                                                              : admin_identity::outcome::refused;
  id.groups = v.groups;
  id.detail = v.explain(a);
  id.retry_after_s = static_cast<unsigned>(v.retry_after.count());
  return id;
}

bool is_loopback(const std::string& host) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(host, ec);
  return host == "localhost" || (!ec && a.is_loopback());
}

}  // namespace

bool broker_process::open_admin() {
  admin_sources sources;
  sources.authenticate = [this](std::string login, std::string password, std::string peer,
                                admin_sources::authenticate_reply reply) {
    login_attempt a{std::move(login), std::move(password), std::move(peer)};
    if (auto quick = credentials_->quick(a, credential_checker::clock::now())) return reply(identity_of(*quick, a));
    offload_login([checker = credentials_, a] { return checker->verify(a); },
                  [this, a, reply = std::move(reply)](bool ok) {
                    reply(identity_of(credentials_->record(a, ok, credential_checker::clock::now()), a));
                  });
  };
  sources.health = [this] { return health_json(); };
  sources.metrics = [this] {
    prometheus::sliced_families scrape;
    std::string text;
    for (const auto& piece : metrics_pieces(scrape)) text += piece;
    return text;
  };
  sources.metrics_slice = [this](prometheus::sliced_families& scrape, std::size_t max) {
    // Not master (or no longer): no destinations to render.
    return !engine_ || role_ != role::master || engine_->append_destination_metrics(scrape, max);
  };
  sources.metrics_sliced = [this](prometheus::sliced_families& scrape) { return metrics_pieces(scrape); };
  sources.destinations = [this] { return engine_ && role_ == role::master ? engine_->destinations_json() : nlohmann::json(); };
  sources.destination_figures = [this](destination_cursor& at, std::size_t max,
                                       const std::string& filter) -> std::optional<destination_slice> {
    if (!engine_ || role_ != role::master) return std::nullopt;
    return engine_->destination_figures_after(at, max, filter);
  };
  sources.destination = [this](const std::string& name, bool topic) {
    return engine_ && role_ == role::master ? engine_->destination_json(name, topic) : nlohmann::json();
  };
  sources.connection_keys = [this](std::uint64_t after, std::size_t max, const std::string& filter,
                                   const std::string& sort) -> std::optional<admin_sources::connection_slice> {
    if (!engine_ || role_ != role::master) return std::nullopt;
    auto keys = engine_->connection_keys(after, max, filter, sort);
    admin_sources::connection_slice out{{}, keys.looked_at, keys.last, keys.done};
    out.matched.reserve(keys.matched.size());
    for (const auto& [session, figure] : keys.matched) out.matched.push_back({session, figure});
    return out;
  };
  sources.connection = [this](std::uint64_t session) {
    return engine_ && role_ == role::master ? engine_->connection_json(session) : nlohmann::json();
  };
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
  sources.scheduled = [this](std::size_t offset, std::size_t limit, admin_sources::purge_reply reply) {
    if (!engine_ || role_ != role::master) {
      reply(503, {{"error", fmt::format("not master (role {}): scheduled messages on the master", role_name(role_))}});
      return;
    }
    engine_->scheduled_json(offset, limit, [reply](nlohmann::json page) { reply(200, std::move(page)); });
  };
  sources.cancel_scheduled = [this](std::string job_id, admin_sources::purge_reply reply) {
    if (!engine_ || role_ != role::master) {
      reply(503, {{"error", fmt::format("not master (role {}): cancel on the master", role_name(role_))}});
      return;
    }
    engine_->cancel_scheduled(job_id, [reply, job_id](std::error_code ec, std::uint64_t cancelled) {
      if (ec) {
        log::error("admin", "cancel of scheduled messages failed", {log::kv("job_id", job_id), log::kv("error", ec.message())});
        reply(500, {{"error", "the journal could not record the cancel: " + ec.message()}});
      } else if (cancelled == 0 && !job_id.empty()) {
        reply(404, {{"error", fmt::format("no scheduled job \"{}\"", job_id)}});
      } else {
        log::info("admin", "scheduled messages cancelled", {log::kv("job_id", job_id.empty() ? "(all)" : job_id),
                                                            log::kv("cancelled", cancelled)});
        reply(200, {{"job_id", job_id}, {"cancelled", cancelled}});
      }
    });
  };
  sources.browse = [this](const std::string& queue, std::uint64_t after, std::size_t limit, admin_sources::purge_reply reply) {
    if (!engine_ || role_ != role::master) {
      reply(503, {{"error", fmt::format("not master (role {}): browse on the master", role_name(role_))}});
      return;
    }
    if (!engine_->browse_json(queue, after, limit, browse_preview_bytes,
                              [reply](nlohmann::json slice) { reply(200, std::move(slice)); }))
      reply(404, {{"error", fmt::format("no queue \"{}\" (browse takes a /queue/ name)", queue)}});
  };
  admin_access access;
  // Without a config file (quick start) nobody could hold credentials: reads stay open, on a
  // loopback address only; a purge still needs a user in group "admin".
  access.open_reads = cfg_.admin_open_reads || (!from_file_ && cfg_.admin_listen && is_loopback(cfg_.admin_listen->host));
  access.allowed_hosts = cfg_.admin_allowed_hosts;
  access.group_admin_urls = cfg_.group_admin_urls;
  for (const auto* address : {&cfg_.admin_listen, &cfg_.admin_tls_listen})
    if (*address && access.open_reads && !is_loopback((*address)->host))
      log::warn("admin", "admin reads are open to every caller on a non-loopback address",
                {log::kv("address", (*address)->to_string()),
                 log::kv("hint", "set admin_open_reads to false and give monitoring a user in group \"metrics\"")});
  if (cfg_.admin_listen) {
    admin_ = std::make_unique<admin_http>(executor_, sources, access);
    if (!listen_admin(*admin_, *cfg_.admin_listen, "http")) return false;
  }
  if (cfg_.admin_tls_listen) {
    admin_tls_ = std::make_unique<admin_http>(executor_, std::move(sources), std::move(access), tls_);
    if (!listen_admin(*admin_tls_, *cfg_.admin_tls_listen, "https")) return false;
  }
  return true;
}

bool broker_process::listen_admin(admin_http& admin, const endpoint_address& address, std::string_view scheme) {
  asio::ip::tcp::endpoint bound;
  if (auto ec = admin.open(address, bound)) {
    log::error("admin", "cannot listen", {log::kv("address", address.to_string()), log::kv("scheme", scheme),
                                          log::kv("error", ec.message())});
    return false;
  }
  admin.start();
  for (const auto& name : admin_guard::own_names(bound.address().to_string(), bound.port(), cfg_.admin_allowed_hosts))
    console_origins_.push_back(fmt::format("{}://{}", scheme, name));
  if (admin_url_.empty())
    admin_url_ = bound.address().is_v6() ? fmt::format("{}://[{}]:{}", scheme, bound.address().to_string(), bound.port())
                                         : fmt::format("{}://{}:{}", scheme, bound.address().to_string(), bound.port());
  // "admin listening" for HTTP as before (scripts and tests wait for it), "admin https
  // listening" for the TLS port.
  log::info("admin", scheme == "https" ? "admin https listening" : "admin listening",
            {log::kv("address", bound.address().to_string()), log::kv("port", bound.port())});
  return true;
}

// ---- 2. the election thread ------------------------------------------------------------------

std::unique_ptr<lockmgr::lock_manager> broker_process::open_lock_manager() {
  lockmgr::options o;
  o.dir = cfg_.store;
  o.broker_name = cfg_.engine.broker_name;
  o.client_url = fmt::format("tcp://{}", cfg_.listen.to_string());
  o.check_interval = cfg_.lock_check_interval;
  o.mode = cfg_.lock_wait == lock_wait_mode::polling ? lockmgr::wait_mode::polling : lockmgr::wait_mode::blocking;
  o.poll_interval = cfg_.lock_poll_interval;
  o.takeover_delay = cfg_.takeover_delay;
  o.file_system = &fs::posix_file_system();
  // For a slave's fence hook: where to probe us, and which file-system client to evict.
  o.admin_url = admin_url_;
  o.mount_client_id = read_mount_client_id(cfg_.store);
  // Our own fence cut that master off: its lease need not be waited (docs/failover.md 1a).
  o.predecessor_fenced = [this](std::uint64_t epoch) { return epoch != 0 && fenced_epoch_.load() == epoch; };
  // The first full check comes with the journal's open (its fence, before it writes), so
  // that its metadata round trips overlap the journal's reading. Nothing writes to the store
  // before: open_store checks first when it has to create the store's identity.
  o.check_before_acquire_returns = false;
  auto m = lockmgr::lock_manager::open(o);
  if (!m) {
    log::error("lockmgr", "cannot open the lock file", {log::kv("store", cfg_.store.string()), log::kv("error", m.error().message())});
    return nullptr;
  }
  if (const auto& t = m.value()->takeover(); !t.warning.empty())
    log::warn("lockmgr", "unsafe takeover delay ignored", {log::kv("store", cfg_.store.string()), log::kv("why", t.warning)});
  return std::move(m).value();
}

// Logs once whom we wait for (not each poll), from a lock query (F_OFD_GETLK, never a
// try-lock). Only a slave logs this; a free lock goes straight to "lock acquired".
void broker_process::announce_wait() {
  auto q = lockmgr::query(cfg_.store);
  if (!q || !q.value().held) {
    notify_systemd("STATUS=acquiring the lock of " + cfg_.store.string());
    return;
  }
  const auto& st = q.value();
  std::string held_by = st.holder ? fmt::format("{} (pid {} on {}, epoch {})", st.holder->broker_name, st.holder->pid,
                                                st.holder->host, st.holder->epoch)
                                  : "an unknown process (no holder record)";
  const auto& how = lockmgr_->settings();
  const auto message = fmt::format("slave: waiting for lock, held by {}", held_by);
  if (how.mode == lockmgr::wait_mode::polling)
    log::info("main", message, {log::kv("store", cfg_.store.string()), log::kv("lock_wait", "polling"),
                                log::kv("poll_interval_ms", how.poll_interval.count())});
  else
    log::info("main", message, {log::kv("store", cfg_.store.string()), log::kv("lock_wait", "blocking")});
  // The role is known: a slave is "ready" for systemd (it does what it should: wait).
  notify_systemd(fmt::format("READY=1\nSTATUS=slave, waiting for {}", held_by));
  nlohmann::json holder = st.holder ? lockmgr::to_json(*st.holder) : nlohmann::json();
  asio::post(executor_, [this, holder] { holder_ = holder; });
  load_history();
}

namespace {
nlohmann::json history_json(const std::vector<lockmgr::master_stint>& stints) {
  auto out = nlohmann::json::array();
  for (const auto& s : stints) out.push_back(lockmgr::to_json(s));
  return out;
}
}  // namespace

void broker_process::load_history() {
  auto h = lockmgr::read_history(fs::posix_file_system(), cfg_.store, 100);
  if (!h) {
    log::warn("main", "cannot read the history of masters (the console's timeline starts empty)",
              {log::kv("file", (cfg_.store / lockmgr::history_file_name).string()), log::kv("error", h.error().message())});
    return;
  }
  asio::post(executor_, [this, j = history_json(h.value())] { history_ = j; });
}

// Once serving: this master's line in DIR/masters.jsonl, off the io thread (the mount may
// be slow), and the file read back for the console.
void broker_process::record_history(std::chrono::milliseconds took) {
  if (!pending_history_) return;  // the database store has no shared directory
  auto draft = std::move(*pending_history_);
  pending_history_.reset();
  draft.stint.serving_at_ms = unix_ms_now();
  draft.stint.start_ms = took.count();
  draft.stint.failover_ms = lockmgr::failover_ms(draft.stint, draft.previous_released_at);
  asio::post(*login_pool_, [this, s = std::move(draft.stint)] {
    if (auto ec = lockmgr::append_history(fs::posix_file_system(), cfg_.store, s))
      log::warn("main", "cannot add this master to the history of masters (only the console's timeline misses it)",
                {log::kv("file", (cfg_.store / lockmgr::history_file_name).string()), log::kv("error", ec.message())});
    load_history();
  });
}

void broker_process::elect() {
  auto post_finish = [this](int rc) { asio::post(executor_, [this, rc] { finish(rc); }); };
  asio::post(executor_, [this] { set_role(role::slave); });
  announce_wait();
  std::unique_ptr<fence_hook> fence;
  if (cfg_.fence_command) {
    fence = std::make_unique<fence_hook>(fence_settings{*cfg_.fence_command, cfg_.fence_after, cfg_.fence_timeout, cfg_.store,
                                                        [m = lockmgr_.get()] { return m->lock_taken(); },
                                                        [this](std::uint64_t epoch) { fenced_epoch_.store(epoch); }});
    fence->start();
  }
  auto preload = start_checkpoint_preload();
  auto acquired = lockmgr_->acquire();
  if (!acquired && acquired.error() == std::errc::no_space_on_device && disk_space_guard::release_reserve(cfg_.store)) {
    // Someone filled the store's file system: the reserve file is there for this.
    log::warn("main", "store file system full: released the disk reserve to write the epoch",
              {log::kv("store", cfg_.store.string())});
    acquired = lockmgr_->acquire();
  }
  if (!acquired) end_fence_watch(fence.get(), false);
  else if (fence) fence->hold_target();
  if (!acquired) {
    if (acquired.error() == lockmgr::errc::cancelled) {
      log::info("main", "slave: lock wait cancelled");
      post_finish(exit_ok);
    } else {
      log::error("lockmgr", acquired.error() == std::errc::no_space_on_device
                                ? "cannot acquire the lock: the store's file system is full; free space on it and restart"
                                : "cannot acquire the lock",
                 {log::kv("store", cfg_.store.string()), log::kv("error", acquired.error().message())});
      // Lost while taking it (the lock revoked, the epoch taken by another broker meanwhile):
      // deposed before it served, so 75 like any deposed master, not 1 ("could not start").
      // Seen in long run 5 at load 15-18: a lock on a leased FUSE store revoked before its
      // first renewal.
      post_finish(acquired.error() == lockmgr::errc::lost_mastership ? lockmgr::exit_code_deposed : exit_startup);
    }
    return;
  }
  auto lock_at = std::chrono::steady_clock::now();
  const lockmgr::acquisition& a = acquired.value();
  std::uint64_t epoch = a.epoch;
  log::info("lockmgr", "lock acquired", {log::kv("epoch", epoch), log::kv("previous_clean", a.previous_released_cleanly),
                                         log::kv("fs", a.fs_kind), log::kv("takeover_delay_ms", a.takeover_delay.count()),
                                         log::kv("waited_ms", a.waited.count()),
                                         log::kv("predecessor", lockmgr::to_string(a.predecessor)),
                                         log::kv("predecessor_seen", a.predecessor_why),
                                         log::kv("lock_wait", lockmgr::to_string(lockmgr_->settings().mode)),
                                         log::kv("why", a.takeover.reason)});
  asio::post(executor_, [this] { set_role(role::recovering); });
  notify_systemd(fmt::format("STATUS=recovering the journal, epoch {}", epoch));
  // The lock's periodic checks start now, not once serving: they are what keeps a lease-based
  // lock (an NFS server's, tandem-faultfs's) ours while a long recovery reads the journal
  // through other files, and what tells a master deposed meanwhile to stop. Found by a long
  // tandem-drill run: with recoveries longer than the lease, each new master lost the lock
  // to the next waiting slave before it served, and none ever did.
  if (auto ec = start_mastership_watch()) {
    log::error("lockmgr", "cannot start the lock watchdog", {log::kv("error", ec.message())});
    end_fence_watch(fence.get(), true);
    lockmgr_->release_unclean();
    post_finish(lockmgr::exit_code_deposed);
    return;
  }

  // The first full mastership check runs beside the journal's reading: the open's fence
  // (before its first write) then finds it fresh, or waits for it, instead of making the
  // same metadata round trips after the reading (7 ms on the CephFS harness, under strace).
  // A loss it finds reaches on_lost as any check's would.
  auto first_check = std::async(std::launch::async, [m = lockmgr_.get()] { (void)m->fence_check(); });
  journal::recovery_report report;
  // After a clean release (holder.json of the epoch DIR/epoch held, marked only once its
  // journal close succeeded) the journal needs no tail re-sync (docs/failover.md).
  const std::uint64_t clean_release_epoch = a.previous_released_cleanly && a.previous ? a.previous->epoch : 0;
  auto store = open_store(epoch, clean_release_epoch, preload ? preload->finish() : nullptr, report);
  first_check.wait();
  preload.reset();
  end_fence_watch(fence.get(), true);
  if (!store) {
    // We hold the lock but cannot serve: release it so an operator sees the store free and
    // the error logged, rather than a silent hung master. Unclean: the open may have failed
    // making the tail or its epoch_start durable, which the next master must then re-sync.
    // Deposed before it served (its first mastership check came with the open): 75.
    const bool deposed = !lockmgr_->is_master();
    lockmgr_->release_unclean();
    post_finish(deposed ? lockmgr::exit_code_deposed : exit_startup);
    return;
  }
  history_draft draft;
  draft.stint.epoch = epoch;
  draft.stint.broker_name = cfg_.engine.broker_name;
  draft.stint.host = asio::ip::host_name();
  draft.stint.pid = ::getpid();
  draft.stint.acquired_at_ms = unix_ms_now() - ms_since(lock_at).count();
  draft.stint.takeover_delay_ms = a.takeover_delay.count();
  draft.stint.previous_clean = a.previous_released_cleanly;
  if (a.previous) {
    draft.stint.previous_broker = a.previous->broker_name;
    draft.stint.previous_epoch = a.previous->epoch;
    if (a.previous->clean_release) draft.previous_released_at = a.previous->released_at;
  }
  asio::post(executor_, [this, s = std::move(store), epoch, report, lock_at, draft = std::move(draft)]() mutable {
    journal_ = s.get();
    pending_history_ = std::move(draft);
    on_master(std::move(s), epoch, report, lock_at);
  });
}

// While a slave waits: the newest checkpoint read and decoded ahead of a takeover
// (journal/standby.h), unless checkpoint_preload_interval_ms is 0.
std::unique_ptr<checkpoint_preload> broker_process::start_checkpoint_preload() {
  if (cfg_.checkpoint_preload_interval.count() == 0) return nullptr;
  return std::make_unique<checkpoint_preload>(
      cfg_.store, cfg_.engine.dedup_window, cfg_.engine.dedup_max_producers, cfg_.checkpoint_preload_interval,
      cfg_.checkpoint_preload_segment_bytes,
      [this](const checkpoint_preload::status& s) {
        nlohmann::json j{{"lsn", s.lsn},
                         {"live_messages", s.live_messages},
                         {"bytes", s.bytes},
                         {"sealed_segments", s.sealed_segments},
                         {"sealed_bytes", s.sealed_bytes}};
        asio::post(executor_, [this, j = std::move(j)] { preloaded_ = j; });
      });
}

// On CephFS the lock moves a few ms before `client evict` returns, and only its return says
// the old master's writes are refused: a run in progress ends before we write (hold_target
// right after the lock). The hook keeps watching the old holder during recovery, whose reads
// a dead client's caps can block until it is fenced (fence_hook.h); it stops here.
void broker_process::end_fence_watch(fence_hook* hook, bool acquired) {
  if (!hook) return;
  auto last = hook->finish();
  if (!acquired || !last) return;
  if (last->succeeded)
    log::info("fence", "taking over after the fence command succeeded", {log::kv("took_ms", last->took.count())});
  else
    log::warn("fence", "taking over although the last fence run failed: the old master's lock ended by itself",
              {log::kv("result", last->describe())});
}

// Under the lock: the store's identity (created now if asked and absent: nobody else can be
// creating it), then journal recovery. Logs why and returns null when the store cannot serve.
std::unique_ptr<journal::store> broker_process::open_store(std::uint64_t epoch, std::uint64_t clean_release_epoch,
                                                           std::shared_ptr<journal::preloaded_checkpoint> preloaded,
                                                           journal::recovery_report& report) {
  auto id = journal::read_identity(fs::posix_file_system(), cfg_.store);
  if (!id && id.error() == journal::errc::not_a_store && cfg_.create_store) {
    if (auto ec = lockmgr_->check_now()) {  // a write: mastership checked first (open_lock_manager)
      log::error("main", "lost the lock before creating the store", {log::kv("store", cfg_.store.string()),
                                                                     log::kv("error", ec.message())});
      return nullptr;
    }
    auto created = journal::create_store(fs::posix_file_system(), cfg_.store);
    if (!created) {
      log::error("main", "cannot create the store", {log::kv("store", cfg_.store.string()), log::kv("error", created.error().message())});
      return nullptr;
    }
    log::info("main", "store created", {log::kv("store", cfg_.store.string()), log::kv("store_id", created.value().id.to_hex())});
    id = created;
  }
  if (!id) {
    log::error("main", "cannot read the store identity", {log::kv("store", cfg_.store.string()), log::kv("error", id.error().message())});
    return nullptr;
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
  jo.max_producers = cfg_.engine.dedup_max_producers;
  jo.clean_release_epoch = clean_release_epoch;
  jo.preloaded = std::move(preloaded);
  // Only where another host may have written the last segment (lockmgr's file-system kind).
  jo.last_segment_past_cache = lockmgr_->takeover().fs.shared;
  // The final checkpoint at SIGTERM only after a long tail: the same bound as the takeover
  // checkpoint in on_master, so no open replays more than about this much (docs/failover.md
  // "Planned handover"); a short tail costs the next master a few ms, the checkpoint's
  // syncs cost every handover tens of ms on a busy disk.
  jo.close_checkpoint_min_records = takeover_checkpoint_records;
  jo.close_checkpoint_min_bytes = 8ull << 20;
  // The one compaction driver: the store runs compact_step itself, on this executor, after
  // each checkpoint and each time the copies of a step are durable (journal/store.h). A
  // timer here as well would be a second driver of the same steps with a second budget;
  // the store's own knows when a step can make progress (GC needs a checkpoint past the
  // segment, so steps between checkpoints find nothing to delete) and works the same for
  // every owner of a store (tools, tests, a future store behind an interface).
  jo.auto_compact_bytes = 1u << 20;  // per step: appends never wait long behind one
  jo.compaction_checkpoint_min_records = takeover_checkpoint_records;  // the takeover's bound
  jo.compaction_reads_on_reader_thread = true;  // never a pread on the io thread (store.h)
  jo.post = [ex = executor_](std::function<void()> f) { asio::post(ex, std::move(f)); };
  jo.fence = [m = lockmgr_.get()] { return m->fence_check(); };
  jo.confirm = [m = lockmgr_.get()] { return m->confirm(); };
  jo.report = [this](const journal::event& e) {
    log_journal_event(e);
    // A failure while opening is open's error (exit 1, below: a full disk, a bad segment),
    // unless mastership itself is gone (a newer master, a replaced lock file): that is a
    // step-down, exit 75, as it always was.
    if (e.kind == journal::event_kind::journal_failed && (journal_open_.load() || !lockmgr_->is_master()))
      asio::post(executor_, [this, reason = e.reason] { step_down("journal failed: " + reason); });
  };
  auto store = journal::store::open(cfg_.store, jo, report);
  if (!store && store.error() == std::errc::no_space_on_device && disk_space_guard::release_reserve(cfg_.store)) {
    log::warn("main", "store file system full: released the disk reserve to open the journal",
              {log::kv("store", cfg_.store.string())});
    report = {};
    store = journal::store::open(cfg_.store, jo, report);
  }
  if (store) {
    journal_open_.store(true);
    return std::move(store).value();
  }
  if (report.refused) {
    log::error("journal", "recovery refused: mid-log corruption",
               {log::kv("file", report.refused->file.string()), log::kv("offset", report.refused->offset),
                log::kv("lsn", report.refused->lsn), log::kv("reason", report.refused->reason),
                log::kv("hint", fmt::format("run: tandem-journal verify {}", cfg_.store.string()))});
  } else if (store.error() == std::errc::no_space_on_device) {
    log::error("journal", "cannot open the journal: the store's file system is full; free space on it and restart",
               {log::kv("store", cfg_.store.string()), log::kv("error", store.error().message())});
  } else {
    log::error("journal", "cannot open the journal", {log::kv("store", cfg_.store.string()), log::kv("error", store.error().message())});
  }
  return nullptr;
}

// ---- 3. master -------------------------------------------------------------------------------

void broker_process::on_master(std::unique_ptr<journal::message_store> store, std::uint64_t epoch,
                               const journal::recovery_report& report, std::chrono::steady_clock::time_point lock_at) {
  store_ = std::move(store);
  epoch_ = epoch;
  const nlohmann::json previous = holder_;  // the master we waited for, if we waited
  holder_ = nullptr;
  if (journal_) disk_ = std::make_unique<disk_usage_sampler>(cfg_.store / "journal");
  engine_ = std::make_unique<engine>(cfg_.engine, store_.get());
  engine_->set_login_service(credentials_, [this](std::function<bool()> slow, std::function<void(bool)> done) {
    offload_login(std::move(slow), std::move(done));
  });
  start_space_guard();
  engine_->recover();
  if (cfg_.engine.max_memory_counts_baseline && !reserve_memory_baseline()) {
    set_role(role::master);
    exit_code_ = exit_startup;
    graceful_shutdown();
    return;
  }
  std::vector<asio::any_io_executor> connection_executors;
  if (!connection_pool_.empty()) {
    connection_executors.push_back(executor_);
    for (auto& context : connection_pool_) connection_executors.push_back(context->get_executor());
  }
  server_ = std::make_unique<server>(executor_, *engine_, cfg_, std::move(connection_executors));
  server_->allow_origins(console_origins_);
  asio::ip::tcp::endpoint bound, tls_bound;
  if (!open_listeners(bound, tls_bound)) {
    // Give the store back cleanly: another broker may be able to serve it.
    set_role(role::master);
    exit_code_ = exit_startup;
    graceful_shutdown();
    return;
  }
  server_->start();
  set_role(role::master);
  // A takeover that replayed a long journal tail checkpoints soon (takeover_checkpoint_delay):
  // otherwise the next takeover replays that tail again, and more (checkpoint_every_bytes is
  // 64 MiB of appends, which a master killed after a few seconds never reaches). Found by
  // tandem-drill.
  if (report.records_replayed > takeover_checkpoint_records) {
    takeover_checkpoint_timer_.emplace(executor_, takeover_checkpoint_delay);
    takeover_checkpoint_timer_->async_wait([this](const boost::system::error_code& ec) {
      // Stopping meanwhile: the close checkpoints the same tail (close_checkpoint_min_records).
      if (!ec && role_ == role::master && store_) store_->checkpoint({});
    });
  }
  // The watchdog calls on_lost on its own thread: hop to the io thread. (On the file store
  // it already runs since the lock was taken, elect(); this only hands it the same callback.
  // The database lease starts renewing here.)
  if (auto ec = start_mastership_watch()) {
    step_down("cannot start the lock watchdog: " + ec.message());
    return;
  }
  auto took = ms_since(lock_at);
  ++takeovers_;
  recovery_time_ = took;
  stints_.push_back({epoch_, role_since_ms_, took.count()});
  if (stints_.size() > 100) stints_.erase(stints_.begin());
  record_history(took);
  client_urls_.clear();
  auto url = [](std::string_view scheme, const asio::ip::tcp::endpoint& e) {
    return e.address().is_v6() ? fmt::format("{}://[{}]:{}", scheme, e.address().to_string(), e.port())
                               : fmt::format("{}://{}:{}", scheme, e.address().to_string(), e.port());
  };
  client_urls_.push_back(url("tcp", bound));
  if (cfg_.tls_listen) client_urls_.push_back(url("ssl", tls_bound));
  for (const auto& [kind, where] : ws_bound_) client_urls_.push_back(url(kind, where));
  journal_recovery_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(report.duration);
  if (cfg_.tls_listen)
    log::info("server", "stomp tls listening", {log::kv("address", tls_bound.address().to_string()), log::kv("port", tls_bound.port()),
                                                log::kv("verify_client", cfg_.tls_verify_client)});
  for (const auto& [kind, where] : ws_bound_)
    log::info("server", fmt::format("stomp {} listening", kind),
              {log::kv("address", where.address().to_string()), log::kv("port", where.port()),
               log::kv("allowed_origins", cfg_.ws_allowed_origins.size())});
  log::info("server", "stomp listening", {log::kv("address", bound.address().to_string()), log::kv("port", bound.port())});
  log::info("main", "master", {log::kv("epoch", epoch_), log::kv("recovered", report.live_messages), log::kv("bytes", report.live_bytes),
                               log::kv("took_ms", took.count()), log::kv("records_replayed", report.records_replayed),
                               log::kv("preloaded_segment_bytes", report.preloaded_segment_bytes),
                               log::kv("from_checkpoint", report.from_checkpoint), log::kv("journal_ms", report.duration.count()),
                               log::kv("tail_trusted", report.tail_trusted_after_clean_release)});
  std::string serving = fmt::format("{}:{}", bound.address().to_string(), bound.port());
  if (cfg_.tls_listen) serving += fmt::format(" and {}:{} (tls)", tls_bound.address().to_string(), tls_bound.port());
  for (const auto& [kind, where] : ws_bound_)
    serving += fmt::format(" and {}:{} ({})", where.address().to_string(), where.port(), kind);
  notify_systemd(fmt::format("READY=1\nSTATUS=master, epoch {}, serving on {}", epoch_, serving));
  announce_master(previous, took);
  if (stop_requested_) graceful_shutdown();
}

// max_memory_counts_baseline: what the process holds before any client is served (the
// executable, libraries, the recovered index, the allocator's arenas) is counted in the
// budget, so max_memory_bytes bounds RSS. False (and the broker does not serve) when the
// budget is not above it.
bool broker_process::reserve_memory_baseline() {
  const auto rss = resident_bytes();
  if (rss == 0) {
    log::error("main", "max_memory_counts_baseline: cannot read this process's RSS from /proc/self/statm");
    return false;
  }
  if (rss >= cfg_.engine.max_memory_bytes) {
    log::error("main", "max_memory_bytes is not above the broker's own memory at start: raise it, or set "
                       "max_memory_counts_baseline false",
               {log::kv("max_memory_bytes", cfg_.engine.max_memory_bytes), log::kv("rss_bytes", rss)});
    return false;
  }
  engine_->memory().reserve_baseline(rss);
  log::info("main", "memory budget counts the process's own RSS",
            {log::kv("baseline_bytes", rss), log::kv("max_memory_bytes", cfg_.engine.max_memory_bytes),
             log::kv("left_for_clients", cfg_.engine.max_memory_bytes - rss)});
  return true;
}

// The master-change advisory (engine.h master_change): who we took over from, when, how fast.
void broker_process::announce_master(const nlohmann::json& previous, std::chrono::milliseconds took) {
  master_change c;
  c.broker = cfg_.engine.broker_name;
  c.epoch = epoch_;
  c.took_ms = took.count();
  c.at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (previous.is_object()) {
    c.previous_broker = previous.value("broker_name", std::string());
    c.previous_epoch = previous.value("epoch", std::uint64_t{0});
  }
  engine_->announce_master(c);
}

// The STOMP listener and, when configured, the TLS and WebSocket ones; logs and returns false
// on failure.
bool broker_process::open_listeners(asio::ip::tcp::endpoint& bound, asio::ip::tcp::endpoint& tls_bound) {
  if (auto ec = server_->open(bound)) {
    log::error("server", "cannot listen", {log::kv("address", cfg_.listen.to_string()), log::kv("error", ec.message())});
    return false;
  }
  if (cfg_.tls_listen) {
    if (auto ec = server_->open_tls(tls_, tls_bound)) {
      log::error("server", "cannot listen (tls)", {log::kv("address", cfg_.tls_listen->to_string()), log::kv("error", ec.message())});
      return false;
    }
  }
  ws_bound_.clear();
  if (cfg_.ws_listen) {
    asio::ip::tcp::endpoint where;
    if (auto ec = server_->open_ws(where)) {
      log::error("server", "cannot listen (ws)", {log::kv("address", cfg_.ws_listen->to_string()), log::kv("error", ec.message())});
      return false;
    }
    ws_bound_.emplace_back("ws", where);
  }
  if (cfg_.wss_listen) {
    asio::ip::tcp::endpoint where;
    if (auto ec = server_->open_wss(tls_, where)) {
      log::error("server", "cannot listen (wss)", {log::kv("address", cfg_.wss_listen->to_string()), log::kv("error", ec.message())});
      return false;
    }
    ws_bound_.emplace_back("wss", where);
  }
  return true;
}

// ---- 4. stop ---------------------------------------------------------------------------------

void broker_process::on_signal(int sig) {
  const char* name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  log::info("main", "signal received", {log::kv("signal", name), log::kv("role", role_name(role_))});
  notify_systemd(fmt::format("STOPPING=1\nSTATUS={}, stopping on {}", role_name(role_), name));
  stop_requested_ = true;
  switch (role_) {
    case role::starting:
    case role::slave:
      // The election thread is blocked in the lock wait: cancel it; it posts finish(0).
      cancel_election();
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
void broker_process::graceful_shutdown() {
  if (role_ == role::stopping) return;
  set_role(role::stopping);
  log::info("main", "stopping", {log::kv("connections", server_ ? server_->connection_count() : 0)});
  if (server_) server_->stop_accepting();
  if (engine_) engine_->shutdown();
  if (server_) server_->stop_connections("broker shutting down");
  // With threads > 1 the connections on other threads close their sessions by posting back
  // here: the store closes after the last of them, as with one thread.
  if (server_) server_->when_connections_closed([this, stopping_at = std::chrono::steady_clock::now()] {
    close_store_and_release(stopping_at);
  });
  else close_store_and_release(std::chrono::steady_clock::now());
}

void broker_process::close_store_and_release(std::chrono::steady_clock::time_point stopping_at) {
  if (election_.joinable()) election_.join();
  election_ = std::thread([this, stopping_at] {
    std::error_code close_ec;
    if (store_) close_ec = store_->close();
    if (close_ec) log::error("journal", "close failed", {log::kv("error", close_ec.message())});
    auto closed_at = std::chrono::steady_clock::now();
    // A failed close (a write or fdatasync refused) may leave records that are not durable:
    // the release must then look like a crash, so that the taker re-syncs the tail.
    auto release_ec = release_mastership(!close_ec);
    // The planned handover's stop, in two parts (tools/bench/handover.py): clients closed and
    // journal closed (last group, final checkpoint), then the release itself.
    auto close_ms = std::chrono::duration_cast<std::chrono::milliseconds>(closed_at - stopping_at).count();
    auto release_ms = ms_since(closed_at).count();
    if (release_ec) log::error("lockmgr", "release failed", {log::kv("error", release_ec.message())});
    else if (lease_) log::info("store", "lease released", {log::kv("close_ms", close_ms), log::kv("release_ms", release_ms)});
    else log::info("lockmgr", "lock released", {log::kv("close_ms", close_ms), log::kv("release_ms", release_ms)});
    // A failed close is a journal I/O error, which the journal also reports as a failure:
    // that report posts step_down (exit 75). Both ends give 75, so the exit code does not
    // depend on which of the two threads gets there first.
    asio::post(executor_, [this, rc = close_ec ? lockmgr::exit_code_deposed : exit_ok] { finish(rc); });
  });
}

// Mastership lost or the journal failed: stop at once. No checkpoint, no release, no
// more writes of any kind: another process may already be master. _exit skips the store's
// destructor, which would try to write a checkpoint.
void broker_process::step_down(std::string_view reason) {
  log::error("main", "stepping down: mastership lost", {log::kv("reason", reason), log::kv("epoch", epoch_),
                                                        log::kv("exit_code", lockmgr::exit_code_deposed)});
  set_role(role::stopping);
  notify_systemd(fmt::format("STOPPING=1\nSTATUS=stepping down (exit {}): {}", lockmgr::exit_code_deposed, reason));
  if (server_) server_->stop_accepting();
  if (engine_) engine_->shutdown();
  if (server_) server_->stop_connections("broker stepping down");
  std::fflush(stderr);
  std::_Exit(lockmgr::exit_code_deposed);
}

// Room for the next segment roll, a checkpoint and a takeover's epoch record: two segments.
void broker_process::start_space_guard() {
  const std::uint64_t reserve = 2 * cfg_.segment_bytes;
  space_ = std::make_unique<disk_space_guard>(cfg_.store, reserve, [this](const disk_space_guard::status& st) {
    asio::post(executor_, [this, st] { on_space(st); });
  });
}

void broker_process::on_space(const disk_space_guard::status& st) {
  if (!engine_) return;
  if (!st.full) {
    engine_->set_disk_full(std::nullopt);
    log::info("main", "store file system has room: persistent SENDs accepted",
              {log::kv("available_bytes", st.available_bytes), log::kv("reserve_file", st.reserve_file)});
    return;
  }
  engine_->set_disk_full(fmt::format(
      "The store's file system is full ({} bytes available, {} kept for acknowledgements and takeovers): persistent "
      "SENDs are refused until consumers free space or the file system grows; deliveries and ACKs go on.",
      st.available_bytes, st.reserve_bytes));
  log::warn("main", "store file system full: refusing persistent SENDs",
            {log::kv("store", cfg_.store.string()), log::kv("available_bytes", st.available_bytes),
             log::kv("floor_bytes", st.reserve_bytes), log::kv("reserve_file", st.reserve_file)});
}

void broker_process::finish(int rc) {
  exit_code_ = rc;
  space_.reset();
  if (admin_) admin_->stop();
  if (admin_tls_) admin_tls_->stop();
  if (server_) server_->stop_accepting();
  signals_.reset();
  work_.reset();
  disk_.reset();
  log::info("main", "exit", {log::kv("code", rc)});
  io_.stop();
}

// ---- 5. /health and /metrics -----------------------------------------------------------------

void broker_process::set_role(role r) {
  role_ = r;
  role_since_ms_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> broker_process::configured_client_urls() const {
  std::vector<std::string> urls{"tcp://" + cfg_.listen.to_string()};
  if (cfg_.tls_listen) urls.push_back("ssl://" + cfg_.tls_listen->to_string());
  if (cfg_.ws_listen) urls.push_back("ws://" + cfg_.ws_listen->to_string());
  if (cfg_.wss_listen) urls.push_back("wss://" + cfg_.wss_listen->to_string());
  return urls;
}

nlohmann::json broker_process::health_json() const {
  nlohmann::json j;
  j["ok"] = role_ == role::master || role_ == role::slave || role_ == role::recovering;
  j["role"] = role_name(role_);
  j["epoch"] = epoch_;
  j["store"] = cfg_.store.string();
  j["store_id"] = store_id_;
  j["broker_name"] = cfg_.engine.broker_name;
  if (role_ == role::slave || role_ == role::starting) j["holder"] = holder_.is_null() ? nlohmann::json() : holder_;
  if (role_ == role::slave) j["preloaded_checkpoint"] = preloaded_;
  if (server_) j["connections"] = server_->connection_count();
  // For the console's group view and timeline (broker/console/): since when this role, where
  // clients connect, this process's own mastership stints, and the journal's disk use.
  j["since_ms"] = role_since_ms_;
  j["admin_url"] = admin_url_;
  j["client_urls"] = client_urls_.empty() ? configured_client_urls() : client_urls_;
  nlohmann::json stints = nlohmann::json::array();
  for (const auto& s : stints_) stints.push_back({{"epoch", s.epoch}, {"since_ms", s.since_ms}, {"takeover_ms", s.takeover_ms}});
  j["stints"] = std::move(stints);
  j["history"] = history_;
  if (disk_) j["journal_bytes"] = disk_->bytes();
  j["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_).count();
  return j;
}

std::vector<std::string> broker_process::metrics_pieces(prometheus::sliced_families& scrape) const {
  process_figures f;
  f.role = role_name(role_);
  f.epoch = epoch_;
  f.uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_);
  f.takeovers = takeovers_;
  f.recovery = recovery_time_;
  f.journal_recovery = journal_recovery_time_;
  if (lockmgr_) {
    const auto& ls = lockmgr_->stats();
    f.lock = process_figures::lock_checks{ls.checks.load(std::memory_order_relaxed), ls.failures.load(std::memory_order_relaxed),
                                          ls.nanoseconds.load(std::memory_order_relaxed),
                                          ls.max_nanoseconds.load(std::memory_order_relaxed)};
  }
  if (server_) f.connections = {server_->connection_count(), server_->accepted_total(), server_->refused_total()};
  const bool engine_renders = engine_ && role_ == role::master;
  f.engine_renders_connections = engine_renders;
  if (journal_) {
    const auto& idx = journal_->index();
    f.journal = process_figures::journal_figures{idx.live_messages(), idx.live_bytes(), idx.last_lsn(), &journal_->stats()};
  }
  if (disk_) f.disk_bytes = disk_->bytes();
  std::vector<std::string> out;
  prometheus::writer w(out);
  render_process_metrics(f, w);
  if (database_) {
    const auto& idx = database_->index();
    const auto& st = database_->stats();
    w.gauge("tandem_store_live_messages", "Live (destination, message) entries in the PostgreSQL store's index.",
            idx.live_messages());
    w.gauge("tandem_store_live_bytes", "Bytes of live messages in the PostgreSQL store.", idx.live_bytes());
    w.counter("tandem_pg_appends_total", "Changes appended to the PostgreSQL store.", st.appends.load(std::memory_order_relaxed));
    w.counter("tandem_pg_commits_total", "Group-commit transactions sent (one per group).",
              st.commits.load(std::memory_order_relaxed));
    w.counter("tandem_pg_committed_changes_total", "Changes in committed transactions (divided by commits: the group size).",
              st.committed_changes.load(std::memory_order_relaxed));
    w.counter("tandem_pg_commit_seconds_total", "Time spent sending and committing groups.",
              static_cast<double>(st.commit_nanoseconds.load(std::memory_order_relaxed)) / 1e9);
    w.counter("tandem_pg_writer_reconnects_total",
              "Groups committed again on a new connection after the writer's connection broke (database failover).",
              st.reconnects.load(std::memory_order_relaxed));
  }
  if (engine_renders) engine_->append_metrics(w, scrape);
  return out;
}

}  // namespace tandem::broker
