// The cluster's fault kinds (fault_kind.h, cluster.h): slot i runs on host i+1 in site i+1,
// so the master's slot names the host and the site to hit. Each episode repairs what it
// broke (remount, heal, restart-site) before the victim starts again as a slave.
#include <signal.h>

#include <fstream>

#include <fmt/format.h>

#include "tools/drill/controller.h"

namespace tandem::drill {
namespace {

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void controller::setup_cluster_store(nlohmann::json& rec) {
  const std::string dir = "drill-" + rec["run_id"].get<std::string>();
  for (const auto& h : cluster_->hosts()) places_.push_back({h.ip, h.mount / dir, h.netns});
  if (places_.size() < o_.brokers)
    throw drill_abort{fmt::format("--cluster: {} brokers but the cluster has {} hosts", o_.brokers, places_.size())};
  places_.resize(o_.brokers);
  store_ = places_[0].store;
  // The fence command: tandem-fence-cephfs, unless the running episode refuses fencing
  // (host-death-nofence creates fence-off), to measure the file system's own timeout.
  const auto wrapper = work_dir_ / "fence.sh";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\n"
      << "# tandem-drill --cluster: the brokers' fence_command\n"
      << "if [ -e '" << (work_dir_ / "fence-off").string() << "' ]; then\n"
      << "  echo 'fencing refused by the drill (kind host-death-nofence)' >&2; exit 1\n"
      << "fi\n"
      << "exec '" << o_.fence_script.string() << "'\n";
  }
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all, std::filesystem::perm_options::add);
  nlohmann::json cfg{{"allow_anonymous", true},
                     {"fence_command", wrapper.string()},
                     {"fence_after_ms", o_.fence_after.count()},
                     {"fence_timeout_ms", 30000},
                     // The clients ask for 1 s heart-beats (a partition sends no RST): send them.
                     {"heartbeat_send_ms", 500}};
  std::ofstream(work_dir_ / "cluster-broker.json") << cfg.dump(2) << "\n";
  rec["store"] = store_.string();
  nlohmann::json hosts = nlohmann::json::array();
  for (std::uint32_t s = 0; s < places_.size(); ++s)
    hosts.push_back({{"slot", s}, {"host", s + 1}, {"ip", places_[s].host}, {"netns", places_[s].netns},
                     {"store", places_[s].store.string()}});
  rec["cluster"] = {{"name", cluster_->description().value("name", "")},
                    {"fs", "cephfs"},
                    {"sites", cluster_->hosts().size()},
                    {"brokers", hosts},
                    {"fence_command", o_.fence_script.string()},
                    {"fence_after_ms", o_.fence_after.count()},
                    {"session_autoclose_s", cluster_->description().value("session_autoclose_s", 0)},
                    {"objectstore", cluster_->description().value("objectstore", nlohmann::json())}};
  say(fmt::format("cluster {}: brokers on {} hosts, store {} (per host: mount/{})", cluster_->description().value("name", ""),
                  places_.size(), dir, dir));
}

// A slave's fence hook evicts the master's host client when the master stays silent for
// fence_after_ms with the lock not yet moved. After a plain process kill that should not
// happen (the host's client frees the lock in milliseconds), but if it does, the host's
// mount fails every call (ESHUTDOWN; ENOENT on its root) until it is mounted again, and a
// broker started there exits 1 at once. The drill repairs the host as an operator would
// and records it: a fence after a process death is worth knowing about.
void controller::remount_if_fenced(std::uint32_t slot) {
  std::error_code ec;
  if (std::filesystem::exists(places_[slot].store, ec) && !ec) return;
  const auto host = std::to_string(slot + 1);
  const std::string error = ec ? ec.message() : "the store directory is gone";
  say(fmt::format("  ! host {} (b{}): its mount answers \"{}\" (fenced?): remounting before the restart", host, slot,
                  error));
  anomalies_.push_back({{"what", fmt::format("host {}'s mount failed with \"{}\" before b{} restarted: remounted "
                                             "(a slave fenced the host although the episode did not ask for it)",
                                             host, error, slot)},
                        {"slot", slot},
                        {"at_ms", ms_between(origin_, clock_type::now())}});
  cluster_->run({"remount", host}, std::chrono::seconds(180));
}

bool controller::await_end(std::uint32_t victim, std::chrono::milliseconds timeout) {
  return pump_until(timeout, [&] { return ended_.contains(victim); });
}

