// tandem-drill: failover drill for a Tandem master/slave group. See drill.h for what one
// episode is and how the run is verified, fault_kind.h for the faults, docs/failover.md for
// how to read the results.
//
//   tandem-drill --brokers 3 --failovers 20 --seed 7 --json drill.json
//   tandem-drill --kinds power-loss,stop-lease,eio-fsync --lock-check-interval-ms 200 --failovers 6
//   tandem-drill --kinds kill,term --workload scheduled --failovers 10   (issue 16's policies)
//
// Exit status: 0 pass; 1 a receipted message was lost (or corrupted, reordered, duplicated
// without a flag) or two brokers wrote or served at once; 2 bad usage; 3 the drill could not
// run to the end.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "tools/drill/drill.h"
#include "tools/drill/failover_svg.h"
#include "tools/drill/fleet.h"

namespace {

// First SIGINT/SIGTERM: ask the drill to stop; it verifies what it has and stops the brokers.
// Second: the operator means it; kill every broker group now and leave.
extern "C" void on_stop_signal(int) {
  if (tandem::drill::stop_requested.exchange(true)) {
    tandem::drill::broker_fleet::emergency_kill();
    ::_exit(130);
  }
}

std::filesystem::path self_dir(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::canonical("/proc/self/exe", ec);
  if (ec) self = argv0;
  return self.parent_path();
}

std::filesystem::path default_tandemd(const char* argv0) {
  // Next to us in a build tree (tools/drill/ and broker/), or installed side by side.
  const auto dir = self_dir(argv0);
  std::error_code ec;
  for (auto candidate : {dir.parent_path().parent_path() / "broker" / "tandemd", dir / "tandemd",
                         dir.parent_path() / "sbin" / "tandemd"}) {
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return "tandemd";
}

std::filesystem::path default_faultfs(const char* argv0) {
  // Built beside us in a build tree (tools/faultfs/), or installed side by side.
  const auto dir = self_dir(argv0);
  std::error_code ec;
  for (auto candidate : {dir.parent_path() / "faultfs" / "tandem-faultfs", dir / "tandem-faultfs"}) {
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return "tandem-faultfs";
}

std::string kinds_help() {
  std::string text = "what to inflict, comma separated:";
  for (auto k : tandem::drill::all_fault_kinds())
    text += std::string("\n  ") + tandem::drill::name(k) + ": " + tandem::drill::describe(k);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tandem::drill;
  drill_options o;
  std::string json_path;
  std::string store, work_dir, tandemd;
  std::vector<std::string> kinds = {"kill", "term", "stop"};
  unsigned interval_ms = 1000, pause_min_ms = 200, pause_max_ms = 1500, failover_timeout_ms = 30000;
  unsigned drain_timeout_ms = 30000, reconnect_delay_ms = 20, startup_timeout_ms = 60000;
  unsigned lock_check_interval_ms = 0, faultfs_lease_ms = 0;
  bool no_probe = false, no_verify_backlog = false, no_probe_writes = false;
  std::string order = "random", workload = "plain", faultfs, faketime_lib = TANDEM_FAKETIME_LIB;

  CLI::App app{"tandem-drill: start N tandemd brokers on one store, inflict K faults on the master or the store under "
               "load, and verify that no receipted message was lost, no duplicate went unflagged and no two brokers "
               "wrote or served at once"};
  app.add_option("--brokers,-b", o.brokers, "brokers sharing the store")->capture_default_str()->check(CLI::Range(2u, broker_fleet::max_brokers));
  app.add_option("--failovers,-k", o.failovers, "fault episodes to perform")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random choices (kind, pause length, clock offset)")->capture_default_str();
  app.add_option("--store", store, "shared store directory (a local directory or a mount); default: WORK_DIR/store");
  app.add_option("--work-dir", work_dir, "directory for broker logs (and the default store); default: a new temp directory, removed on success");
  app.add_flag("--keep", o.keep_work_dir, "keep the temp work directory even on success");
  app.add_option("--json", json_path, "write the full record as JSON to FILE ('-': stdout), and its picture beside it (FILE.svg)");
  app.add_option("--tandemd", tandemd, "path of the tandemd binary (default: found next to tandem-drill)");
  app.add_option("--tandemd-arg", o.tandemd_args, "extra argument for every tandemd (repeat: --tandemd-arg=--sync --tandemd-arg=always)");
  app.add_option("--host", o.host, "address the brokers listen on")->capture_default_str();
  app.add_option("--base-port", o.base_port, "broker i listens on BASE+2i (STOMP) and BASE+2i+1 (admin); 0: find free ports")
      ->capture_default_str();
  app.add_option("--kinds", kinds, kinds_help())->delimiter(',')->capture_default_str();
  app.add_option("--order", order, "random: each episode picks a kind with the seed; cycle: the kinds in turn")
      ->check(CLI::IsMember({"random", "cycle"}))
      ->capture_default_str();
  app.add_option("--message-size,-s", o.message_bytes, "message body bytes")->capture_default_str();
  app.add_option("--producers,-p", o.producers, "producer connections (one queue each)")->capture_default_str()->check(CLI::Range(1u, 1000u));
  app.add_option("--consumers,-c", o.consumers, "consumer connections")->capture_default_str()->check(CLI::Range(1u, 1000u));
  app.add_option("--workload", workload,
                 "plain; groups (JMSXGroupID, order per group), scheduled (AMQ_SCHEDULED_*, firings exactly as "
                 "promised), redelivery (NACKs under a redelivery policy, then ACK or DLQ): see policy_workload.h")
      ->capture_default_str()
      ->check(CLI::IsMember({"plain", "groups", "scheduled", "redelivery"}));
  app.add_option("--window", o.window, "outstanding SENDs per producer")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rate", o.rate, "messages per second over all producers (0: as fast as receipts allow)")->capture_default_str();
  app.add_option("--pending", o.pending, "preload N messages into a backlog queue nobody consumes until the end, so every takeover recovers them")
      ->capture_default_str();
  app.add_option("--parked-rate", o.parked_rate,
                 "messages per second to the backlog queue during the traffic, consumed only at the end: they must "
                 "survive every fault (0: none)")
      ->capture_default_str();
  app.add_flag("--no-verify-backlog", no_verify_backlog, "do not drain and check the backlog, the parked messages and the probe's writes at the end");
  app.add_flag("--no-probe-writes", no_probe_writes, "the STOMP probe only connects; it does not write one message per probe");
  app.add_option("--lock-check-interval-ms", lock_check_interval_ms,
                 "pass --lock-check-interval to every tandemd (the lease the brokers assume is twice it)");
  app.add_option("--faultfs", faultfs, "path of tandem-faultfs (default: found next to tandem-drill)");
  app.add_flag("--faultfs-store", o.faultfs_store, "run the store on tandem-faultfs even when no kind needs it");
  app.add_option("--faultfs-lease-ms", faultfs_lease_ms, "lock lease of tandem-faultfs (default: 4 x the lock check interval)");
  app.add_option("--faketime-lib", faketime_lib, "libfaketime for clock-jump (Debian package libfaketime)")->capture_default_str();
  app.add_option("--clock-jump-hours", o.clock_jump_hours, "clock-jump: the wall clock moves by up to this many hours, either way")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--interval-ms", interval_ms, "traffic between two failovers")->capture_default_str();
  app.add_option("--pause-min-ms", pause_min_ms, "shortest SIGSTOP pause")->capture_default_str();
  app.add_option("--pause-max-ms", pause_max_ms, "longest SIGSTOP pause")->capture_default_str();
  app.add_option("--failover-timeout-ms", failover_timeout_ms, "give up when no new master accepts a message within this")->capture_default_str();
  app.add_option("--startup-timeout-ms", startup_timeout_ms, "wait this long for brokers to start (recovery of a big store)")->capture_default_str();
  app.add_option("--drain-timeout-ms", drain_timeout_ms, "at the end, give up when deliveries make no progress for this long")->capture_default_str();
  app.add_option("--reconnect-delay-ms", reconnect_delay_ms, "clients' maximum reconnect backoff (failover maxReconnectDelay)")->capture_default_str();
  app.add_flag("--no-probe", no_probe, "do not probe the brokers' STOMP ports (health polling only)");
  app.add_flag("--quiet,-q", o.quiet, "no progress lines, only the summary");
  std::string cluster_kind, cluster_cli, fence_script;
  unsigned sites = 3, fence_after_ms = 2000;
  app.add_option("--cluster", cluster_kind,
                 "run on a shared cluster file system instead of a local store: \"cephfs\" = the running "
                 "tools/cluster/tandem-cluster (broker i on host i+1, clients in the admin namespace; root)")
      ->check(CLI::IsMember({"cephfs"}));
  app.add_option("--sites", sites, "--cluster: sites (one broker host each) to use")->capture_default_str()->check(CLI::Range(2u, 3u));
  app.add_option("--cluster-cli", cluster_cli, "--cluster: the tandem-cluster command (default: the source tree's)");
  app.add_option("--fence-script", fence_script, "--cluster: the brokers' fence command (default: the source tree's packaging/fence/tandem-fence-cephfs)");
  app.add_option("--fence-after-ms", fence_after_ms, "--cluster: the brokers' fence_after_ms")->capture_default_str();
  std::string pg_cluster;
  app.add_option("--pg-cluster", pg_cluster,
                 "run on a PostgreSQL store: DIR of a running tests/pg/pg_cluster.sh primary + standby or "
                 "tests/pg/patroni_cluster.sh Patroni cluster; the store is its TANDEM_PG_MULTI_URI (unless --store), "
                 "PGPASSFILE is taken from DIR/env; enables the db-* kinds");
  CLI11_PARSE(app, argc, argv);
  if (!pg_cluster.empty()) {
    std::ifstream env(std::filesystem::path(pg_cluster) / "env");
    if (!env) {
      std::cerr << "tandem-drill: --pg-cluster: cannot read " << pg_cluster << "/env (run tests/pg/pg_cluster.sh start DIR)\n";
      return 2;
    }
    // PG_HARNESS=patroni: the cluster is Patroni's, and its script's kill-primary, promote
    // and rebuild-standby only kill the leader and wait for what Patroni does.
    std::string script = "tests/pg/pg_cluster.sh";
    for (std::string line; std::getline(env, line);) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const auto key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "PGPASSFILE") ::setenv("PGPASSFILE", value.c_str(), 1);  // the brokers inherit it
      if (key == "TANDEM_PG_MULTI_URI" && store.empty()) store = value;
      if (key == "PG_HARNESS" && value == "patroni") script = "tests/pg/patroni_cluster.sh";
    }
    o.pg_cluster = pg_cluster;
    o.pg_cluster_script = std::filesystem::path(TANDEM_SOURCE_DIR) / script;
  }
  if (!cluster_kind.empty()) {
    o.brokers = sites;
    o.cluster_cli = cluster_cli.empty() ? std::filesystem::path(TANDEM_SOURCE_DIR) / "tools/cluster/tandem-cluster"
                                        : std::filesystem::path(cluster_cli);
    o.fence_script = fence_script.empty() ? std::filesystem::path(TANDEM_SOURCE_DIR) / "packaging/fence/tandem-fence-cephfs"
                                          : std::filesystem::path(fence_script);
    o.fence_after = std::chrono::milliseconds(fence_after_ms);
    if (o.base_port == 0) o.base_port = 61700;  // every host has its own addresses
  }

  o.kinds.clear();
  for (const auto& k : kinds) {
    auto kind = parse_fault_kind(k);
    if (!kind) {
      std::cerr << "tandem-drill: --kinds: unknown kind '" << k << "' (see --help for the list)\n";
      return 2;
    }
    o.kinds.push_back(*kind);
  }
  if (o.kinds.empty()) {
    std::cerr << "tandem-drill: --kinds is empty\n";
    return 2;
  }
  if (pause_max_ms < pause_min_ms) {
    std::cerr << "tandem-drill: --pause-max-ms is below --pause-min-ms\n";
    return 2;
  }
  for (auto k : o.kinds) {
    if (needs_cluster(k) && o.cluster_cli.empty()) {
      std::cerr << "tandem-drill: --kinds " << name(k) << " needs --cluster cephfs\n";
      return 2;
    }
    if (needs_pg_cluster(k) && o.pg_cluster.empty()) {
      std::cerr << "tandem-drill: --kinds " << name(k) << " needs --pg-cluster DIR\n";
      return 2;
    }
  }
  if (o.base_port == 0) {
    o.base_port = broker_fleet::find_free_base_port(o.host, o.brokers);
    if (o.base_port == 0) {
      std::cerr << "tandem-drill: --base-port 0: found no " << 2 * o.brokers << " free consecutive ports on " << o.host << "\n";
      return 3;
    }
  }
  if (o.base_port + 2 * o.brokers > 65535) {
    std::cerr << "tandem-drill: --base-port leaves no room for " << o.brokers << " brokers\n";
    return 2;
  }
  o.store = store;
  o.work_dir = work_dir;
  o.tandemd = tandemd.empty() ? default_tandemd(argv[0]) : std::filesystem::path(tandemd);
  o.interval = std::chrono::milliseconds(interval_ms);
  o.pause_min = std::chrono::milliseconds(pause_min_ms);
  o.pause_max = std::chrono::milliseconds(pause_max_ms);
  o.failover_timeout = std::chrono::milliseconds(failover_timeout_ms);
  o.startup_timeout = std::chrono::milliseconds(startup_timeout_ms);
  o.drain_timeout = std::chrono::milliseconds(drain_timeout_ms);
  o.reconnect_delay = std::chrono::milliseconds(std::max(1u, reconnect_delay_ms));
  o.probe = !no_probe;
  o.verify_backlog = !no_verify_backlog;
  o.probe_writes = !no_probe_writes;
  o.order = order == "cycle" ? kind_order::cycle : kind_order::random;
  o.workload = parse_workload_kind(workload).value_or(workload_kind::plain);
  if (lock_check_interval_ms > 0) o.lock_check_interval = std::chrono::milliseconds(lock_check_interval_ms);
  if (faultfs_lease_ms > 0) o.faultfs_lease = std::chrono::milliseconds(faultfs_lease_ms);
  o.faultfs = faultfs.empty() ? default_faultfs(argv[0]) : std::filesystem::path(faultfs);
  o.faketime_lib = faketime_lib;

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  drill_result r;
  try {
    r = run_drill(o);
  } catch (const std::exception& e) {
    broker_fleet::emergency_kill();
    std::cerr << "tandem-drill: fatal: " << e.what() << "\n";
    return 3;
  }
  std::fputs(r.summary.c_str(), stdout);
  if (!json_path.empty()) {
    const std::string text = r.record.dump(2) + "\n";
    if (json_path == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream out(json_path);
      out << text;
      if (!out) {
        std::cerr << "tandem-drill: cannot write " << json_path << "\n";
        return 3;
      }
      // The picture beside the record: drill.json -> drill.svg.
      const std::string svg = failover_svg(r.record, "tandem-drill: " + std::filesystem::path(json_path).filename().string());
      if (!svg.empty()) {
        auto svg_path = std::filesystem::path(json_path).replace_extension(".svg");
        std::ofstream picture(svg_path);
        picture << svg;
        if (!picture) std::cerr << "tandem-drill: cannot write " << svg_path.string() << "\n";
      }
    }
  }
  return r.exit_code;
}
