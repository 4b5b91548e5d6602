#include "tools/drill/controller.h"

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "tools/client/broker_list.h"

namespace tandem::drill {
namespace {

using ms_double = std::chrono::duration<double, std::milli>;

// The preload ends the run when no RECEIPT came for this long (the message says so).
constexpr auto preload_stall_limit = std::chrono::seconds(60);

double ms_between(clock_type::time_point a, clock_type::time_point b) { return ms_double(b - a).count(); }

nlohmann::json stats_json(const std::vector<double>& v) {
  if (v.empty()) return nlohmann::json{{"count", 0}, {"p50", nullptr}, {"p90", nullptr}, {"max", nullptr}};
  double sum = 0;
  for (double x : v) sum += x;
  return nlohmann::json{{"count", v.size()},         {"p50", percentile(v, 50)},  {"p90", percentile(v, 90)},
                        {"p99", percentile(v, 99)},  {"max", percentile(v, 100)}, {"min", percentile(v, 0)},
                        {"mean", sum / static_cast<double>(v.size())}};
}

std::vector<double> all_of(const std::map<fault_kind, std::vector<double>>& m) {
  std::vector<double> out;
  for (const auto& [k, v] : m) out.insert(out.end(), v.begin(), v.end());
  return out;
}

}  // namespace

controller::controller(const drill_options& o) : o_(o), rng_(o.seed) {}

controller::~controller() = default;

void controller::say(const std::string& line) {
  if (!o_.quiet) {
    std::fputs(line.c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
}

void controller::supervise() {
  for (auto& rec : fleet_->reap()) {
    // Whatever a broker does while the machine loses power (a waiting slave's lock wait
    // answered EIO exits 1) says nothing about whether it can start: three power cuts in a
    // row stopped a long run with "cannot start" while every restart after them served.
    if (machine_down_) failed_starts_.erase(rec.slot);
    else note_start_failure(rec);
    if (machine_down_ || expected_exits_.contains(rec.slot)) {
      ended_[rec.slot] = rec;
      continue;
    }
    const auto why = last_error_line_of(rec.log);
    anomalies_.push_back({{"what", "unexpected exit"},
                          {"slot", rec.slot},
                          {"incarnation", rec.incarnation},
                          {"status", rec.status ? rec.status->to_string() : "?"},
                          {"error_line", why.value_or("")},
                          {"log", rec.log.string()},
                          {"at_ms", ms_between(origin_, clock_type::now())}});
    say(fmt::format("  ! broker b{} exited unexpectedly ({}), see {}{}", rec.slot, rec.status ? rec.status->to_string() : "?",
                    rec.log.string(), why ? "\n    its last error: " + *why : ""));
    if (!stop_requested) restart(rec.slot);
  }
}

// A broker that cannot start (exit 1: its store unreadable, its port taken, its mount
// fenced) fails the same way at every restart; restarting it for ever, as a supervisor
// would, hides the reason behind hundreds of logs. Three such ends in a row end the drill
// with the broker's own error line.
void controller::note_start_failure(const incarnation_record& rec) {
  const bool failed_start = rec.status && rec.status->exited && rec.status->code == 1;
  if (!failed_start) {
    failed_starts_.erase(rec.slot);
    return;
  }
  constexpr unsigned limit = 3;
  if (++failed_starts_[rec.slot] < limit) return;
  const auto why = last_error_line_of(rec.log);
  throw drill_abort{fmt::format("broker b{} cannot start: it exited 1 at {} starts in a row; its last error: {} (see {})",
                                rec.slot, limit, why.value_or("(no error line in its log)"), rec.log.string())};
}

void controller::restart(std::uint32_t slot) {
  if (cluster_) remount_if_fenced(slot);
  if (auto ec = fleet_->start(slot)) throw drill_abort{fmt::format("cannot restart broker b{}: {}", slot, ec.message())};
}

bool controller::pump_until(std::chrono::milliseconds timeout, const std::function<bool()>& done,
                            std::chrono::milliseconds step, bool honor_stop) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (honor_stop && stop_requested) throw drill_abort{"interrupted"};
    supervise();
    if (done()) return true;
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

std::uint32_t controller::wait_ready() {
  std::optional<std::uint32_t> master;
  const auto ok = pump_until(o_.startup_timeout, [&] {
    const auto fresh = clock_type::now() - std::chrono::milliseconds(500);
    master = monitor_->master_after(fresh);
    if (!master) return false;
    for (std::uint32_t s = 0; s < fleet_->size(); ++s) {
      if (s == *master) continue;
      if (!fleet_->running(s) || !monitor_->role_after(s, "slave", fresh)) return false;
    }
    return true;
  }, std::chrono::milliseconds(5));
  if (!ok) {
    std::string state;
    for (std::uint32_t s = 0; s < fleet_->size(); ++s) {
      auto v = monitor_->views()[s];
      state += fmt::format(" b{}={}{}", s, fleet_->running(s) ? (v.answered ? v.role : "no-answer") : "not-running",
                           v.epoch ? fmt::format("/epoch {}", v.epoch) : "");
    }
    throw drill_abort{fmt::format("brokers not ready within {} ms (want one master, the rest slaves):{}",
                                  o_.startup_timeout.count(), state)};
  }
  return *master;
}

std::optional<std::uint32_t> controller::slot_of_port(std::uint16_t port) const {
  for (std::uint32_t s = 0; s < fleet_->size(); ++s) {
    if (fleet_->client_port(s) == port) return s;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> controller::incarnation_at(std::uint32_t slot, clock_type::time_point t) const {
  // A slot runs one process at a time: the one serving at `t` is the last one started before.
  std::optional<std::uint64_t> found;
  for (const auto& r : fleet_->incarnations()) {
    if (r.slot == slot && r.started_at <= t) found = r.incarnation;
  }
  return found;
}

std::optional<master_line> controller::master_line_of(std::uint32_t slot, std::uint64_t epoch) {
  const auto* rec = fleet_->current(slot);
  if (!rec) return std::nullopt;
  log_facts facts;
  scan_log_file(rec->log, slot, rec->incarnation, facts);
  for (const auto& m : facts.masters) {
    if (m.epoch == epoch) return m;
  }
  return std::nullopt;
}

// ---- setup ---------------------------------------------------------------------------------

void controller::setup_store(nlohmann::json& rec) {
  if (cluster_) {
    setup_cluster_store(rec);
    return;
  }
  bool use_faultfs = o_.faultfs_store;
  for (auto k : o_.kinds) use_faultfs = use_faultfs || needs_faultfs(k);
  const std::filesystem::path plain = o_.store.empty() ? work_dir_ / "store" : o_.store;
  if (!use_faultfs) {
    store_ = plain;
    rec["store"] = store_.string();
    return;
  }
  faultfs_options fo;
  fo.binary = o_.faultfs;
  fo.backing = plain;
  fo.mount = work_dir_ / "store-mnt";
  fo.control = work_dir_ / "faultfs.sock";
  fo.log = work_dir_ / "logs" / "faultfs.log";
  const auto check = o_.lock_check_interval.value_or(std::chrono::milliseconds(1000));
  fo.lease = o_.faultfs_lease.value_or(4 * check);
  std::filesystem::create_directories(work_dir_ / "logs");
  faultfs_ = std::make_unique<faultfs_mount>(fo);
  if (auto ec = faultfs_->start(std::chrono::seconds(20))) {
    throw drill_abort{fmt::format("cannot mount tandem-faultfs ({}) on {}: {}; see {}", o_.faultfs.string(),
                                  fo.mount.string(), ec.message(), fo.log.string())};
  }
  store_ = fo.mount;
  rec["store"] = store_.string();
  rec["faultfs"] = {{"backing", fo.backing.string()}, {"mount", fo.mount.string()}, {"control", fo.control.string()},
                    {"lease_ms", fo.lease.count()}, {"log", fo.log.string()}};
  say(fmt::format("store on tandem-faultfs: {} over {} (lock lease {} ms)", fo.mount.string(), fo.backing.string(),
                  fo.lease.count()));
}

void controller::start_fleet(const monitor_options& mo) {
  std::error_code ec;
  const bool new_store = !std::filesystem::exists(store_, ec) || std::filesystem::is_empty(store_, ec);
  fleet_options fo;
  fo.tandemd = o_.tandemd;
  fo.store = store_;
  fo.log_dir = work_dir_ / "logs";
  fo.host = o_.host;
  fo.base_port = o_.base_port;
  fo.brokers = o_.brokers;
  fo.extra_args = o_.tandemd_args;
  fo.places = places_;
  if (cluster_) {
    // The fence hook's settings (config file only) and the ceph CLI's cluster for the script.
    fo.extra_args.push_back("--config");
    fo.extra_args.push_back((work_dir_ / "cluster-broker.json").string());
    fo.extra_env.push_back("CEPH_CONF=" + cluster_->conf());
  }
  if (o_.workload == workload_kind::redelivery) {
    // The redelivery policy lives in the config file only; cluster drills have their own.
    if (cluster_) throw drill_abort{"--workload redelivery does not combine with --cluster (both need the config file)"};
    const auto config = work_dir_ / "drill-policies.json";
    std::ofstream(config) << redelivery_config();
    fo.extra_args.push_back("--config");
    fo.extra_args.push_back(config.string());
  }
  if (o_.lock_check_interval) {
    fo.extra_args.push_back("--lock-check-interval");
    fo.extra_args.push_back(std::to_string(o_.lock_check_interval->count()));
  }
  bool faketime = false;
  for (auto k : o_.kinds) faketime = faketime || needs_faketime(k);
  if (faketime) {
    // libfaketime re-reads this file on every clock call (FAKETIME_NO_CACHE): writing it
    // jumps every broker's wall clock at once. Monotonic and boot-time clocks stay true.
    if (!std::filesystem::exists(o_.faketime_lib))
      throw drill_abort{fmt::format("clock-jump needs libfaketime ({} not found; Debian package libfaketime)",
                                    o_.faketime_lib.string())};
    faketime_file_ = work_dir_ / "faketime.rc";
    std::ofstream(faketime_file_) << "+0\n";
    fo.extra_env = {"LD_PRELOAD=" + o_.faketime_lib.string(), "FAKETIME_TIMESTAMP_FILE=" + faketime_file_.string(),
                    "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_DONT_RESET=1"};
  }
  fleet_ = std::make_unique<broker_fleet>(fo);
  monitor_ = std::make_unique<monitor>(*fleet_, mo);
  monitor_->start();

  if (auto e = fleet_->start(0, new_store)) throw drill_abort{fmt::format("cannot start tandemd ({}): {}", o_.tandemd.string(), e.message())};
  if (!pump_until(o_.startup_timeout, [&] { return monitor_->master_after(origin_) == 0u; }, std::chrono::milliseconds(5))) {
    const auto* r = fleet_->current(0);
    throw drill_abort{fmt::format("the first broker did not become master within {} ms; see {}", o_.startup_timeout.count(),
                                  r ? r->log.string() : "its log")};
  }
  for (std::uint32_t s = 1; s < fleet_->size(); ++s) {
    if (auto e = fleet_->start(s)) throw drill_abort{fmt::format("cannot start broker b{}: {}", s, e.message())};
  }
  wait_ready();
}

void controller::start_workload(nlohmann::json& rec) {
  workload_options wo;
  std::string why;
  auto list = client::parse_broker_list(
      fleet_->failover_url(fmt::format("initialReconnectDelay={}&maxReconnectDelay={}&startupMaxReconnectAttempts=50",
                                       std::max<long>(1, o_.reconnect_delay.count() / 4), o_.reconnect_delay.count())),
      &why);
  if (!list) throw drill_abort{"bad broker list: " + why};
  wo.brokers = list.value();
  wo.producers = o_.producers;
  wo.consumers = o_.consumers;
  wo.message_bytes = o_.message_bytes;
  wo.window = o_.window;
  wo.rate = o_.rate;
  wo.pending = o_.pending;
  wo.parked_rate = o_.verify_backlog ? o_.parked_rate : 0;
  wo.run_id = rec["run_id"].get<std::string>();
  wo.kind = o_.workload;
  if (cluster_) wo.heartbeat = std::chrono::milliseconds(1000);  // partitions: see workload.h
  workload_ = std::make_unique<workload>(wo);
  if (auto e = workload_->connect()) throw drill_abort{"clients cannot connect: " + e.message()};

  if (o_.pending > 0) {
    say(fmt::format("preloading {} pending {}-byte persistent messages...", o_.pending, o_.message_bytes));
    const auto t = clock_type::now();
    workload_->start_preload();
    auto last_print = clock_type::now();
    auto last_progress = clock_type::now();
    std::uint64_t last = 0;
    bool stalled = false;
    const bool done = pump_until(std::chrono::hours(1), [&] {
      auto c = workload_->counters();
      if (c.backlog_receipted >= o_.pending) return true;
      // A store that refuses every SEND (disk full: e.g. a CephFS pool filled by kept
      // stores) must end the run with its reason, not after an hour of silence.
      if (c.backlog_receipted == last && clock_type::now() - last_progress > preload_stall_limit) {
        stalled = true;
        return true;
      }
      if (c.backlog_receipted != last) {
        last = c.backlog_receipted;
        last_progress = clock_type::now();
        if (clock_type::now() - last_print > std::chrono::seconds(2)) {
          last_print = clock_type::now();
          say(fmt::format("  preload: {}/{}", c.backlog_receipted, o_.pending));
        }
      }
      return false;
    }, std::chrono::milliseconds(10));
    if (stalled || !done) {
      const auto errors = workload_->broker_errors();
      throw drill_abort{fmt::format("preload {} at {}/{} messages{}", stalled ? "stalled: no RECEIPT for 60 s" : "did not finish",
                                    last, o_.pending,
                                    errors.empty() ? std::string{} : "; the broker's last ERROR: " + errors.back())};
    }
    const double secs = ms_between(t, clock_type::now()) / 1000.0;
    rec["preload_s"] = secs;
    say(fmt::format("  preloaded {} messages in {:.1f} s ({:.0f}/s)", o_.pending, secs, static_cast<double>(o_.pending) / secs));
  }
  workload_->start_traffic();
  if (!pump_until(o_.failover_timeout, [&] { return workload_->counters().receipted > 0; }, std::chrono::milliseconds(5))) {
    throw drill_abort{"no message was receipted after starting traffic"};
  }
  sleep_for(o_.interval);
}

void controller::run_episodes(nlohmann::json& failovers, std::map<std::string, unsigned>& kind_counts) {
  std::uniform_int_distribution<std::size_t> pick(0, o_.kinds.size() - 1);
  for (unsigned n = 1; n <= o_.failovers; ++n) {
    const fault_kind kind = o_.order == kind_order::cycle ? o_.kinds[(n - 1) % o_.kinds.size()] : o_.kinds[pick(rng_)];
    ++kind_counts[name(kind)];
    const auto start = clock_type::now();
    nlohmann::json f;
    try {
      f = episode(n, kind);
    } catch (...) {
      // An episode that could not finish still happened: losses it caused belong to it.
      spans_.push_back({kind, start, clock_type::now()});
      throw;
    }
    spans_.push_back({kind, start, clock_type::now()});
    f["t0_ms"] = ms_between(origin_, start);
    failovers.push_back(std::move(f));
    sleep_for(o_.interval);
  }
}

// ---- verification --------------------------------------------------------------------------

std::vector<write_ack> controller::collect_acks(const std::vector<ack_record>& acks,
                                                const std::vector<probe_write_record>& probes, const log_facts& facts,
                                                const mastership_book& book) const {
  // The epoch each broker process served with: its "master epoch=" line, else its /health.
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> epochs;
  for (const auto& s : book.stints()) {
    if (s.source == evidence_source::health && s.epoch != 0) epochs[{s.slot, s.incarnation}] = s.epoch;
  }
  for (const auto& m : facts.masters) epochs[{m.slot, m.incarnation}] = m.epoch;
  auto epoch_of = [&](std::uint32_t slot, std::uint64_t inc) -> std::optional<std::uint64_t> {
    auto it = epochs.find({slot, inc});
    if (it == epochs.end()) return std::nullopt;
    return it->second;
  };
  std::vector<write_ack> out;
  out.reserve(acks.size() + probes.size());
  for (const auto& a : acks) {
    write_ack w;
    w.sent = a.sent;
    w.received = a.received;
    w.what = fmt::format("p{}:{}", a.stream, a.seq);
    if (auto slot = slot_of_port(a.port)) {
      w.slot = *slot;
      if (auto inc = incarnation_at(*slot, a.connected_at)) {
        w.incarnation = *inc;
        w.epoch = epoch_of(*slot, *inc);
      }
    }
    out.push_back(std::move(w));
  }
  for (const auto& p : probes) {
    if (!p.write.receipted) continue;
    write_ack w;
    w.sent = p.write.sent;
    w.received = *p.write.receipted;
    w.slot = p.slot;
    w.incarnation = p.incarnation;
    w.what = fmt::format("probe:{}", p.write.seq);
    if (p.incarnation != 0) w.epoch = epoch_of(p.slot, p.incarnation);
    out.push_back(std::move(w));
  }
  return out;
}

nlohmann::json controller::kinds_json(const verdict& v, const writers_report& w, std::string& lines) const {
  // Attribution by time. A loss belongs to the episode whose span contains its RECEIPT (the
  // old master receipted during the fault), else to the next episode (the fault that struck
  // while it sat unsynced or undelivered). A duplicate or an overlap belongs to the episode
  // it happened in, else to the last one before it (redeliveries follow a takeover).
  auto within = [&](clock_type::time_point t) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      if (spans_[i].start <= t && t <= spans_[i].end) return i;
    }
    return std::nullopt;
  };
  auto for_loss = [&](clock_type::time_point t) -> std::optional<std::size_t> {
    if (auto i = within(t)) return i;
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      if (spans_[i].start > t) return i;
    }
    return std::nullopt;
  };
  auto for_after = [&](clock_type::time_point t) -> std::optional<std::size_t> {
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < spans_.size(); ++i) {
      if (spans_[i].start <= t) found = i;
    }
    return found;
  };
  struct tally {
    unsigned episodes = 0;
    std::uint64_t lost = 0, duplicates = 0, unflagged = 0, overlapping = 0, acked_redelivered = 0;
  };
  std::map<std::string, tally> t;
  const std::string none = "(no fault yet)";
  auto key = [&](std::optional<std::size_t> i) { return i ? std::string(name(spans_[*i].kind)) : none; };
  for (const auto& s : spans_) ++t[name(s.kind)].episodes;
  for (auto at : v.lost_receipt_times) ++t[key(for_loss(at))].lost;
  for (const auto& [at, flagged] : v.duplicate_events) {
    auto& x = t[key(for_after(at))];
    ++x.duplicates;
    if (!flagged) ++x.unflagged;
  }
  for (auto at : w.overlap_times) ++t[key(for_after(at))].overlapping;
  for (auto at : v.acked_redelivered_times) ++t[key(for_after(at))].acked_redelivered;

  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, x] : t) {
    nlohmann::json j{{"episodes", x.episodes},
                     {"lost", x.lost},
                     {"duplicates", x.duplicates},
                     {"unflagged_duplicates", x.unflagged},
                     {"overlapping_writers", x.overlapping},
                     {"acked_redelivered", x.acked_redelivered}};
    std::string timing;
    if (auto kind = parse_fault_kind(k)) {
      if (auto it = failover_ms_.find(*kind); it != failover_ms_.end()) {
        j["failover_ms"] = stats_json(it->second);
        timing = fmt::format("failover p50 {:.1f} p90 {:.1f} max {:.1f} ms", percentile(it->second, 50),
                             percentile(it->second, 90), percentile(it->second, 100));
      }
      if (auto it = pause_ms_.find(*kind); it != pause_ms_.end()) j["pause_ms"] = stats_json(it->second);
      if (auto it = resume_ms_.find(*kind); it != resume_ms_.end()) {
        j["resume_ms"] = stats_json(it->second);
        timing = fmt::format("resume p50 {:.1f} p90 {:.1f} max {:.1f} ms", percentile(it->second, 50),
                             percentile(it->second, 90), percentile(it->second, 100));
      }
    }
    out[k] = j;
    lines += fmt::format("  {:<14} {:>3} episodes  lost {}  duplicates {} (unflagged {})  acked redelivered {}  overlapping writers {}{}{}\n",
                         k, x.episodes, x.lost, x.duplicates, x.unflagged, x.acked_redelivered, x.overlapping,
                         timing.empty() ? "" : "  ", timing);
  }
  return out;
}

