// One function per kind of fault (fault_kind.h): what the drill does, what it measures, how
// the victim must end. The shared steps (wait for one master, restart, who serves now) are
// in controller.cpp and await_takeover below.
#include <signal.h>

#include <ctime>
#include <fstream>

#include <fmt/format.h>

#include "tools/drill/controller.h"

namespace tandem::drill {
namespace {

// stop-lease: how late the lock file answers the resumed old master (see there).
constexpr std::chrono::milliseconds lock_answer_delay{300};

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A steady-clock instant as UTC "2026-12-06T17:42:51.958Z", the brokers' log format.
std::string utc_of(clock_type::time_point t) {
  using namespace std::chrono;
  const auto wall = time_point_cast<milliseconds>(system_clock::now() - duration_cast<system_clock::duration>(clock_type::now() - t));
  const std::time_t secs = system_clock::to_time_t(time_point_cast<seconds>(wall));
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", text, wall.time_since_epoch().count() % 1000);
}

bool ended_as(const exit_status& st, expected_end end) {
  switch (end) {
    case expected_end::killed: return !st.exited && st.signal == SIGKILL;
    case expected_end::clean_exit: return st.exited && st.code == 0;
    case expected_end::deposed: return st.exited && st.code == 75;  // lockmgr::exit_code_deposed
    case expected_end::any: return true;
  }
  return true;
}

const char* expectation(expected_end end) {
  switch (end) {
    case expected_end::killed: return "SIGKILL";
    case expected_end::clean_exit: return "exit 0";
    case expected_end::deposed: return "exit 75 (deposed)";
    case expected_end::any: return "any end";
  }
  return "?";
}

}  // namespace

nlohmann::json controller::episode(unsigned n, fault_kind kind) {
  ended_.clear();
  expected_exits_.clear();
  switch (kind) {
    case fault_kind::kill:
    case fault_kind::term: return signal_episode(n, kind);
    case fault_kind::stop:
    case fault_kind::fs_freeze: return pause_episode(n, kind);
    case fault_kind::lock_removed:
    case fault_kind::lock_replaced: return lock_file_episode(n, kind);
    case fault_kind::stop_lease: return stop_lease_episode(n);
    case fault_kind::eio_write:
    case fault_kind::eio_fsync:
    case fault_kind::enospc_write:
    case fault_kind::enospc_fsync: return store_error_episode(n, kind);
    case fault_kind::power_loss:
    case fault_kind::hang_resend: return machine_episode(n, kind);
    case fault_kind::clock_jump: return clock_jump_episode(n);
    case fault_kind::host_death:
    case fault_kind::host_death_nofence:
    case fault_kind::partition:
    case fault_kind::site_loss:
    case fault_kind::osd_loss:
    case fault_kind::mds_fail: return cluster_episode(n, kind);
    case fault_kind::db_primary_kill:
    case fault_kind::db_cut: return database_episode(n, kind);
  }
  throw drill_abort{"unknown fault kind"};
}

void controller::check_end(nlohmann::json& f, std::uint32_t slot, const incarnation_record& ended, expected_end end,
                           fault_kind kind) {
  const std::string status = ended.status ? ended.status->to_string() : "?";
  f["victim_exit"] = status;
  if (!ended.status || !ended_as(*ended.status, end)) {
    anomalies_.push_back({{"what", fmt::format("after {} the victim ended with {}, expected {}", name(kind), status,
                                               expectation(end))},
                          {"slot", slot},
                          {"incarnation", ended.incarnation},
                          {"log", ended.log.string()}});
  }
}

void controller::await_takeover(nlohmann::json& f, unsigned n, fault_kind kind, std::uint32_t victim,
                                std::uint64_t victim_epoch, clock_type::time_point t0, expected_end end,
                                bool restart_victim) {
  const bool accepted = pump_until(o_.failover_timeout, [&] { return workload_->accepted().has_value(); });
  if (!accepted) {
    // The store's view, for the post-mortem: which fault rules matched and were injected.
    std::string store_state;
    if (faultfs_) {
      try {
        store_state = "; tandem-faultfs status: " + faultfs_->call("status", std::chrono::seconds(5));
      } catch (const std::exception& e) {
        store_state = std::string("; tandem-faultfs status unavailable: ") + e.what();
      }
    }
    throw drill_abort{fmt::format("episode {} ({}): no new master accepted a message within {} ms{}", n, name(kind),
                                  o_.failover_timeout.count(), store_state)};
  }
  auto a = *workload_->accepted();
  const double took = ms_between(t0, a.at);
  failover_ms_[kind].push_back(took);
  f["ms"] = took;
  f["accepted_by"] = a.broker;
  if (a.reconnected_at) f["reconnect_ms"] = ms_between(t0, *a.reconnected_at);
  // Wall-clock times, to lay an episode beside the brokers' (and fence commands') log lines.
  f["fault_utc"] = utc_of(t0);
  f["accepted_utc"] = utc_of(a.at);

  // The victim had to let go for anyone to take over; restart it (unless the whole machine
  // was restarted already).
  if (restart_victim && expected_exits_.contains(victim)) {
    if (!pump_until(std::chrono::seconds(30), [&] { return ended_.contains(victim); })) {
      throw drill_abort{fmt::format("episode {} ({}): b{} did not exit within 30 s", n, name(kind), victim)};
    }
    check_end(f, victim, ended_.at(victim), end, kind);
    expected_exits_.clear();
    restart(victim);
  }
  if (restart_victim) expected_exits_.clear();

  // Who serves now: a health answer read after the first accepted message (one read just
  // after t0 may still come from the victim, before the fault took effect).
  std::optional<std::uint32_t> master_now;
  pump_until(std::chrono::seconds(5), [&] {
    master_now = monitor_->master_after(a.at);
    return master_now.has_value();
  });
  std::string figures;
  if (master_now) {
    const std::uint64_t epoch = monitor_->views()[*master_now].epoch;
    f["new_master"] = *master_now;
    f["new_epoch"] = epoch;
    if (epoch <= victim_epoch) {
      anomalies_.push_back({{"what", "epoch did not increase"}, {"episode", n}, {"old", victim_epoch}, {"new", epoch}});
    }
    if (auto line = master_line_of(*master_now, epoch)) {
      if (line->took_ms) f["lock_to_serving_ms"] = *line->took_ms;
      if (line->recovered) f["recovered"] = *line->recovered;
      if (line->records_replayed) f["records_replayed"] = *line->records_replayed;
      if (line->journal_ms) f["journal_ms"] = *line->journal_ms;
      if (line->took_ms) figures = fmt::format(", lock->serving {} ms", *line->took_ms);
      if (line->recovered) figures += fmt::format(", recovered {}", *line->recovered);
    }
  }
  const auto c = workload_->counters();
  say(fmt::format("[{}/{}] {} b{} (epoch {}) -> b{} epoch {}: first message accepted in {:.1f} ms{}  | receipted {} delivered {}",
                  n, o_.failovers, name(kind), victim, victim_epoch, master_now ? fmt::format("{}", *master_now) : "?",
                  f.value("new_epoch", std::uint64_t{0}), took, figures, c.receipted, c.delivered));
}

nlohmann::json controller::signal_episode(unsigned n, fault_kind kind) {
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  expected_exits_ = {victim};
  const int sig = kind == fault_kind::kill ? SIGKILL : SIGTERM;
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  if (auto ec = fleet_->signal(victim, sig)) throw drill_abort{fmt::format("{} b{}: {}", name(kind), victim, ec.message())};
  await_takeover(f, n, kind, victim, epoch, t0, kind == fault_kind::kill ? expected_end::killed : expected_end::clean_exit);
  return f;
}

std::optional<std::uint32_t> controller::await_resume(nlohmann::json& f, unsigned n, fault_kind kind, std::uint32_t victim,
                                                      clock_type::time_point from, const char* moved_note) {
  const bool accepted = pump_until(o_.failover_timeout, [&] { return workload_->accepted().has_value(); });
  if (!accepted) {
    throw drill_abort{fmt::format("episode {} ({}): no message accepted within {} ms after the fault on b{}", n, name(kind),
                                  o_.failover_timeout.count(), victim)};
  }
  auto a = *workload_->accepted();
  const double resume = ms_between(from, a.at);
  resume_ms_[kind].push_back(resume);
  f["resume_ms"] = resume;
  f["accepted_by"] = a.broker;
  std::optional<std::uint32_t> master_now;
  pump_until(std::chrono::seconds(5), [&] { return (master_now = monitor_->master_after(a.at)).has_value(); });
  if (master_now) {
    f["new_master"] = *master_now;
    f["new_epoch"] = monitor_->views()[*master_now].epoch;
    if (*master_now != victim) f["note"] = moved_note;
  }
  return master_now;
}

nlohmann::json controller::pause_episode(unsigned n, fault_kind kind) {
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  if (kind == fault_kind::fs_freeze && !faultfs_) throw drill_abort{"fs-freeze needs the store on tandem-faultfs"};
  std::uniform_int_distribution<long> pick(o_.pause_min.count(), std::max(o_.pause_min.count(), o_.pause_max.count()));
  const auto pause = std::chrono::milliseconds(pick(rng_));
  // Where a takeover can happen behind a pause (a lease that runs out), the victim may step
  // down when it resumes: that end is expected, and shows as "mastership moved".
  expected_exits_ = {victim};
  const auto t_stop = clock_type::now();
  if (kind == fault_kind::stop) {
    if (auto ec = fleet_->signal(victim, SIGSTOP)) throw drill_abort{fmt::format("SIGSTOP b{}: {}", victim, ec.message())};
  } else {
    faultfs_->must("freeze");
  }
  // Does the master stay responsive while its store hangs? (Its io thread must never wait
  // on the store, STYLE.md; /health answering during the pause is the outside sign.)
  bool answered = false;
  pump_until(pause, [&] {
    const auto v = monitor_->views()[victim];
    answered = answered || (v.answered && v.at > t_stop + std::chrono::milliseconds(50));
    return false;
  }, std::chrono::milliseconds(5));
  if (kind == fault_kind::fs_freeze) f["health_answered_while_frozen"] = answered;
  const auto t_cont = clock_type::now();
  workload_->arm_any(t_cont);
  if (kind == fault_kind::stop) {
    fleet_->signal(victim, SIGCONT);
  } else {
    faultfs_->must("thaw");
  }
  const double paused = ms_between(t_stop, t_cont);
  pause_ms_[kind].push_back(paused);
  f["pause_ms"] = paused;
  const auto master_now = await_resume(f, n, kind, victim, t_cont, "mastership moved during the pause");
  const double resume = f["resume_ms"].get<double>();
  // A pause past the lease (a PostgreSQL store, or --pause-min-ms above the lock lease): the
  // resumed victim steps down (exit 75) once it finds the newer epoch; wait for that end
  // while it is still expected.
  if (master_now && *master_now != victim) await_end(victim, std::chrono::seconds(30));
  say(fmt::format("[{}/{}] {} b{} (epoch {}) for {:.0f} ms: resumed, first message accepted {:.1f} ms after the pause",
                  n, o_.failovers, name(kind), victim, epoch, paused, resume));
  expected_exits_.clear();
  if (auto it = ended_.find(victim); it != ended_.end()) {
    f["victim_exit"] = it->second.status ? it->second.status->to_string() : "?";
    restart(victim);
  }
  return f;
}

nlohmann::json controller::lock_file_episode(unsigned n, fault_kind kind) {
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  // "A second broker starts on the store": the slaves wait on the old lock file's inode,
  // which guards nothing once the name is gone, so they are stopped and started again, as
  // an operator's restart would; the first to open the new file finds it unlocked.
  std::vector<std::uint32_t> slaves;
  for (std::uint32_t s = 0; s < fleet_->size(); ++s) {
    if (s != victim) slaves.push_back(s);
  }
  expected_exits_.insert(slaves.begin(), slaves.end());
  expected_exits_.insert(victim);
  for (auto s : slaves) fleet_->signal(s, SIGKILL);
  if (!pump_until(std::chrono::seconds(30), [&] {
        for (auto s : slaves) {
          if (!ended_.contains(s)) return false;
        }
        return true;
      })) {
    throw drill_abort{fmt::format("episode {} ({}): the slaves did not stop", n, name(kind))};
  }
  const auto lock = store_ / "lock";
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  std::error_code ec;
  if (kind == fault_kind::lock_removed) {
    std::filesystem::remove(lock, ec);
  } else {
    const auto fresh = store_ / "lock.drill-new";
    std::ofstream(fresh).flush();
    std::filesystem::rename(fresh, lock, ec);
  }
  if (ec) throw drill_abort{fmt::format("episode {} ({}): {}: {}", n, name(kind), lock.string(), ec.message())};
  for (auto s : slaves) {
    expected_exits_.erase(s);
    ended_.erase(s);
    restart(s);
  }
  await_takeover(f, n, kind, victim, epoch, t0, expected_end::deposed);
  return f;
}

nlohmann::json controller::stop_lease_episode(unsigned n) {
  if (!faultfs_) throw drill_abort{"stop-lease needs the store on tandem-faultfs"};
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", "stop-lease"}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  const auto lease = faultfs_->options().lease;
  const auto check = o_.lock_check_interval.value_or(std::chrono::milliseconds(1000));
  if (lease.count() <= 0) throw drill_abort{"stop-lease needs a lock lease on tandem-faultfs (--faultfs-lease-ms > 0)"};
  expected_exits_ = {victim};
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  if (auto ec = fleet_->signal(victim, SIGSTOP)) throw drill_abort{fmt::format("SIGSTOP b{}: {}", victim, ec.message())};
  // The lease runs out, a slave is granted the lock, waits its takeover delay (2 x check on
  // FUSE), recovers and serves. The victim stays stopped all that time.
  std::optional<std::uint32_t> successor;
  const bool took_over = pump_until(lease + 4 * check + o_.failover_timeout, [&] {
    successor = monitor_->master_after(t0);
    return successor && *successor != victim;
  }, std::chrono::milliseconds(5));
  if (!took_over) {
    fleet_->signal(victim, SIGCONT);
    throw drill_abort{fmt::format("episode {} (stop-lease): nobody took over behind the stopped b{} within {} ms",
                                  n, victim, (lease + 4 * check + o_.failover_timeout).count())};
  }
  // Clients that watch heart-beats leave the silent master now: the consumers and the even
  // producers move to the new one; the odd producers and the parked one stay, blocked on the
  // old master, as clients without heart-beats do. The old master resumes only once every
  // moved client is connected again: a reconnect still hanging on the stopped master would
  // land on it when it resumes, and its resends would be answered from the old master's
  // duplicate window, without an append (so without the fence); the writers check counts
  // such RECEIPTs too (docs/failover.md, bug 8), but this kind is about the fence.
  workload_->drop_connections({.consumers = true, .even_producers = true});
  const bool accepted =
      pump_until(o_.failover_timeout, [&] { return workload_->accepted().has_value() && workload_->dropped_all_back(); });
  // The old master resumes while a newer epoch serves. Its lock file now answers it slowly,
  // as a busy NFS server answers a client whose state it dropped: the watchdog learns of
  // the loss late, and only the journal's fence stands between the resumed master and a
  // RECEIPT. (The new master's own requests are not slowed.)
  faultfs_->must(fmt::format("delay stat,lock,read {} path=lock pid={}", lock_answer_delay.count(), fleet_->pid(victim)));
  const auto t_cont = clock_type::now();
  fleet_->signal(victim, SIGCONT);
  f["stopped_ms"] = ms_between(t0, t_cont);
  f["lock_answer_delay_ms"] = lock_answer_delay.count();
  if (!accepted) {
    throw drill_abort{fmt::format("episode {} (stop-lease): the new master b{} accepted no message within {} ms", n,
                                  *successor, o_.failover_timeout.count())};
  }
  await_takeover(f, n, fault_kind::stop_lease, victim, epoch, t0, expected_end::deposed);
  faultfs_->must("clear");
  return f;
}

nlohmann::json controller::store_error_episode(unsigned n, fault_kind kind) {
  if (!faultfs_) throw drill_abort{fmt::format("{} needs the store on tandem-faultfs", name(kind))};
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  expected_exits_ = {victim};
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  faultfs_->must(faultfs_request(kind, static_cast<long>(fleet_->pid(victim))));
  await_takeover(f, n, kind, victim, epoch, t0, expected_end::deposed);
  faultfs_->must("clear");
  return f;
}

void controller::machine_restart(bool forget) {
  machine_down_ = true;
  // Power first: from this instant nothing more reaches the disk, as in a real power cut;
  // the brokers then fail on I/O or are killed, whichever comes first.
  if (forget) faultfs_->must("crash");
  for (std::uint32_t s = 0; s < fleet_->size(); ++s) {
    if (fleet_->running(s)) fleet_->signal(s, SIGKILL);
  }
  if (!pump_until(std::chrono::seconds(30), [&] {
        for (std::uint32_t s = 0; s < fleet_->size(); ++s) {
          if (fleet_->running(s)) return false;
        }
        return true;
      })) {
    throw drill_abort{"the brokers did not die with the machine"};
  }
  if (forget) faultfs_->must("power-on");
  machine_down_ = false;
  ended_.clear();
  for (std::uint32_t s = 0; s < fleet_->size(); ++s) restart(s);
}

nlohmann::json controller::machine_episode(unsigned n, fault_kind kind) {
  if (!faultfs_) throw drill_abort{fmt::format("{} needs the store on tandem-faultfs", name(kind))};
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", name(kind)}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  if (kind == fault_kind::hang_resend) {
    // The store stops taking journal writes (reads go on, so the master itself stays
    // responsive); appends queue behind the hang. Then every producer loses its connection
    // (a network blip, a client timeout) and, the master being alive, reconnects to it and
    // resends what was not receipted. A master that answers a resend before the original
    // is durable has receipted nothing: the power cut that follows shows it.
    faultfs_->must("freeze write,fsync path=journal/*");
    const auto receipted_before = workload_->counters().receipted + workload_->counters().backlog_receipted;
    sleep_for(o_.pause_min);
    const unsigned dropped = workload_->drop_connections({.even_producers = true, .odd_producers = true, .parked = true});
    const bool back = pump_until(o_.failover_timeout, [&] { return workload_->dropped_all_back(); });
    f["producers_dropped"] = dropped;
    f["producers_reconnected"] = back;
    sleep_for(o_.pause_min);  // the resends' answers, if the master gives any
    // Nothing could be made durable while frozen: every RECEIPT here answers a resend from
    // memory (or a message the freeze caught after its fsync, before its RECEIPT).
    f["receipted_while_frozen"] = workload_->counters().receipted + workload_->counters().backlog_receipted - receipted_before;
  }
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  machine_restart(true);
  f["restarted_all"] = true;
  await_takeover(f, n, kind, victim, epoch, t0, expected_end::any);
  return f;
}

