// The db-* kinds (fault_kind.h): faults of the PostgreSQL cluster under a PostgreSQL store,
// inflicted through tests/pg/pg_cluster.sh (--pg-cluster DIR). Like the pause kinds they are
// measured from the fault to the first message any broker accepts: the master rides the
// fault out when it ends within its lease (its writer and lease renewal reconnect,
// docs/postgresql.md "Database failover"), else it exits 75 and a slave takes over; both
// ends are expected, and the verdict (lost, overlapping writers, unflagged duplicates)
// is the same as for every other kind.
#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "tools/drill/controller.h"

namespace tandem::drill {
namespace {

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Single-quoted for sh.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

void controller::pg_cluster(const std::string& command) {
  const auto log = work_dir_ / "logs" / "pg_cluster.log";
  const auto line = fmt::format("{} {} {} >>{} 2>&1", quoted(o_.pg_cluster_script.string()), command,
                                quoted(o_.pg_cluster.string()), quoted(log.string()));
  const int rc = std::system(line.c_str());
  if (rc != 0) throw drill_abort{fmt::format("pg_cluster.sh {} failed (status {}); see {}", command, rc, log.string())};
}

nlohmann::json controller::database_episode(unsigned n, fault_kind kind) {
  if (o_.pg_cluster.empty()) throw drill_abort{fmt::format("{} needs --pg-cluster DIR", name(kind))};
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  expected_exits_ = {victim};
  // Measured from the moment the fault is complete (the primary dead, the backends ended):
  // a RECEIPT that arrives while the command still runs was earned before the fault.
  const auto started = clock_type::now();
  pg_cluster(kind == fault_kind::db_primary_kill ? "kill-primary" : "terminate");
  const auto t0 = clock_type::now();
  workload_->arm_any(t0);
  if (kind == fault_kind::db_primary_kill) pg_cluster("promote");
  f["fault_ms"] = ms_between(started, t0);
  f["promote_ms"] = ms_between(t0, clock_type::now());
  const auto master_now = await_resume(f, n, kind, victim, t0, "mastership moved");
  const double took = f["resume_ms"].get<double>();
  say(fmt::format("[{}/{}] {} under b{} (epoch {}): first message accepted {:.1f} ms after the fault, by b{}", n,
                  o_.failovers, name(kind), victim, epoch, took, master_now ? fmt::format("{}", *master_now) : "?"));
  // A master that did not reach the database within its lease steps down (exit 75) up to a
  // lease after the fault: wait for that end here, while it is expected.
  const auto lease = std::max(std::chrono::milliseconds(1500), 3 * o_.lock_check_interval.value_or(std::chrono::milliseconds(1000)));
  if (master_now && *master_now != victim) await_end(victim, std::chrono::seconds(30));
  else pump_until(lease + std::chrono::seconds(1), [&] { return ended_.contains(victim); });
  // Two copies again before the next episode (the promoted server has no standby yet).
  if (kind == fault_kind::db_primary_kill) pg_cluster("rebuild-standby");
  expected_exits_.clear();
  if (auto it = ended_.find(victim); it != ended_.end()) {
    f["victim_exit"] = it->second.status ? it->second.status->to_string() : "?";
    restart(victim);
  }
  return f;
}

}  // namespace tandem::drill
