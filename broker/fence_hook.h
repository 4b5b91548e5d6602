// fence_hook: a slave's STONITH (config fence_command, fence_after_ms, fence_timeout_ms).
//
// Why. A master whose host dies or is cut off keeps its lock on a shared file system until
// the file system gives up on its client: CephFS autocloses the session after
// session_autoclose (300 s by default, 30 s at the least), an NFSv4 server after its lease
// (90 s). Pacemaker solves this with STONITH: before taking a dead node's resources, shoot
// it. A slave with a fence_command does the same: when the master stops answering, it runs
// the command, which must cut the old master off the store (CephFS: evict its client, which
// frees its locks within about a second and makes its every later write fail with
// ESHUTDOWN); the slave's blocked lock wait then ends and it takes over.
//
// When. The slave probes the master named by holder.json: its admin /health (any HTTP answer
// counts) and its STOMP port (an accepted TCP connection counts). Only when BOTH have failed
// for fence_after_ms does it run the command (fence_decider). A paused master (SIGSTOP) still
// accepts TCP connections in its listen backlog and is not fenced: the lock lease fences it
// (lockmgr/lock_manager.h). A failed or timed-out run is logged and retried while the master
// stays silent.
//
// The command runs as `/bin/sh -c COMMAND` in its own process group, stdin /dev/null, its
// output captured (last 4 KiB logged), killed with its group after fence_timeout_ms. Exit 0
// means "the old master is cut off". It gets the holder's identity in the environment
// (fence_environment; docs/failover.md lists the variables).
//
// Not after a process death. The lock moving to us, with no run of ours, means its holder's
// client let it go: after a SIGKILL of the broker its host's ceph-fuse frees the lock within
// milliseconds, but the new master's first reads of what the old one fsynced can wait an
// MDS tick (mds_tick_interval, 5 s by default) and the old master stays silent meanwhile.
// Fencing then (seen in the cluster drill, fence_after_ms 2000) evicts a healthy host's
// mount: every broker restarted there fails with ESHUTDOWN until an operator remounts it.
// So once fence_settings::lock_taken says the lock is ours, no run starts.
//
// After the lock. On CephFS the lock moves when the MDS drops the evicted session, a few ms
// BEFORE `client evict` returns (only its return says the old client is blocklisted, i.e.
// its in-flight writes are refused). So the new master must not write before the command
// succeeded: elect() calls finish(), which waits for a run in progress.
//
// Threads: start() and finish() from the election thread. The watcher runs on a thread of
// its own, because reading holder.json on a shared mount whose master is cut off can hang in
// the kernel (the master holds caps on it); finish() never waits for such a read, only for a
// running command (bounded by fence_timeout_ms).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lockmgr/format.h"

namespace tandem::broker {

struct fence_settings {
  std::string command;                      // /bin/sh -c COMMAND
  std::chrono::milliseconds after{5000};    // silence before a run
  std::chrono::milliseconds timeout{30000}; // a run longer than this is killed
  std::filesystem::path store;              // whose holder.json names the master
  // True once this process holds the store's lock (lockmgr::lock_manager::lock_taken), or
  // empty. A lock that came to us while no run of ours had succeeded was let go by the old
  // holder's own file-system client (its process died; or the file system, or another
  // slave, already cut it off), so fencing it would only cut off a live host: no run then.
  std::function<bool()> lock_taken;
  // Called on the watcher's thread, after a run exited 0, with the epoch of the holder it
  // was run against (the old master of that epoch is cut off), or empty.
  std::function<void(std::uint64_t epoch)> fenced;
};

// The decision, apart from probes, processes and clocks (tested alone).
class fence_decider {
 public:
  using clock = std::chrono::steady_clock;
  // `after`: silence needed before the first run; `retry`: pause after a failed run.
  fence_decider(std::chrono::milliseconds after, std::chrono::milliseconds retry);
  // One probe round whose answers are known at `now`. True when the command should run now:
  // both probes have failed continuously for `after` and no run is due later. Any answer
  // resets the silence. A silence starts at `round_start` when given (the round's probes
  // were unanswered from then on; a cut-off host makes each wait its full timeout, a
  // second or more per round), else at `now`.
  bool observe(clock::time_point now, bool health_answered, bool stomp_answered,
               std::optional<clock::time_point> round_start = std::nullopt);
  // A run ended at `ended`. After a failure the next run waits `retry`; after a success it
  // waits `after` again (the lock should have moved by then). Counted from the END: a run
  // that outlasted `after` (the ceph CLI took 8 s under load) was otherwise followed at once
  // by another, which cost the next takeover 5 s in the cluster drill.
  void ran(clock::time_point ended, bool succeeded);
  // When observe() may next answer true while the silence lasts (for the watcher's sleep),
  // or empty while the master answers.
  std::optional<clock::time_point> due() const;
  // Another holder (epoch) is watched: forget the silence and the runs.
  void reset();
  std::optional<clock::time_point> silent_since() const { return silent_since_; }
  unsigned runs() const { return runs_; }

