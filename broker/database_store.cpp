// broker_process with a PostgreSQL store (--store postgresql://...): the store check, the
// election in the database, opening the store, and the replication report. The steps are
// those of broker_process.cpp with lockmgr replaced by journal::pg::lease; docs/postgresql.md
// has the design and its failure cases.
#include <unistd.h>

#include <fmt/format.h>

#include "broker/broker_process.h"
#include "broker/log.h"
#include "broker/systemd_notify.h"
#include "journal/errc.h"
#include "journal/pg/connection.h"
#include "journal/pg/lease.h"
#include "journal/pg/replication.h"
#include "journal/pg/schema.h"
#include "journal/pg/store.h"
#include "journal/store.h"
#include "lockmgr/lock_manager.h"

namespace tandem::broker {

namespace pg = journal::pg;

namespace {

// The lease lasts three watchdog periods: renewed every lock_check_interval.
std::chrono::milliseconds lease_duration(const config& cfg) {
  return std::max(std::chrono::milliseconds(1500), 3 * cfg.lock_check_interval);
}

nlohmann::json holder_json(const pg::lease_holder& h) {
  return {{"broker_name", h.broker_name}, {"pid", h.pid},           {"host", h.host},
          {"client_url", h.client_url},   {"epoch", h.epoch},       {"released", h.released},
          {"expires_in_ms", h.expires_in_ms}};
}

}  // namespace

bool broker_process::uses_database() const { return pg::is_database_uri(cfg_.store.string()); }

// Like check_store: a database without the schema is refused unless --create-store, a
// schema of a newer Tandem is refused by name. The schema is created here, before the
// election: its creation is one transaction serialised by an advisory lock, so brokers
// starting together cannot create two.
int broker_process::check_database_store() {
  const auto uri = cfg_.store.string();
  std::string error;
  auto conn = pg::connection::open(uri, {}, error);
  if (!conn) {
    log::error("main", "cannot connect to the store database",
               {log::kv("store", uri), log::kv("error", error),
                log::kv("hint", "check the URI, that the server runs, and the password in PGPASSFILE or PGPASSWORD")});
    return exit_startup;
  }
  pg::store_meta meta;
  std::string detail;
  auto ec = pg::read_meta(*conn, meta, detail);
  if (ec == journal::errc::not_a_store && cfg_.create_store) {
    if (auto cec = pg::create_schema(*conn, detail)) {
      log::error("main", "cannot create the store schema", {log::kv("store", uri), log::kv("error", detail)});
      return exit_startup;
    }
    ec = pg::read_meta(*conn, meta, detail);
    if (!ec) log::info("main", "store created", {log::kv("store", uri), log::kv("store_id", meta.id.to_hex())});
  }
  if (ec == journal::errc::not_a_store) {
    log::error("main", "not a store: the database has no Tandem schema",
               {log::kv("store", uri), log::kv("hint", "check the database name; to create a new store pass --create-store")});
    return exit_startup;
  }
  if (ec) {
    log::error("main", "cannot read the store schema",
               {log::kv("store", uri), log::kv("error", detail.empty() ? ec.message() : detail)});
    return exit_startup;
  }
  if (meta.version < pg::schema_version) {
    const int from = meta.version;
    if (pg::upgrade_schema(*conn, meta, detail)) {
      log::error("main", "cannot upgrade the store schema",
                 {log::kv("store", uri), log::kv("error", detail),
                  log::kv("hint", "the schema is unchanged; check the role's rights to alter its tables")});
      return exit_startup;
    }
    log::info("main", "store schema upgraded",
              {log::kv("store", uri), log::kv("from_version", from), log::kv("to_version", meta.version)});
  }
  store_id_ = meta.id.to_hex();
  if (cfg_.store_id && *cfg_.store_id != store_id_) {
    log::error("main", "a different store than the config names",
               {log::kv("store", uri), log::kv("store_id", store_id_), log::kv("expected_store_id", *cfg_.store_id),
                log::kv("config", cfg_.source), log::kv("hint", "check the database in the URI, or fix store_id in the config")});
    return exit_startup;
  }
  pg::lease_options lo;
  lo.conninfo = uri;
  lo.broker_name = cfg_.engine.broker_name;
  lo.client_url = fmt::format("tcp://{}", cfg_.listen.to_string());
  lo.duration = lease_duration(cfg_);
  lo.poll_interval = cfg_.lock_poll_interval;
  lease_ = std::make_unique<pg::lease>(lo);
  return exit_ok;
}

void broker_process::elect_in_database() {
  auto post_finish = [this](int rc) { asio::post(executor_, [this, rc] { finish(rc); }); };
  asio::post(executor_, [this] { role_ = role::slave; });
  notify_systemd("STATUS=acquiring the lease of " + cfg_.store.string());
  const auto wait_start = std::chrono::steady_clock::now();
  std::error_code ec;
  auto epoch = lease_->acquire(
      [this](const pg::lease_holder& h) {
        const auto held_by = fmt::format("{} (pid {} on {}, epoch {})", h.broker_name, h.pid, h.host, h.epoch);
        log::info("main", "slave: waiting for the lease, held by " + held_by,
                  {log::kv("store", cfg_.store.string()), log::kv("expires_in_ms", h.expires_in_ms)});
        notify_systemd(fmt::format("READY=1\nSTATUS=slave, waiting for {}", held_by));
        asio::post(executor_, [this, j = holder_json(h)] { holder_ = j; });
      },
      [this](const std::string& error) {
        log::warn("main", "slave: cannot reach the store database, still trying",
                  {log::kv("store", cfg_.store.string()), log::kv("error", error)});
      },
      ec);
  if (!epoch) {
    if (ec == journal::errc::closed) {
      log::info("main", "slave: lease wait cancelled");
      post_finish(exit_ok);
    } else {
      log::error("main", "cannot acquire the lease", {log::kv("error", ec.message())});
      post_finish(exit_startup);
    }
    return;
  }
  auto lock_at = std::chrono::steady_clock::now();
  log::info("main", "lease acquired",
            {log::kv("epoch", *epoch), log::kv("lease_ms", lease_duration(cfg_).count()),
             log::kv("waited_ms", std::chrono::duration_cast<std::chrono::milliseconds>(lock_at - wait_start).count())});
  asio::post(executor_, [this] { role_ = role::recovering; });
  journal::recovery_report report;
  auto store = open_database_store(*epoch, report);
  if (!store) {
    std::string detail;
    lease_->release(detail);
    post_finish(exit_startup);
    return;
  }
  log_replication();
  asio::post(executor_, [this, s = std::move(store), epoch = *epoch, report, lock_at]() mutable {
    database_ = s.get();
    on_master(std::move(s), epoch, report, lock_at);
  });
}

std::unique_ptr<pg::store> broker_process::open_database_store(std::uint64_t epoch, journal::recovery_report& report) {
  pg::options o;
  o.conninfo = cfg_.store.string();
  o.epoch = epoch;
  o.producer_window = cfg_.engine.dedup_window;
  o.max_producers = cfg_.engine.dedup_max_producers;
  o.body_cache_bytes = cfg_.body_cache_bytes;
  o.io_timeout = lease_duration(cfg_);
  o.post = [ex = executor_](std::function<void()> f) { asio::post(ex, std::move(f)); };
  // A database failover (or a cut connection) within one lease keeps this broker master:
  // past a lease the renewal has failed too and the broker steps down anyway.
  o.reconnect_for = lease_duration(cfg_);
  o.on_reconnect = [this](bool reconnected, const std::string& what) {
    if (reconnected) log::info("store", what, {log::kv("store", cfg_.store.string())});
    else log::warn("store", what + "; reconnecting", {log::kv("store", cfg_.store.string()),
                                                      log::kv("within_ms", lease_duration(cfg_).count())});
  };
  o.on_failed = [this](const std::string& reason) {
    log::error("store", "store failed", {log::kv("store", cfg_.store.string()), log::kv("reason", reason)});
    asio::post(executor_, [this, reason] { step_down("store failed: " + reason); });
  };
  pg::open_report r;
  auto store = pg::store::open(std::move(o), r);
  if (!store) {
    log::error("store", "cannot open the store", {log::kv("store", cfg_.store.string()), log::kv("error", store.error().message()),
                                                 log::kv("detail", r.detail)});
    return nullptr;
  }
  report.live_messages = r.live_messages;
  report.live_bytes = r.live_bytes;
  report.duration = r.duration;
  log::info("store", "store loaded", {log::kv("server", r.server), log::kv("live_messages", r.live_messages),
                                      log::kv("destinations", r.destinations), log::kv("subscriptions", r.subscriptions),
                                      log::kv("took_ms", r.duration.count())});
  return std::move(store).value();
}

// Says at start whether a COMMIT (so a RECEIPT) means two copies.
void broker_process::log_replication() {
  std::string error;
  auto conn = pg::connection::open(cfg_.store.string(), {}, error);
  if (!conn) return;
  auto st = pg::replication_status(*conn, error);
  if (!st) {
    log::warn("store", "cannot read the replication state", {log::kv("error", error)});
    return;
  }
  if (st->synchronous)
    log::info("store", "the store database is synchronously replicated: a RECEIPT means a standby has the data",
              {log::kv("server", conn->server()), log::kv("synchronous_standby_names", st->standby_names),
               log::kv("synchronous_commit", st->synchronous_commit), log::kv("standbys", st->standbys)});
  else
    log::warn("store", "the store database is NOT synchronously replicated: a RECEIPT means one server has the data",
              {log::kv("server", conn->server()), log::kv("synchronous_standby_names", st->standby_names),
               log::kv("synchronous_commit", st->synchronous_commit), log::kv("standbys", st->standbys),
               log::kv("hint", "docs/postgresql.md, \"Two copies before RECEIPT\"")});
}

std::error_code broker_process::start_mastership_watch() {
  auto on_lost = [this](const std::string& reason) { asio::post(executor_, [this, reason] { step_down(reason); }); };
  if (lease_) {
    lease_->start_renewing(on_lost);
    return {};
  }
  return lockmgr_->start_watchdog(on_lost);
}

// `journal_closed`: the journal's close succeeded, so everything it wrote is durable and
// the lock may be marked released cleanly (a taker then skips the tail re-sync of bug 6).
// A database store has no such tail (each commit is durable on its own): its lease is
// given back either way.
std::error_code broker_process::release_mastership(bool journal_closed) {
  if (!lease_) return journal_closed ? lockmgr_->release() : lockmgr_->release_unclean();
  std::string detail;
  auto ec = lease_->release(detail);
  if (ec) log::error("main", "lease release failed", {log::kv("error", detail)});
  return ec;
}

void broker_process::cancel_election() {
  if (lease_) lease_->cancel();
  else lockmgr_->cancel();
}

}  // namespace tandem::broker