nlohmann::json controller::clock_jump_episode(unsigned n) {
  const std::uint32_t victim = wait_ready();
  const std::uint64_t epoch = monitor_->views()[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", "clock-jump"}, {"victim", victim}, {"victim_epoch", epoch}, {"victim_pid", fleet_->pid(victim)}};
  std::uniform_int_distribution<int> hours(1, static_cast<int>(std::max(1u, o_.clock_jump_hours)));
  std::bernoulli_distribution backwards(0.5);
  const int offset = backwards(rng_) ? -hours(rng_) : hours(rng_);
  {
    // libfaketime reads this on every clock call (controller.cpp, FAKETIME_NO_CACHE).
    std::ofstream out(faketime_file_, std::ios::trunc);
    out << fmt::format("{:+d}h\n", offset);
    if (!out) throw drill_abort{fmt::format("cannot write {}", faketime_file_.string())};
  }
  clocks_jumped_ = true;
  f["wall_clock_offset_h"] = offset;
  // Traffic under the jumped clock, then the takeover under it too.
  sleep_for(o_.pause_min);
  expected_exits_ = {victim};
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  if (auto ec = fleet_->signal(victim, SIGKILL)) throw drill_abort{fmt::format("SIGKILL b{}: {}", victim, ec.message())};
  await_takeover(f, n, fault_kind::clock_jump, victim, epoch, t0, expected_end::killed);
  return f;
}

}  // namespace tandem::drill