void controller::drain_and_verify(nlohmann::json& rec, std::string& abort_reason) {
  verdict v;
  bool drained = false;
  bool end_drained = !o_.verify_backlog;
  // Interrupted by the operator: still look at what arrived, but briefly, and do not call
  // what has not arrived yet lost.
  const bool interrupted = stop_requested.load();
  // Stopped before the end (a broker that cannot start, no new master in time): the drain
  // may have no broker to drain from, so what it misses is undelivered, not proven lost; the
  // run is INCOMPLETE (exit 3), never a pass, and the store is kept for a look.
  const bool stopped_early = interrupted || !abort_reason.empty();
  const auto drain_budget = interrupted ? std::chrono::milliseconds(5000) : o_.drain_timeout;
  std::vector<ack_record> acks;
  if (workload_) {
    try {
      workload_->stop_producers();
      pump_until(drain_budget, [&] { return workload_->counters().producers_outstanding == 0; }, std::chrono::milliseconds(5), false);
      // Wait while deliveries make progress; give up after drain_timeout without any (what
      // has not arrived then is lost: the verdict says so, the drill goes on draining the rest).
      auto wait_drained = [&](auto undelivered) {
        std::uint64_t last = UINT64_MAX;
        auto last_progress = clock_type::now();
        bool stalled = false;
        pump_until(std::chrono::hours(1), [&] {
          const std::uint64_t u = undelivered();
          if (u == 0) return true;
          if (u != last) {
            last = u;
            last_progress = clock_type::now();
          }
          stalled = clock_type::now() - last_progress > drain_budget;
          return stalled;
        }, std::chrono::milliseconds(5), false);
        return !stalled;
      };
      drained = wait_drained([&] { return workload_->counters().undelivered; });
      // The probe writes nothing more once the monitor stops; then its writes, the parked
      // messages and the backlog are drained.
      monitor_->stop();
      if (o_.verify_backlog) {
        std::vector<probe_write> writes;
        for (const auto& p : monitor_->probe_writes()) writes.push_back(p.write);
        say("draining the backlog and the probe's writes...");
        workload_->start_end_consumers(writes, probe_destination_);
        end_drained = wait_drained([&] {
          auto c = workload_->counters();
          return c.backlog_undelivered + c.probe_undelivered;
        });
      }
    } catch (const drill_abort& a) {
      if (abort_reason.empty()) abort_reason = "verification: " + a.reason;
    }
    v = workload_->finish();
    acks = workload_->acks();
    rec["broker_errors"] = workload_->broker_errors();
    const auto c = workload_->counters();
    rec["reconnects"] = c.reconnects;
    rec["resends"] = c.receipts_lost;
    rec["nacks"] = c.nacks;
  }
  monitor_->stop();
  const auto book = monitor_->book();
  const auto probes = monitor_->probe_writes();
  fleet_->stop_all(std::chrono::seconds(10));
  if (faultfs_) {
    try {
      rec["faultfs"]["final_status"] = nlohmann::json::parse(faultfs_->call("status").substr(3), nullptr, false);
    } catch (const std::exception&) {
    }
    faultfs_->stop();
  }
  workload_.reset();

  // Double masters: the monitor's evidence and the brokers' own logs.
  auto violations = book.violations();
  nlohmann::json evidence = nlohmann::json::array();
  for (const auto& d : violations) {
    nlohmann::json j;
    to_json(j, d, origin_);
    evidence.push_back(j);
  }
  log_facts facts;
  for (const auto& inc : fleet_->incarnations()) scan_log_file(inc.log, inc.slot, inc.incarnation, facts);
  // Epochs the logs show served twice or going back in time are a broken election: fatal.
  // Two processes both REPORTING master (health, CONNECTED) is evidence, not a verdict: a
  // master resumed after its lock was taken still says so until its watchdog notices,
  // and harms nothing if it completes no append (the writers check decides that).
  auto log_problems = check_master_epochs(facts.masters, !clocks_jumped_);
  nlohmann::json epoch_evidence = nlohmann::json::array();
  for (const auto& p : log_problems) epoch_evidence.push_back(p);
  const std::uint64_t double_masters = violations.size();

  // Two writers: every RECEIPT, attributed to the epoch of the process that sent it.
  const auto writers = check_writers(collect_acks(acks, probes, facts, book));
  nlohmann::json writers_json;
  to_json(writers_json, writers, origin_);

  nlohmann::json verification;
  to_json(verification, v);
  rec["verification"] = verification;
  rec["sent"] = v.sent;
  rec["receipted"] = v.receipted;
  rec["delivered"] = v.delivered;
  rec["lost"] = v.lost;
  rec["duplicates"] = v.duplicates;
  rec["duplicates_unflagged"] = v.duplicates_unflagged;
  rec["unflagged_duplicates"] = v.duplicates_unflagged;
  rec["order_violations"] = v.order_violations;
  rec["policy_violations"] = v.policy_violations;
  rec["acks_receipted"] = v.acks_receipted;
  rec["acked_redelivered"] = v.acked_redelivered;
  rec["workload"] = name(o_.workload);
  rec["overlapping_writers"] = writers.overlapping;
  rec["writers"] = writers_json;
  rec["double_masters"] = double_masters;
  rec["double_master_evidence"] = evidence;
  rec["epoch_problems"] = log_problems.size();
  rec["epoch_evidence"] = epoch_evidence;
  rec["log_time_order_checked"] = !clocks_jumped_;
  rec["observations"] = {{"total", book.observations()}, {"master_or_serving", book.positives()}, {"stints", book.stints().size()}};
  std::uint64_t probe_receipted = 0;
  for (const auto& p : probes) probe_receipted += p.write.receipted ? 1 : 0;
  rec["probe_writes"] = {{"sent", probes.size()}, {"receipted", probe_receipted}};
  rec["masters_logged"] = facts.masters.size();
  rec["step_downs_logged"] = facts.step_downs.size();
  rec["failover_ms"] = stats_json(all_of(failover_ms_));
  rec["pause_ms"] = stats_json(all_of(pause_ms_));
  rec["resume_ms"] = stats_json(all_of(resume_ms_));
  std::string kind_lines;
  rec["kinds"] = kinds_json(v, writers, kind_lines);
  rec["anomalies"] = anomalies_;
  rec["drained"] = drained;
  rec["backlog_drained"] = end_drained;
  nlohmann::json incs = nlohmann::json::array();
  for (const auto& inc : fleet_->incarnations()) {
    incs.push_back({{"slot", inc.slot}, {"incarnation", inc.incarnation}, {"pid", inc.pid}, {"log", inc.log.string()},
                    {"status", inc.status ? inc.status->to_string() : "running"}});
  }
  rec["incarnations"] = incs;
  rec["duration_s"] = ms_between(origin_, clock_type::now()) / 1000.0;

  // Loss shows as receipted messages that never arrive while deliveries have stopped; after an
  // interruption the drain was cut short, so only what is wrong regardless of timing counts.
  const bool complete = drained && end_drained;
  const bool messages_failed = v.corrupted > 0 || v.unexpected > 0 || v.order_violations > 0 || v.policy_violations > 0 ||
                               v.duplicates_unflagged > 0 || v.acked_redelivered > 0 || (!stopped_early && (v.lost > 0 || !complete));
  const bool failed = messages_failed || !log_problems.empty() || writers.overlapping > 0;
  rec["interrupted"] = interrupted;
  rec["complete"] = complete;
  rec["failed"] = failed;
  rec["summary_kinds"] = kind_lines;

  // Human summary lines for run() to assemble.
  std::string s;
  std::string kinds;
  for (const auto& [k, n] : rec["kind_counts"].items()) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", k, n.get<unsigned>());
  s += fmt::format("tandem-drill: {} brokers, {} of {} episodes done{}, seed {}, {}-byte messages, {} pending\n", o_.brokers,
                   rec["failovers"].size(), o_.failovers, kinds.empty() ? "" : " (" + kinds + ")", o_.seed,
                   o_.message_bytes, o_.pending);
  const auto all_failover = all_of(failover_ms_);
  if (!all_failover.empty()) {
    s += fmt::format("takeovers (fault -> first message accepted by the new master), {}: p50 {:.1f} ms  p90 {:.1f} ms  max {:.1f} ms\n",
                     all_failover.size(), percentile(all_failover, 50), percentile(all_failover, 90),
                     percentile(all_failover, 100));
  }
  const auto all_pause = all_of(pause_ms_), all_resume = all_of(resume_ms_);
  if (!all_pause.empty()) {
    s += fmt::format("pauses (SIGSTOP/SIGCONT, freeze/thaw), {}: paused p50 {:.0f} ms max {:.0f} ms; resume -> first accepted p50 {:.1f} ms max {:.1f} ms\n",
                     all_pause.size(), percentile(all_pause, 50), percentile(all_pause, 100), percentile(all_resume, 50),
                     percentile(all_resume, 100));
  }
  s += fmt::format("messages: sent {}, receipted {}, delivered {}, lost {}, duplicates {} (unflagged {}), order violations {}",
                   v.sent, v.receipted, v.delivered, v.lost, v.duplicates, v.duplicates_unflagged, v.order_violations);
  s += fmt::format(", acked redelivered {} (of {} ACKs receipted)", v.acked_redelivered, v.acks_receipted);
  if (v.corrupted) s += fmt::format(", corrupted {}", v.corrupted);
  if (v.unexpected) s += fmt::format(", unexpected {}", v.unexpected);
  if (o_.workload != workload_kind::plain)
    s += fmt::format("\nworkload {}: policy violations {}", name(o_.workload), v.policy_violations);
  s += "\n";
  if (!v.policy_examples.empty()) {
    s += "policy violations (first ones):";
    for (const auto& e : v.policy_examples) s += " " + e;
    s += "\n";
  }
  if (!v.lost_examples.empty()) {
    s += "lost (first ones):";
    for (const auto& e : v.lost_examples) s += " " + e;
    s += "\n";
  }
  if (!v.acked_redelivered_examples.empty()) {
    s += "delivered again after their ACK was receipted (first ones):";
    for (const auto& e : v.acked_redelivered_examples) s += " " + e;
    s += "\n";
  }
  if (!v.unflagged_examples.empty()) {
    s += "delivered again without a flag (first ones):";
    for (const auto& e : v.unflagged_examples) s += " " + e;
    s += "\n";
  }
  s += fmt::format("overlapping writers: {} RECEIPTs ({} RECEIPTs attributed to {} epochs, {} probe writes receipted)\n",
                   writers.overlapping, writers.acks - writers.unattributed, writers.windows.size(), probe_receipted);
  for (const auto& p : writers.pairs) s += "  " + p.example + "\n";
  s += fmt::format("epochs: {} problems in {} master lines of the logs{}\n", log_problems.size(), facts.masters.size(),
                   clocks_jumped_ ? " (time order not checked: wall clocks were jumped)" : "");
  for (const auto& p : log_problems) s += "  " + p + "\n";
  s += fmt::format("both reported master: {} times ({} observations by health and STOMP probes; evidence, not a verdict)\n",
                   double_masters, book.observations());
  s += "per kind:\n" + kind_lines;
  if (!anomalies_.empty()) s += fmt::format("anomalies: {} (see \"anomalies\" in the JSON)\n", anomalies_.size());
  if (!complete) {
    s += interrupted     ? "interrupted: the drain was cut short, so \"lost\" above is not a verdict\n"
         : stopped_early ? "stopped early (below): \"lost\" above counts what the drain could not fetch, not a verdict; the store is kept\n"
                     : "not every receipted message arrived before the drain timeout\n";
  }
  rec["summary_text"] = s;
}

