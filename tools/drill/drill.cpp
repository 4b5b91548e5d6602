#include "tools/drill/drill.h"

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "tools/client/broker_list.h"
#include "tools/drill/fleet.h"
#include "tools/drill/log_scan.h"
#include "tools/drill/monitor.h"
#include "tools/drill/workload.h"

namespace tandem::drill {

std::atomic<bool> stop_requested{false};

const char* to_string(kill_kind k) {
  switch (k) {
    case kill_kind::kill: return "SIGKILL";
    case kill_kind::term: return "SIGTERM";
    case kill_kind::stop: return "SIGSTOP";
  }
  return "?";
}

bool parse_kill_kind(std::string_view text, kill_kind& out) {
  std::string t(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t.starts_with("sig")) t = t.substr(3);
  if (t == "kill" || t == "9") out = kill_kind::kill;
  else if (t == "term" || t == "15") out = kill_kind::term;
  else if (t == "stop" || t == "19") out = kill_kind::stop;
  else return false;
  return true;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

namespace {

using ms_double = std::chrono::duration<double, std::milli>;

double ms_between(clock_type::time_point a, clock_type::time_point b) { return ms_double(b - a).count(); }

nlohmann::json stats_json(const std::vector<double>& v) {
  if (v.empty()) return nlohmann::json{{"count", 0}, {"p50", nullptr}, {"p90", nullptr}, {"max", nullptr}};
  double sum = 0;
  for (double x : v) sum += x;
  return nlohmann::json{{"count", v.size()},
                        {"p50", percentile(v, 50)},
                        {"p90", percentile(v, 90)},
                        {"p99", percentile(v, 99)},
                        {"max", percentile(v, 100)},
                        {"min", percentile(v, 0)},
                        {"mean", sum / static_cast<double>(v.size())}};
}

// Something went wrong that ends the drill early (not a verification failure).
struct drill_abort {
  std::string reason;
};

class controller {
 public:
  explicit controller(const drill_options& o) : o_(o), rng_(o.seed) {}

  drill_result run();

 private:
  void say(const std::string& line) {
    if (!o_.quiet) {
      std::fputs(line.c_str(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }
  }
  // Reaps exited brokers and restarts them as slaves (systemd's Restart=always). Exits of the
  // current victim are expected; any other exit is an anomaly kept for the report.
  void supervise();
  // Supervises until `done()` or the deadline; false on timeout. Throws drill_abort when the
  // operator interrupts.
  bool pump_until(std::chrono::milliseconds timeout, const std::function<bool()>& done,
                  std::chrono::milliseconds step = std::chrono::milliseconds(1), bool honor_stop = true);
  // Exactly one master and every other broker a slave; returns the master.
  std::uint32_t wait_ready();
  nlohmann::json failover_once(unsigned n, kill_kind kind);
  std::optional<master_line> master_line_of(std::uint32_t slot, std::uint64_t epoch);
  void finish_traffic(nlohmann::json& record);

  const drill_options& o_;
  std::mt19937_64 rng_;
  std::filesystem::path work_dir_;
  std::filesystem::path store_;
  std::unique_ptr<broker_fleet> fleet_;
  std::unique_ptr<monitor> monitor_;
  std::unique_ptr<workload> workload_;
  clock_type::time_point origin_;
  std::optional<std::uint32_t> victim_;  // exits of this slot are expected; failover_once restarts it
  std::optional<incarnation_record> victim_exit_;
  nlohmann::json anomalies_ = nlohmann::json::array();
  std::vector<double> failover_ms_;
  std::vector<double> pause_ms_;
  std::vector<double> resume_ms_;
};

void controller::supervise() {
  for (auto& rec : fleet_->reap()) {
    const bool expected = victim_ && *victim_ == rec.slot;
    if (expected) {
      victim_exit_ = rec;
      continue;
    }
    {
      anomalies_.push_back({{"what", "unexpected exit"},
                            {"slot", rec.slot},
                            {"incarnation", rec.incarnation},
                            {"status", rec.status ? rec.status->to_string() : "?"},
                            {"log", rec.log.string()},
                            {"at_ms", ms_between(origin_, clock_type::now())}});
      say(fmt::format("  ! broker b{} exited unexpectedly ({}), see {}", rec.slot,
                      rec.status ? rec.status->to_string() : "?", rec.log.string()));
    }
    if (!stop_requested) {
      if (auto ec = fleet_->start(rec.slot)) throw drill_abort{fmt::format("cannot restart broker b{}: {}", rec.slot, ec.message())};
    }
  }
}

bool controller::pump_until(std::chrono::milliseconds timeout, const std::function<bool()>& done, std::chrono::milliseconds step,
                            bool honor_stop) {
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
    throw drill_abort{fmt::format("brokers not ready within {} ms (want one master, the rest slaves):{}", o_.startup_timeout.count(), state)};
  }
  return *master;
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

nlohmann::json controller::failover_once(unsigned n, kill_kind kind) {
  const std::uint32_t victim = wait_ready();
  const auto views = monitor_->views();
  const std::uint64_t victim_epoch = views[victim].epoch;
  nlohmann::json f{{"n", n}, {"kind", to_string(kind)}, {"victim", victim}, {"victim_epoch", victim_epoch},
                   {"victim_pid", fleet_->pid(victim)}};
  victim_ = victim;
  victim_exit_.reset();

  if (kind == kill_kind::stop) {
    std::uniform_int_distribution<long> pick(o_.pause_min.count(), std::max(o_.pause_min.count(), o_.pause_max.count()));
    const auto pause = std::chrono::milliseconds(pick(rng_));
    const auto t_stop = clock_type::now();
    if (auto ec = fleet_->signal(victim, SIGSTOP)) throw drill_abort{fmt::format("SIGSTOP b{}: {}", victim, ec.message())};
    pump_until(pause, [] { return false; });
    const auto t_cont = clock_type::now();
    workload_->arm_any(t_cont);
    fleet_->signal(victim, SIGCONT);
    const bool accepted = pump_until(o_.failover_timeout, [&] { return workload_->accepted().has_value(); });
    const double paused = ms_between(t_stop, t_cont);
    pause_ms_.push_back(paused);
    f["pause_ms"] = paused;
    if (!accepted) {
      f["error"] = "no message accepted after SIGCONT";
      throw drill_abort{fmt::format("failover {}: no message accepted within {} ms after SIGCONT of b{}", n,
                                    o_.failover_timeout.count(), victim)};
    }
    auto a = *workload_->accepted();
    const double resume = ms_between(t_cont, a.at);
    resume_ms_.push_back(resume);
    f["resume_ms"] = resume;
    f["accepted_by"] = a.broker;
    // On a local file system nobody can take over a stopped master: the same broker, with the
    // same epoch, must still be master (or, where a takeover could happen, it must have
    // stepped down: that shows up as an exit of the victim, restarted by supervise()).
    std::optional<std::uint32_t> master_now;
    pump_until(std::chrono::seconds(5), [&] { return (master_now = monitor_->master_after(a.at)).has_value(); });
    if (master_now) {
      f["new_master"] = *master_now;
      f["new_epoch"] = monitor_->views()[*master_now].epoch;
      if (*master_now != victim) f["note"] = "mastership moved during the pause";
    }
    say(fmt::format("[{}/{}] SIGSTOP b{} (epoch {}) for {:.0f} ms: resumed, first message accepted {:.1f} ms after SIGCONT",
                    n, o_.failovers, victim, victim_epoch, paused, resume));
    victim_.reset();
    if (victim_exit_) {
      // It stepped down after the pause (possible where a takeover can happen behind it).
      f["victim_exit"] = victim_exit_->status ? victim_exit_->status->to_string() : "?";
      if (auto ec = fleet_->start(victim)) throw drill_abort{fmt::format("cannot restart broker b{}: {}", victim, ec.message())};
    }
    return f;
  }

  const int sig = kind == kill_kind::kill ? SIGKILL : SIGTERM;
  const auto t0 = clock_type::now();
  workload_->arm(t0);
  if (auto ec = fleet_->signal(victim, sig)) throw drill_abort{fmt::format("{} b{}: {}", to_string(kind), victim, ec.message())};
  const bool accepted = pump_until(o_.failover_timeout, [&] { return workload_->accepted().has_value(); });
  if (!accepted) {
    throw drill_abort{fmt::format("failover {}: no new master accepted a message within {} ms of {} to b{}", n,
                                  o_.failover_timeout.count(), to_string(kind), victim)};
  }
  auto a = *workload_->accepted();
  const double took = ms_between(t0, a.at);
  failover_ms_.push_back(took);
  f["ms"] = took;
  f["accepted_by"] = a.broker;
  if (a.reconnected_at) f["reconnect_ms"] = ms_between(t0, *a.reconnected_at);

  // The victim must be gone (it had to release the lock for anyone to take over); restart it.
  auto ended = victim_exit_ ? victim_exit_ : fleet_->wait_exit(victim, std::chrono::seconds(30));
  if (!ended || !ended->status) throw drill_abort{fmt::format("b{} did not exit within 30 s of {}", victim, to_string(kind))};
  f["victim_exit"] = ended->status->to_string();
  const bool clean = kind == kill_kind::term ? (ended->status->exited && ended->status->code == 0)
                                             : (!ended->status->exited && ended->status->signal == SIGKILL);
  if (!clean) {
    anomalies_.push_back({{"what", fmt::format("unexpected end after {}", to_string(kind))}, {"slot", victim},
                          {"status", ended->status->to_string()}, {"log", ended->log.string()}});
  }
  if (auto ec = fleet_->start(victim)) throw drill_abort{fmt::format("cannot restart broker b{}: {}", victim, ec.message())};
  victim_.reset();

  // Who serves now: a health answer read after the first accepted message (one read just
  // after t0 may still come from the victim, before the signal took effect).
  std::optional<std::uint32_t> master_now;
  pump_until(std::chrono::seconds(5), [&] {
    master_now = monitor_->master_after(a.at);
    return master_now && *master_now != victim;
  });
  if (master_now && *master_now == victim) master_now.reset();
  std::string figures;
  if (master_now) {
    const std::uint64_t epoch = monitor_->views()[*master_now].epoch;
    f["new_master"] = *master_now;
    f["new_epoch"] = epoch;
    if (epoch <= victim_epoch) {
      anomalies_.push_back({{"what", "epoch did not increase"}, {"failover", n}, {"old", victim_epoch}, {"new", epoch}});
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
                  n, o_.failovers, to_string(kind), victim, victim_epoch,
                  master_now ? fmt::format("{}", *master_now) : "?", f.value("new_epoch", std::uint64_t{0}), took, figures,
                  c.receipted, c.delivered));
  return f;
}

drill_result controller::run() {
  drill_result result;
  auto& rec = result.record;
  origin_ = clock_type::now();
  rec["tool"] = "tandem-drill";
  rec["seed"] = o_.seed;
  std::vector<std::string> kind_names;
  for (auto k : o_.kinds) kind_names.push_back(to_string(k));
  rec["options"] = {{"brokers", o_.brokers},         {"failovers", o_.failovers},       {"kinds", kind_names},
                    {"message_bytes", o_.message_bytes}, {"producers", o_.producers},   {"consumers", o_.consumers},
                    {"window", o_.window},           {"rate", o_.rate},                 {"pending", o_.pending},
                    {"interval_ms", o_.interval.count()}, {"pause_min_ms", o_.pause_min.count()},
                    {"pause_max_ms", o_.pause_max.count()}, {"reconnect_delay_ms", o_.reconnect_delay.count()},
                    {"tandemd", o_.tandemd.string()}, {"base_port", o_.base_port}, {"tandemd_args", o_.tandemd_args}};

  // Work directory, store, logs.
  bool temp_dir = false;
  if (o_.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = fmt::format("{}/tandem-drill-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!::mkdtemp(tmpl.data())) {
      result.exit_code = 3;
      result.summary = fmt::format("tandem-drill: cannot create a work directory under {}", tmpl);
      return result;
    }
    work_dir_ = tmpl;
    temp_dir = true;
  } else {
    work_dir_ = o_.work_dir;
    std::filesystem::create_directories(work_dir_);
  }
  store_ = o_.store.empty() ? work_dir_ / "store" : o_.store;
  std::error_code ec;
  const bool new_store = !std::filesystem::exists(store_, ec) || std::filesystem::is_empty(store_, ec);
  rec["work_dir"] = work_dir_.string();
  rec["store"] = store_.string();

  fleet_options fo;
  fo.tandemd = o_.tandemd;
  fo.store = store_;
  fo.log_dir = work_dir_ / "logs";
  fo.host = o_.host;
  fo.base_port = o_.base_port;
  fo.brokers = o_.brokers;
  fo.extra_args = o_.tandemd_args;
  fleet_ = std::make_unique<broker_fleet>(fo);
  monitor_options mo;
  mo.probe = o_.probe;
  monitor_ = std::make_unique<monitor>(*fleet_, mo);
  monitor_->start();

  std::string abort_reason;
  nlohmann::json failovers = nlohmann::json::array();
  std::map<std::string, unsigned> kind_counts;
  try {
    say(fmt::format("tandem-drill: {} brokers on {} (logs in {}), seed {}", o_.brokers, store_.string(),
                    (work_dir_ / "logs").string(), o_.seed));
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
    wo.run_id = fmt::format("r{:x}", std::random_device{}() ^ static_cast<unsigned>(o_.seed));
    rec["run_id"] = wo.run_id;
    workload_ = std::make_unique<workload>(wo);
    if (auto e = workload_->connect()) throw drill_abort{"clients cannot connect: " + e.message()};

    if (o_.pending > 0) {
      say(fmt::format("preloading {} pending {}-byte persistent messages...", o_.pending, o_.message_bytes));
      const auto t = clock_type::now();
      workload_->start_preload();
      auto last_print = clock_type::now();
      std::uint64_t last = 0;
      const bool done = pump_until(std::chrono::hours(1), [&] {
        auto c = workload_->counters();
        if (c.backlog_receipted >= o_.pending) return true;
        if (c.backlog_receipted != last) {
          last = c.backlog_receipted;
          if (clock_type::now() - last_print > std::chrono::seconds(2)) {
            last_print = clock_type::now();
            say(fmt::format("  preload: {}/{}", c.backlog_receipted, o_.pending));
          }
        }
        return false;
      }, std::chrono::milliseconds(10));
      if (!done) throw drill_abort{"preload did not finish"};
      const double secs = ms_between(t, clock_type::now()) / 1000.0;
      rec["preload_s"] = secs;
      say(fmt::format("  preloaded {} messages in {:.1f} s ({:.0f}/s)", o_.pending, secs, static_cast<double>(o_.pending) / secs));
    }

    workload_->start_traffic();
    if (!pump_until(o_.failover_timeout, [&] { return workload_->counters().receipted > 0; }, std::chrono::milliseconds(5))) {
      throw drill_abort{"no message was receipted after starting traffic"};
    }
    pump_until(o_.interval, [] { return false; }, std::chrono::milliseconds(5));

    std::uniform_int_distribution<std::size_t> pick(0, o_.kinds.size() - 1);
    for (unsigned n = 1; n <= o_.failovers; ++n) {
      const kill_kind kind = o_.kinds[pick(rng_)];
      ++kind_counts[to_string(kind)];
      failovers.push_back(failover_once(n, kind));
      pump_until(o_.interval, [] { return false; }, std::chrono::milliseconds(5));
    }
  } catch (const drill_abort& a) {
    abort_reason = a.reason;
    say("tandem-drill: stopping early: " + a.reason);
  }
  rec["failovers"] = failovers;
  rec["kind_counts"] = kind_counts;

  // Verification: stop producing, wait for every receipted message to arrive.
  verdict v;
  bool drained = false;
  bool backlog_drained = o_.pending == 0 || !o_.verify_backlog;
  // Interrupted by the operator: still look at what arrived, but briefly, and do not call
  // what has not arrived yet lost.
  const bool interrupted = stop_requested.load();
  const auto drain_budget = interrupted ? std::chrono::milliseconds(5000) : o_.drain_timeout;
  if (workload_) {
    try {
      workload_->stop_producers();
      pump_until(drain_budget, [&] { return workload_->counters().producers_outstanding == 0; }, std::chrono::milliseconds(5), false);
      // Wait while deliveries make progress; give up after drain_timeout without any.
      auto wait_drained = [&](auto undelivered) {
        std::uint64_t last = UINT64_MAX;
        auto last_progress = clock_type::now();
        return pump_until(std::chrono::hours(1), [&] {
          const std::uint64_t u = undelivered();
          if (u == 0) return true;
          if (u != last) {
            last = u;
            last_progress = clock_type::now();
          }
          if (clock_type::now() - last_progress > drain_budget) throw drill_abort{"drain made no progress"};
          return false;
        }, std::chrono::milliseconds(5), false);
      };
      drained = wait_drained([&] { return workload_->counters().undelivered; });
      if (!backlog_drained) {
        say("draining the backlog...");
        workload_->start_backlog_consumer();
        backlog_drained = wait_drained([&] { return workload_->counters().backlog_undelivered; });
      }
    } catch (const drill_abort& a) {
      if (abort_reason.empty()) abort_reason = "verification: " + a.reason;
    }
    v = workload_->finish();
    rec["broker_errors"] = workload_->broker_errors();
    const auto c = workload_->counters();
    rec["reconnects"] = c.reconnects;
    rec["resends"] = c.receipts_lost;
  }
  monitor_->stop();
  const auto book = monitor_->book();
  fleet_->stop_all(std::chrono::seconds(10));
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
  auto log_problems = check_master_epochs(facts.masters);
  for (const auto& p : log_problems) evidence.push_back({{"kind", "log"}, {"problem", p}});
  const std::uint64_t double_masters = violations.size() + log_problems.size();

  nlohmann::json verification;
  to_json(verification, v);
  rec["verification"] = verification;
  rec["sent"] = v.sent;
  rec["receipted"] = v.receipted;
  rec["delivered"] = v.delivered;
  rec["lost"] = v.lost;
  rec["duplicates"] = v.duplicates;
  rec["duplicates_unflagged"] = v.duplicates_unflagged;
  rec["order_violations"] = v.order_violations;
  rec["double_masters"] = double_masters;
  rec["double_master_evidence"] = evidence;
  rec["observations"] = {{"total", book.observations()}, {"master_or_serving", book.positives()}, {"stints", book.stints().size()}};
  rec["masters_logged"] = facts.masters.size();
  rec["step_downs_logged"] = facts.step_downs.size();
  rec["failover_ms"] = stats_json(failover_ms_);
  rec["pause_ms"] = stats_json(pause_ms_);
  rec["resume_ms"] = stats_json(resume_ms_);
  rec["anomalies"] = anomalies_;
  rec["drained"] = drained;
  rec["backlog_drained"] = backlog_drained;
  nlohmann::json incs = nlohmann::json::array();
  for (const auto& inc : fleet_->incarnations()) {
    incs.push_back({{"slot", inc.slot}, {"incarnation", inc.incarnation}, {"pid", inc.pid}, {"log", inc.log.string()},
                    {"status", inc.status ? inc.status->to_string() : "running"}});
  }
  rec["incarnations"] = incs;
  rec["duration_s"] = ms_between(origin_, clock_type::now()) / 1000.0;

  // Loss shows as receipted messages that never arrive while deliveries have stopped; after an
  // interruption the drain was cut short, so only what is wrong regardless of timing counts.
  const bool complete = drained && backlog_drained;
  const bool messages_failed = v.corrupted > 0 || v.unexpected > 0 || v.order_violations > 0 ||
                               (!interrupted && (v.lost > 0 || !complete));
  const bool failed = messages_failed || double_masters > 0;
  rec["interrupted"] = interrupted;
  result.exit_code = failed ? 1 : (abort_reason.empty() ? 0 : 3);
  rec["aborted"] = abort_reason.empty() ? nlohmann::json() : nlohmann::json(abort_reason);
  rec["ok"] = result.exit_code == 0;

  // Human summary.
  std::string s;
  s += fmt::format("tandem-drill: {} brokers, {} of {} failovers done", o_.brokers, failovers.size(), o_.failovers);
  std::string kinds;
  for (const auto& [k, n] : kind_counts) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", k, n);
  if (!kinds.empty()) s += " (" + kinds + ")";
  s += fmt::format(", seed {}, {}-byte messages, {} pending\n", o_.seed, o_.message_bytes, o_.pending);
  if (!failover_ms_.empty()) {
    s += fmt::format("failover (kill -> first message accepted by the new master), {} takeovers: p50 {:.1f} ms  p90 {:.1f} ms  max {:.1f} ms\n",
                     failover_ms_.size(), percentile(failover_ms_, 50), percentile(failover_ms_, 90), percentile(failover_ms_, 100));
  }
  if (!pause_ms_.empty()) {
    s += fmt::format("pauses (SIGSTOP/SIGCONT), {}: paused p50 {:.0f} ms max {:.0f} ms; SIGCONT -> first accepted p50 {:.1f} ms max {:.1f} ms\n",
                     pause_ms_.size(), percentile(pause_ms_, 50), percentile(pause_ms_, 100), percentile(resume_ms_, 50),
                     percentile(resume_ms_, 100));
  }
  s += fmt::format("messages: sent {}, receipted {}, delivered {}, lost {}, duplicates {} ({} not flagged redelivered), order violations {}",
                   v.sent, v.receipted, v.delivered, v.lost, v.duplicates, v.duplicates_unflagged, v.order_violations);
  if (v.corrupted) s += fmt::format(", corrupted {}", v.corrupted);
  if (v.unexpected) s += fmt::format(", unexpected {}", v.unexpected);
  s += "\n";
  if (!v.lost_examples.empty()) {
    s += "lost (first ones):";
    for (const auto& e : v.lost_examples) s += " " + e;
    s += "\n";
  }
  s += fmt::format("double masters: {} ({} observations by health and STOMP probes, {} master lines in the logs)\n", double_masters,
                   book.observations(), facts.masters.size());
  if (!anomalies_.empty()) s += fmt::format("anomalies: {} (see \"anomalies\" in the JSON)\n", anomalies_.size());
  if (!abort_reason.empty()) s += "stopped early: " + abort_reason + "\n";
  if (!complete) {
    s += interrupted ? "interrupted: the drain was cut short, so \"lost\" above is not a verdict\n"
                     : "not every receipted message arrived before the drain timeout\n";
  }
  s += fmt::format("result: {}\n", result.exit_code == 0 ? "PASS" : (failed ? "FAIL" : "INCOMPLETE"));
  result.summary = s;

  if (temp_dir && result.exit_code == 0 && !o_.keep_work_dir) {
    std::filesystem::remove_all(work_dir_, ec);
    rec["work_dir_removed"] = true;
  } else {
    s += fmt::format("logs and store kept in {}\n", work_dir_.string());
    result.summary = s;
  }
  return result;
}

}  // namespace

drill_result run_drill(const drill_options& options) {
  controller c(options);
  return c.run();
}

}  // namespace tandem::drill
