// controller: one drill run (drill.h), on the drill's main thread. Private to tools/drill.
//
// controller.cpp sets up (work directory, store or fault file system, fleet, monitor,
// workload), runs the episodes, drains and verifies, and writes the record and summary;
// episodes.cpp holds one function per kind of fault (fault_kind.h).
//
// Threads: everything here runs on the thread that called run(); the fleet must be driven
// from it (fleet.h: PR_SET_PDEATHSIG). The monitor and the workload have their own threads
// behind their APIs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/drill/cluster.h"
#include "tools/drill/drill.h"
#include "tools/drill/faultfs_mount.h"
#include "tools/drill/fleet.h"
#include "tools/drill/log_scan.h"
#include "tools/drill/monitor.h"
#include "tools/drill/workload.h"
#include "tools/drill/writers.h"

namespace tandem::drill {

// Something went wrong that ends the drill early (not a verification failure).
struct drill_abort {
  std::string reason;
};

// How an episode's victim is expected to end.
enum class expected_end { killed, clean_exit, deposed, any };

class controller {
 public:
  explicit controller(const drill_options& o);
  ~controller();
  drill_result run();

 private:
  // One inflicted fault, for attributing losses and duplicates to kinds by time.
  struct episode_span {
    fault_kind kind;
    clock_type::time_point start, end;
  };

  // ---- controller.cpp ----
  void say(const std::string& line);
  // Reaps exited brokers and restarts them as slaves (systemd's Restart=always). Exits of
  // expected_exits_ (and of everyone while the machine is down) are expected; any other is
  // an anomaly kept for the report.
  void supervise();
  // Supervises until `done()` or the deadline; false on timeout. Throws drill_abort when the
  // operator interrupts.
  bool pump_until(std::chrono::milliseconds timeout, const std::function<bool()>& done,
                  std::chrono::milliseconds step = std::chrono::milliseconds(1), bool honor_stop = true);
  void sleep_for(std::chrono::milliseconds d) { pump_until(d, [] { return false; }, std::chrono::milliseconds(5)); }
  // Exactly one master and every other broker a slave; returns the master.
  std::uint32_t wait_ready();
  void setup_store(nlohmann::json& rec);
  // Makes the fleet and its monitor, starts the brokers and waits until they are ready.
  void start_fleet(const monitor_options& mo);
  void start_workload(nlohmann::json& rec);
  void run_episodes(nlohmann::json& failovers, std::map<std::string, unsigned>& kind_counts);
  void drain_and_verify(nlohmann::json& rec, std::string& abort_reason);
  nlohmann::json kinds_json(const verdict& v, const writers_report& w, std::string& summary_lines) const;
  std::vector<write_ack> collect_acks(const std::vector<ack_record>& acks, const std::vector<probe_write_record>& probes,
                                      const log_facts& facts, const mastership_book& book) const;
  std::optional<std::uint64_t> incarnation_at(std::uint32_t slot, clock_type::time_point t) const;
  std::optional<std::uint32_t> slot_of_port(std::uint16_t port) const;

  // ---- episodes.cpp ----
  nlohmann::json episode(unsigned n, fault_kind kind);
  nlohmann::json signal_episode(unsigned n, fault_kind kind);
  nlohmann::json pause_episode(unsigned n, fault_kind kind);
  // After a fault that ended at `from` (pause kinds, db-* kinds): waits for the first message
  // accepted, records resume_ms, and who serves now into `f` (`moved_note` when not the
  // victim); returns that broker. drill_abort when none within --failover-timeout.
  std::optional<std::uint32_t> await_resume(nlohmann::json& f, unsigned n, fault_kind kind, std::uint32_t victim,
                                            clock_type::time_point from, const char* moved_note);
  nlohmann::json lock_file_episode(unsigned n, fault_kind kind);
  nlohmann::json stop_lease_episode(unsigned n);
  nlohmann::json store_error_episode(unsigned n, fault_kind kind);
  nlohmann::json machine_episode(unsigned n, fault_kind kind);
  nlohmann::json clock_jump_episode(unsigned n);

  // ---- database_episodes.cpp ----
  nlohmann::json database_episode(unsigned n, fault_kind kind);
  // Runs `pg_cluster.sh COMMAND DIR` (its output to logs/pg_cluster.log); drill_abort on failure.
  void pg_cluster(const std::string& command);

  // ---- cluster_episodes.cpp ----
  void setup_cluster_store(nlohmann::json& rec);
  nlohmann::json cluster_episode(unsigned n, fault_kind kind);
  // Waits up to `timeout` for the victim's end (it is in expected_exits_); true if it ended.
  bool await_end(std::uint32_t victim, std::chrono::milliseconds timeout);
  // After t0: the first message a new master accepts, the victim's end (checked against
  // `end`), its restart, and who serves now, all into `f`.
  // restart_victim false: the caller waits for the victim's end and restarts it (after
  // repairing its host, cluster kinds).
  void await_takeover(nlohmann::json& f, unsigned n, fault_kind kind, std::uint32_t victim, std::uint64_t victim_epoch,
                      clock_type::time_point t0, expected_end end, bool restart_victim = true);
  // The machine dies: every broker is killed (the store forgets first, when `forget`), then
  // the store is powered on and every broker starts again.
  void machine_restart(bool forget);
  std::optional<master_line> master_line_of(std::uint32_t slot, std::uint64_t epoch);
  // Starts the slot again (cluster: after remount_if_fenced).
  void restart(std::uint32_t slot);
  // Counts a slot's consecutive failed starts (exit 1); throws drill_abort with the
  // broker's own error line at the third.
  void note_start_failure(const incarnation_record& rec);
  // cluster: remounts the slot's host when its mount fails (fenced), recording an anomaly.
  void remount_if_fenced(std::uint32_t slot);
  void check_end(nlohmann::json& f, std::uint32_t slot, const incarnation_record& ended, expected_end end, fault_kind kind);

  const drill_options& o_;
  std::mt19937_64 rng_;
  std::filesystem::path work_dir_;
  std::filesystem::path store_;
  std::filesystem::path faketime_file_;
  bool temp_dir_ = false;
  std::unique_ptr<faultfs_mount> faultfs_;
  std::unique_ptr<cluster> cluster_;
  std::vector<broker_place> places_;        // cluster: where each slot runs
  std::unique_ptr<broker_fleet> fleet_;
  std::unique_ptr<monitor> monitor_;
  std::unique_ptr<workload> workload_;
  std::string probe_destination_;
  clock_type::time_point origin_;
  std::map<std::uint32_t, unsigned> failed_starts_;  // consecutive exit-1 ends per slot
  std::set<std::uint32_t> expected_exits_;  // slots whose exit the running episode causes
  std::map<std::uint32_t, incarnation_record> ended_;  // their ends, collected by supervise()
  bool machine_down_ = false;               // power loss: every exit is expected, none restarted
  bool clocks_jumped_ = false;
  nlohmann::json anomalies_ = nlohmann::json::array();
  std::vector<episode_span> spans_;
  std::map<fault_kind, std::vector<double>> failover_ms_;
  std::map<fault_kind, std::vector<double>> pause_ms_;
  std::map<fault_kind, std::vector<double>> resume_ms_;
};

}  // namespace tandem::drill