nlohmann::json controller::cluster_episode(unsigned n, fault_kind kind) {
  if (!cluster_) throw drill_abort{fmt::format("{} needs --cluster cephfs", name(kind))};
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  const std::string site = std::to_string(victim + 1);
  nlohmann::json f{{"n", n},          {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch},
                   {"victim_pid", fleet_->pid(victim)}, {"site", victim + 1}};
  const auto fence_off = work_dir_ / "fence-off";
  std::error_code ec;
  if (kind == fault_kind::host_death_nofence) std::ofstream(fence_off) << "1\n";
  else std::filesystem::remove(fence_off, ec);

  if (is_cluster_stall(kind)) {
    // The master keeps its lock: measured from the fault to the first message accepted.
    const auto t0 = clock_type::now();
    workload_->arm_any(t0);
    f["fault"] = cluster_->run(kind == fault_kind::osd_loss ? std::vector<std::string>{"kill-osd", site}
                                                             : std::vector<std::string>{"fail-mds"});
    if (!pump_until(o_.failover_timeout, [&] { return workload_->accepted().has_value(); }))
      throw drill_abort{fmt::format("episode {} ({}): no message accepted within {} ms", n, name(kind), o_.failover_timeout.count())};
    auto a = *workload_->accepted();
    const double took = ms_between(t0, a.at);
    failover_ms_[kind].push_back(took);
    f["ms"] = took;
    f["accepted_by"] = a.broker;
    f["note"] = "no takeover expected: ms is the fault to the first message accepted";
    say(fmt::format("[{}/{}] {} (site {}, master b{} epoch {}): first message accepted {:.1f} ms after the fault", n,
                    o_.failovers, name(kind), site, victim, epoch, took));
    const auto t_repair = clock_type::now();
    if (kind == fault_kind::osd_loss) cluster_->run({"restart-site", site});
    cluster_->run({"wait-healthy", "--timeout", "240"}, std::chrono::seconds(300));
    f["repair_ms"] = ms_between(t_repair, clock_type::now());
    return f;
  }

  expected_exits_ = {victim};
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  // `ms` counts from t0, before the tandem-cluster command starts (as it always did); the
  // command's own start-up (a Python program, ~1 s on a loaded machine) is inside it.
  // fault_acted_ms says when the primitive itself began (the command's end minus its
  // took_ms), so `ms - fault_acted_ms` is the failover the cluster and the brokers made.
  auto inflict = [&](std::vector<std::string> args) {
    f["fault"] = cluster_->run(std::move(args));
    f["fault_acted_ms"] = ms_between(t0, clock_type::now()) - f["fault"].value("took_ms", 0.0);
  };
  expected_end end = expected_end::killed;
  switch (kind) {
    case fault_kind::host_death:
    case fault_kind::host_death_nofence:
      // The mount first: a broker killed while its ceph-fuse lives has its lock released by
      // that client (process death, not host death). Between the two it may see ENOTCONN and
      // exit 75 by itself.
      inflict({"kill-fuse", site});
      fleet_->signal(victim, SIGKILL);
      end = expected_end::any;
      break;
    case fault_kind::partition:
      inflict({"partition-host", site});
      end = expected_end::any;  // exit 75 once healed, or killed by us if it hangs on the dead mount
      break;
    case fault_kind::site_loss:
      inflict({"kill-site", site});
      break;
    default: throw drill_abort{"not a cluster kind"};
  }
  await_takeover(f, n, kind, victim, epoch, t0, end, /*restart_victim=*/false);

  const auto t_repair = clock_type::now();
  if (kind == fault_kind::partition) {
    cluster_->run({"heal-host", site});
    // Evicted and healed: its next write or lock check fails (ESHUTDOWN/EIO) and it exits 75.
    if (!await_end(victim, std::chrono::seconds(60))) {
      f["victim_note"] = "still running 60 s after heal: killed by the drill";
      fleet_->signal(victim, SIGKILL);
      await_end(victim, std::chrono::seconds(30));
    }
  } else if (!await_end(victim, std::chrono::seconds(30))) {
    throw drill_abort{fmt::format("episode {} ({}): b{} did not end within 30 s", n, name(kind), victim)};
  }
  if (ended_.contains(victim)) check_end(f, victim, ended_.at(victim), end, kind);
  if (kind == fault_kind::site_loss) {
    cluster_->run({"restart-site", site}, std::chrono::seconds(180));
    cluster_->run({"wait-healthy", "--timeout", "240"}, std::chrono::seconds(300));
  } else {
    cluster_->run({"remount", site}, std::chrono::seconds(180));
  }
  f["repair_ms"] = ms_between(t_repair, clock_type::now());
  expected_exits_.clear();
  restart(victim);
  return f;
}

}  // namespace tandem::drill
