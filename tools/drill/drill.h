// The drill: start N brokers on one store, run traffic, depose the master K times, verify.
//
// One failover, step by step (the controller runs on the main thread, see fleet.h for why):
//   1. Wait until exactly one broker says master in /health and every other broker is up and
//      says slave (killed ones were restarted, as systemd would).
//   2. Pick the kind with the seeded generator: SIGKILL, SIGTERM or SIGSTOP.
//   3. kill / term: note t0, arm the workload, signal the master. The failover time is t0 ->
//      the first RECEIPT on a producer connection made after t0, i.e. the first message the
//      new master accepted (its fsync included). Restart the victim once it has exited.
//      stop: SIGSTOP, wait a random pause, SIGCONT. On a local file system the kernel keeps a
//      stopped process's lock, so no takeover happens: this is measured as a pause (its length
//      and SIGCONT -> first accepted message), and the same broker must still be master.
//   4. Let traffic run for --interval before the next one.
// At the end: stop producing, wait until every receipted message was delivered (or progress
// stops for --drain-timeout), drain the backlog, compute the verdict (history.h), collect the
// double-master evidence (mastership.h, log_scan.h), stop the brokers.
//
// Exit status (drill_result::exit_code): 0 all good; 1 a message was lost, corrupted,
// reordered or unexpected, or two brokers served at once; 3 the drill could not run to the
// end (a broker did not start, no new master within --failover-timeout, interrupted).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::drill {

enum class kill_kind { kill, term, stop };
const char* to_string(kill_kind k);          // "SIGKILL", "SIGTERM", "SIGSTOP"
bool parse_kill_kind(std::string_view text, kill_kind& out);  // "kill"/"sigkill"/"9", ...

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
  std::vector<kill_kind> kinds = {kill_kind::kill, kill_kind::term, kill_kind::stop};
  std::size_t message_bytes = 1024;
  unsigned producers = 4;
  unsigned consumers = 4;
  unsigned window = 32;
  double rate = 2000;
  std::uint64_t pending = 0;
  bool verify_backlog = true;
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds pause_min{200};
  std::chrono::milliseconds pause_max{1500};
  std::chrono::milliseconds failover_timeout{30000};
  std::chrono::milliseconds startup_timeout{60000};
  std::chrono::milliseconds drain_timeout{30000};
  std::chrono::milliseconds reconnect_delay{20};
  std::vector<std::string> tandemd_args;
  bool probe = true;
  bool quiet = false;
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