 private:
  std::chrono::milliseconds after_, retry_;
  std::optional<clock::time_point> silent_since_;
  std::optional<clock::time_point> next_run_;
  unsigned runs_ = 0;
};

// Where to probe: host and port of a "tcp://H:P" or "http://H:P" URL (also bare "H:P",
// "[v6]:P"). A wildcard host (0.0.0.0, ::, empty: the master listens on every address)
// becomes `fallback_host` (holder.json's host name). nullopt when unparsable.
struct probe_target {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<probe_target> parse_probe_target(std::string_view url, std::string_view fallback_host);

// The command's environment additions, "NAME=value" (documented in docs/failover.md):
// TANDEM_FENCE_HOST, _PID, _EPOCH, _BROKER_NAME, _CLIENT_URL, _ADMIN_URL, _ADDRESS (host of
// the client URL, wildcard replaced), _MOUNT_CLIENT_ID, _ACQUIRED_AT, _STORE, _ATTEMPT.
std::vector<std::string> fence_environment(const lockmgr::holder_record& holder, const std::filesystem::path& store,
                                           unsigned attempt);

// One run of the command.
struct fence_run {
  bool succeeded = false;   // exited 0 in time
  bool timed_out = false;   // killed after the timeout
  int exit_code = -1;       // when it exited
  int signal = 0;           // when a signal ended it
  std::string error;        // could not start it (posix_spawn's error)
  std::string output;       // stdout + stderr, the last 4 KiB
  std::chrono::milliseconds took{0};
  std::string describe() const;  // "exit 0", "exit 3", "timed out after 30000 ms", ...
};
// Runs `/bin/sh -c command` with the broker's environment plus `env` (replacing variables of
// the same name). Blocks until it ends or `timeout` (then SIGKILL to its process group).
fence_run run_fence_command(const std::string& command, const std::vector<std::string>& env,
                            std::chrono::milliseconds timeout);

// Liveness probes (blocking, at most `timeout` each).
bool stomp_port_answers(const probe_target& t, std::chrono::milliseconds timeout);
bool health_answers(const probe_target& t, std::chrono::milliseconds timeout);  // any HTTP status line

// This process's client id on the file system holding `dir`, for holder.json
// "mount_client_id": CephFS answers the virtual xattr "ceph.client_id" ("client4150" ->
// "4150") on ceph-fuse and the kernel client. "" on other file systems.
std::string read_mount_client_id(const std::filesystem::path& dir);

// The watcher (see the top of this file).
class fence_hook {
 public:
  explicit fence_hook(fence_settings settings);
  ~fence_hook();  // finish()
  fence_hook(const fence_hook&) = delete;
  fence_hook& operator=(const fence_hook&) = delete;

  void start();
  // Called once the lock is ours: waits for a run in progress, then keeps watching the
  // previous holder only (holder.json names us now) until finish(). On CephFS a dead
  // client's caps on the journal files block the new master's recovery reads until the
  // client is evicted or its session times out, even when its lock was freed: seen in the
  // cluster drill, 35.7 s of recovery after a host death whose lock moved at once.
  void hold_target();
  // Stops watching. Waits for a run in progress (at most the timeout) and returns the last
  // run's outcome if a run ended after the call began waiting or was the last one; nullopt
  // when the command never ran.
  std::optional<fence_run> finish();

 private:
  struct shared;
  // The thread's loop; `s` outlives a finish() that stopped waiting for it.
  static void watch(const std::shared_ptr<shared>& s);

  std::shared_ptr<shared> shared_;
  std::thread thread_;
};

}  // namespace tandem::broker