// ---- run -----------------------------------------------------------------------------------

drill_result controller::run() {
  drill_result result;
  auto& rec = result.record;
  origin_ = clock_type::now();
  rec["tool"] = "tandem-drill";
  rec["seed"] = o_.seed;
  std::vector<std::string> kind_names;
  for (auto k : o_.kinds) kind_names.push_back(name(k));
  rec["options"] = {{"brokers", o_.brokers},
                    {"failovers", o_.failovers},
                    {"kinds", kind_names},
                    {"order", o_.order == kind_order::cycle ? "cycle" : "random"},
                    {"message_bytes", o_.message_bytes},
                    {"producers", o_.producers},
                    {"consumers", o_.consumers},
                    {"window", o_.window},
                    {"rate", o_.rate},
                    {"pending", o_.pending},
                    {"parked_rate", o_.parked_rate},
                    {"probe_writes", o_.probe_writes},
                    {"interval_ms", o_.interval.count()},
                    {"pause_min_ms", o_.pause_min.count()},
                    {"pause_max_ms", o_.pause_max.count()},
                    {"reconnect_delay_ms", o_.reconnect_delay.count()},
                    {"lock_check_interval_ms", o_.lock_check_interval ? nlohmann::json(o_.lock_check_interval->count()) : nlohmann::json()},
                    {"tandemd", o_.tandemd.string()},
                    {"base_port", o_.base_port},
                    {"tandemd_args", o_.tandemd_args}};
  if (const char* unsafe = std::getenv("TANDEM_UNSAFE_FAULT")) rec["options"]["tandem_unsafe_fault"] = unsafe;

  if (o_.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = fmt::format("{}/tandem-drill-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!::mkdtemp(tmpl.data())) {
      result.exit_code = 3;
      result.summary = fmt::format("tandem-drill: cannot create a work directory under {}\n", tmpl);
      return result;
    }
    work_dir_ = tmpl;
    temp_dir_ = true;
  } else {
    work_dir_ = o_.work_dir;
    std::filesystem::create_directories(work_dir_);
  }
  rec["work_dir"] = work_dir_.string();
  const std::string run_id = fmt::format("r{:x}", std::random_device{}() ^ static_cast<unsigned>(o_.seed));
  rec["run_id"] = run_id;
  probe_destination_ = fmt::format("/queue/drill.{}.probe", run_id);

  std::string abort_reason;
  nlohmann::json failovers = nlohmann::json::array();
  std::map<std::string, unsigned> kind_counts;
  try {
    // Before any thread exists: the drill moves into the cluster's admin namespace.
    if (!o_.cluster_cli.empty()) {
      std::filesystem::create_directories(work_dir_ / "logs");
      cluster_ = cluster::attach(o_.cluster_cli, work_dir_ / "logs" / "cluster.log");
    }
    setup_store(rec);
    monitor_options mo;
    mo.probe = o_.probe;
    if (o_.probe && o_.probe_writes && o_.verify_backlog) mo.probe_destination = probe_destination_;
    mo.probe_stream = o_.producers + 1;
    start_fleet(mo);
    say(fmt::format("tandem-drill: {} brokers on {} (logs in {}), seed {}", o_.brokers, store_.string(),
                    (work_dir_ / "logs").string(), o_.seed));
    start_workload(rec);
    run_episodes(failovers, kind_counts);
  } catch (const drill_abort& a) {
    abort_reason = a.reason;
    say("tandem-drill: stopping early: " + a.reason);
  } catch (const std::exception& e) {
    abort_reason = e.what();
    say(std::string("tandem-drill: stopping early: ") + e.what());
  }
  rec["failovers"] = failovers;
  rec["kind_counts"] = kind_counts;
  if (fleet_ && monitor_) {
    drain_and_verify(rec, abort_reason);
  } else {
    if (fleet_) fleet_->stop_all(std::chrono::seconds(10));
    if (faultfs_) faultfs_->stop();
    rec["failed"] = false;
    rec["summary_text"] = "";
  }
  const bool failed = rec.value("failed", false);
  result.exit_code = failed ? 1 : (abort_reason.empty() ? 0 : 3);
  rec["aborted"] = abort_reason.empty() ? nlohmann::json() : nlohmann::json(abort_reason);
  rec["ok"] = result.exit_code == 0;
  std::string s = rec.value("summary_text", "");
  rec.erase("summary_text");
  rec.erase("summary_kinds");
  if (!abort_reason.empty()) s += "stopped early: " + abort_reason + "\n";
  s += fmt::format("result: {}\n", result.exit_code == 0 ? "PASS" : (failed ? "FAIL" : "INCOMPLETE"));
  if (temp_dir_ && result.exit_code == 0 && !o_.keep_work_dir) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);
    rec["work_dir_removed"] = true;
    if (cluster_) std::filesystem::remove_all(store_, ec);  // the store on CephFS, outside work_dir
  } else {
    s += fmt::format("logs and store kept in {}\n", work_dir_.string());
  }
  result.summary = s;
  return result;
}

}  // namespace tandem::drill
