// The drill: start N brokers on one store, run traffic, inflict K faults, verify the history.
//
// One episode, step by step (the controller runs on the main thread, see fleet.h for why):
//   1. Wait until exactly one broker says master in /health and every other broker is up and
//      says slave (brokers that ended were restarted, as systemd would).
//   2. Pick the kind (fault_kind.h) with the seeded generator, or in turn (--order cycle).
//   3. Inflict it. Takeover kinds note t0 and arm the workload; the failover time is t0 -> the
//      first RECEIPT on a producer connection made after t0, i.e. the first message the new
//      master accepted (its fsync included). Pause kinds (stop, fs-freeze) measure the pause
//      and SIGCONT/thaw -> the first accepted message, and the same broker must still serve.
//      The victim's end is checked against what the kind expects (exit 0, exit 75, signal)
//      and it is restarted as a slave; power-loss and hang-resend restart every broker.
//   4. Let traffic run for --interval before the next one.
// At the end: stop producing, wait until every receipted message was delivered (or progress
// stops for --drain-timeout), drain the backlog and the probe's writes, then the verdict:
//   lost                 receipted, never delivered                        must be 0
//   duplicates           deliveries beyond the first                       counted
//   unflagged duplicates of those, neither redelivered nor tandem-duplicate must be 0
//   overlapping_writers  RECEIPTs proving two brokers completed appends     must be 0
//                        at once (writers.h)
//   double masters       proven overlapping mastership (mastership.h, logs)  must be 0
//   policy violations    a delivery policy's promise broken (--workload)    must be 0
// each also per kind (attributed by time to the episode that caused it), with the failover
// time per kind (p50/p90/max).
//
// Exit status (drill_result::exit_code): 0 all good; 1 a message was lost, corrupted,
// reordered, unexpected or duplicated without a flag, or two brokers wrote or served at once;
// 3 the drill could not run to the end (a broker did not start, no new master within
// --failover-timeout, interrupted, the fault file system could not be mounted).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/drill/fault_kind.h"
#include "tools/drill/policy_workload.h"

namespace tandem::drill {

enum class kind_order { random, cycle };

struct drill_options {
  unsigned brokers = 3;
  unsigned failovers = 20;
  std::uint64_t seed = 1;
  std::filesystem::path tandemd;
  std::filesystem::path store;     // empty: <work_dir>/store
  std::filesystem::path work_dir;  // empty: a new directory under $TMPDIR (removed on success)
  bool keep_work_dir = false;
  std::string host = "127.0.0.1";
  std::uint16_t base_port = 61700;
  std::vector<fault_kind> kinds = {fault_kind::kill, fault_kind::term, fault_kind::stop};
  kind_order order = kind_order::random;
  std::size_t message_bytes = 1024;
  unsigned producers = 4;
  unsigned consumers = 4;
  workload_kind workload = workload_kind::plain;  // --workload: a delivery policy on (policy_workload.h)
  unsigned window = 32;
  double rate = 2000;
  std::uint64_t pending = 0;
  double parked_rate = 100;        // backlog messages per second during the traffic
  bool probe_writes = true;        // the STOMP probe writes one persistent message per probe
  bool verify_backlog = true;
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds pause_min{200};
  std::chrono::milliseconds pause_max{1500};
  std::chrono::milliseconds failover_timeout{30000};
  std::chrono::milliseconds startup_timeout{60000};
  std::chrono::milliseconds drain_timeout{30000};
  std::chrono::milliseconds reconnect_delay{20};
  std::optional<std::chrono::milliseconds> lock_check_interval;  // tandemd --lock-check-interval
  std::vector<std::string> tandemd_args;
  bool probe = true;
  bool quiet = false;
  // The fault file system (kinds that need it, or --faultfs-store for every run).
  std::filesystem::path faultfs;               // the tandem-faultfs binary
  bool faultfs_store = false;                  // run on tandem-faultfs even without such kinds
  std::optional<std::chrono::milliseconds> faultfs_lease;  // default: 4 x the lock check interval
  // clock-jump
  std::filesystem::path faketime_lib;          // libfaketimeMT.so.1
  unsigned clock_jump_hours = 48;              // jumps are uniform in [-H, +H] hours, never 0
  // The CephFS cluster (--cluster cephfs, cluster.h): the tandem-cluster command; empty = a
  // local drill. Broker i runs on host i+1; the slaves fence with fence_script.
  std::filesystem::path cluster_cli;
  std::filesystem::path fence_script;          // tandem-fence-cephfs
  std::chrono::milliseconds fence_after{2000};
  // A PostgreSQL primary + standby made by tests/pg/pg_cluster.sh (--pg-cluster DIR): the
  // store is its database (TANDEM_PG_MULTI_URI of DIR/env unless --store), and the db-* kinds
  // run pg_cluster_script on it.
  std::filesystem::path pg_cluster;
  std::filesystem::path pg_cluster_script;
};

struct drill_result {
  nlohmann::json record;  // the full record (--json)
  std::string summary;    // the human summary
  int exit_code = 0;
};

// Set by the signal handler in main; the drill stops at its next step and cleans up.
extern std::atomic<bool> stop_requested;

drill_result run_drill(const drill_options& options);

// Nearest-rank percentile of `values` (p in [0, 100]); 0 for an empty set.
double percentile(std::vector<double> values, double p);

}  // namespace tandem::drill
