#include "journal/pg/lease.h"

#include <unistd.h>

#include <fmt/format.h>

#include "journal/errc.h"

namespace tandem::journal::pg {

namespace {

constexpr std::string_view undefined_table = "42P01";

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

connect_settings settings_for(const lease_options& o) {
  connect_settings s;
  s.io_timeout = o.duration;
  s.application_name = "tandemd-lease";
  return s;
}

}  // namespace

lease::lease(lease_options o) : opts_(std::move(o)) {}

lease::~lease() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

void lease::cancel() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

bool lease::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lk(mu_);
  return !cv_.wait_for(lk, d, [this] { return stop_; });
}

std::optional<lease_holder> lease::query(connection& c, std::string& error) {
  auto r = c.exec(
      "select epoch, coalesce(broker_name, ''), coalesce(host, ''), coalesce(client_url, ''), coalesce(pid, 0), released, "
      "greatest(least(extract(epoch from (expires_at - now())) * 1000, 1e15), -1e15)::bigint from tandem_lease where id = 1");
  if (!r.ok() || r.rows() != 1) {
    error = r.ok() ? "no lease row" : r.error;
    return std::nullopt;
  }
  lease_holder h;
  h.epoch = static_cast<std::uint64_t>(r.integer(0, 0));
  h.broker_name = std::string(r.text(0, 1));
  h.host = std::string(r.text(0, 2));
  h.client_url = std::string(r.text(0, 3));
  h.pid = r.integer(0, 4);
  h.released = r.text(0, 5) == "t";
  h.expires_in_ms = r.integer(0, 6);
  return h;
}

std::optional<std::uint64_t> lease::acquire(const std::function<void(const lease_holder&)>& on_wait,
                                            const std::function<void(const std::string&)>& on_error, std::error_code& ec) {
  const auto host = host_name();
  std::uint64_t announced_epoch = 0;
  bool announced = false;
  std::string last_error;
  for (;;) {
    {
      std::lock_guard lk(mu_);
      if (stop_) {
        ec = errc::closed;
        return std::nullopt;
      }
    }
    if (!conn_ || !conn_->healthy()) {
      std::string error;
      conn_ = connection::open(opts_.conninfo, settings_for(opts_), error);
      if (!conn_ && error != last_error) on_error(last_error = error);
    }
    if (conn_) {
      auto r = conn_->exec(
          "update tandem_lease set epoch = epoch + 1, broker_name = $1, pid = $2, host = $3, client_url = $4, "
          "acquired_at = now(), renewed_at = now(), released = false, "
          "expires_at = now() + $5::bigint * interval '1 millisecond' "
          "where id = 1 and (released or expires_at < now()) returning epoch",
          {param::text(opts_.broker_name), param::number(::getpid()), param::text(host), param::text(opts_.client_url),
           param::number(opts_.duration.count())});
      if (r.ok() && r.rows() == 1) {
        epoch_ = static_cast<std::uint64_t>(r.integer(0, 0));
        return epoch_;
      }
      if (!r.ok()) {
        if (r.sqlstate == undefined_table) {
          ec = errc::not_a_store;
          return std::nullopt;
        }
        if (r.error != last_error) on_error(last_error = r.error);
        if (!conn_->healthy()) conn_.reset();
      } else {
        std::string error;
        if (auto h = query(*conn_, error); h && (!announced || h->epoch != announced_epoch)) {
          announced = true;
          announced_epoch = h->epoch;
          on_wait(*h);
        }
      }
    }
    if (!sleep_for(opts_.poll_interval)) {
      ec = errc::closed;
      return std::nullopt;
    }
  }
}

void lease::start_renewing(std::function<void(const std::string&)> on_lost) {
  on_lost_ = std::move(on_lost);
  renewer_ = std::thread([this] { renew_loop(); });
}

// Renews every lease/3. Any answer but "one row" ends mastership: zero rows means a newer
// epoch exists; no answer for a whole lease means one may exist. CLOCK_MONOTONIC measures
// the lease on our side from the START of the last successful renewal, so our view always
// ends before the database's does.
void lease::renew_loop() {
  using clock = std::chrono::steady_clock;
  auto valid_until = clock::now() + opts_.duration;
  std::string last_error = "none";
  while (sleep_for(opts_.duration / 3)) {
    const auto started = clock::now();
    if (!conn_ || !conn_->healthy()) {
      std::string error;
      conn_ = connection::open(opts_.conninfo, settings_for(opts_), error);
      if (!conn_) last_error = error;
    }
    if (conn_) {
      auto r = conn_->exec(
          "update tandem_lease set renewed_at = now(), expires_at = now() + $2::bigint * interval '1 millisecond' "
          "where id = 1 and epoch = $1 and not released returning epoch",
          {param::number(static_cast<long long>(epoch_)), param::number(opts_.duration.count())});
      if (r.ok() && r.rows() == 1) {
        valid_until = started + opts_.duration;
        continue;
      }
      if (r.ok()) {
        std::string error;
        auto h = query(*conn_, error);
        on_lost_(h ? fmt::format("deposed: the store's epoch is {} (held by {} pid {} on {}), ours is {}", h->epoch,
                                 h->broker_name, h->pid, h->host, epoch_)
                   : fmt::format("deposed: the lease row no longer has epoch {}", epoch_));
        return;
      }
      last_error = r.error;
      if (!conn_->healthy()) conn_.reset();
    }
    if (clock::now() >= valid_until) {
      on_lost_(fmt::format("lease of {} ms expired without a renewal: {}", opts_.duration.count(), last_error));
      return;
    }
  }
}

std::error_code lease::release(std::string& detail) {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (!conn_ || !conn_->healthy()) {
    conn_ = connection::open(opts_.conninfo, settings_for(opts_), detail);
    if (!conn_) return std::make_error_code(std::errc::io_error);
  }
  auto r = conn_->exec("update tandem_lease set released = true, expires_at = now() where id = 1 and epoch = $1",
                       {param::number(static_cast<long long>(epoch_))});
  if (!r.ok()) {
    detail = r.error;
    return std::make_error_code(std::errc::io_error);
  }
  return {};
}

}  // namespace tandem::journal::pg
