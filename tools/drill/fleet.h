// broker_fleet: the tandemd processes a drill starts, owns, kills and restarts.
//
// Slot i is one broker "seat": its client port (base_port + 2i), admin port (base_port + 2i
// + 1) and broker name ("b<i>") never change; each (re)start is a new *incarnation* of the
// slot (1, 2, ...) with its own pid and its own log file, DIR/logs/b<i>.<incarnation>.log.
// A killed broker is restarted as systemd would restart it, and comes back as a slave.
//
// Cleanup, even when the drill itself is interrupted or killed:
// - each broker runs in its own process group (setpgid in the child), so a terminal's
//   Ctrl-C reaches only the drill, which then stops the brokers in order; cleanup signals
//   the whole group, so anything a broker might fork goes with it;
// - each broker gets PR_SET_PDEATHSIG = SIGKILL, so `kill -9` of the drill takes the brokers
//   down too. PITFALL: the death signal fires when the *thread* that forked the child exits,
//   not the process. Every start() must therefore run on one long-lived thread (the drill's
//   main thread); a worker thread that forks and then ends would kill its brokers;
// - emergency_kill() is async-signal-safe, for a second SIGINT while cleanup hangs.
//
// Between fork and exec the child only calls async-signal-safe functions (the drill has other
// threads; any of them may hold malloc's lock at the fork). It closes every descriptor above
// 2 (close_range): the drill's client sockets are not close-on-exec, and a broker inheriting
// one would keep a dead connection open for ever.
//
// Threads: start, signal, reap, stop_all and the accessors that return strings run on the
// thread that created the fleet. incarnation(), pid() and the port accessors may be called
// from any thread (the monitor reads them).
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tandem::drill {

// Where one slot runs when the brokers are spread over hosts (tandem-drill --cluster): its
// listen address, its path of the store (each host has its own mount of one file system) and
// the network namespace it is started in (nsenter --net=/run/netns/NETNS; the mount
// namespace stays the drill's).
struct broker_place {
  std::string host;
  std::filesystem::path store;
  std::string netns;
};

struct fleet_options {
  std::filesystem::path tandemd;     // the broker binary
  std::filesystem::path store;       // shared store directory
  std::filesystem::path log_dir;     // one file per incarnation
  std::string host = "127.0.0.1";
  std::uint16_t base_port = 61700;
  unsigned brokers = 3;
  std::vector<std::string> extra_args;  // appended to every tandemd command line
  std::vector<std::string> extra_env;   // "NAME=value", added to (or replacing in) the drill's environment
  std::vector<broker_place> places;     // one per slot (cluster drill); empty: every slot on host and store
};

// How an incarnation ended.
struct exit_status {
  bool exited = false;  // normal exit: `code`; otherwise killed by `signal`
  int code = 0;
  int signal = 0;
  std::string to_string() const;  // "exit 0", "signal 9 (SIGKILL)"
};

struct incarnation_record {
  std::uint32_t slot = 0;
  std::uint64_t incarnation = 0;
  pid_t pid = 0;
  std::filesystem::path log;
  std::chrono::steady_clock::time_point started_at;
  std::optional<std::chrono::steady_clock::time_point> ended_at;  // when reaped
  std::optional<exit_status> status;
};

// Starts `args` (args[0]: the program) as a child of the calling thread in its own process
// group, with PR_SET_PDEATHSIG = SIGKILL, stdin /dev/null, stdout and stderr into (a new)
// `log`, no other descriptor, the drill's environment plus `extra_env` ("NAME=value",
// replacing a variable of that name). The fleet's brokers and the fault file system start
// this way (see the PITFALL above: call it from the drill's main thread). `what` names the
// program in the message written to the log when exec fails.
std::error_code spawn_child(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                            const std::filesystem::path& log, const char* what, pid_t& pid);

class broker_fleet {
 public:
  static constexpr unsigned max_brokers = 16;

  explicit broker_fleet(fleet_options options);
  // Stops every broker still running (stop_all with a short grace).
  ~broker_fleet();
  broker_fleet(const broker_fleet&) = delete;
  broker_fleet& operator=(const broker_fleet&) = delete;

  unsigned size() const { return options_.brokers; }
  std::uint16_t client_port(std::uint32_t slot) const;
  std::uint16_t admin_port(std::uint32_t slot) const;
  const std::string& host(std::uint32_t slot) const {
    return slot < options_.places.size() ? options_.places[slot].host : options_.host;
  }
  const std::filesystem::path& store(std::uint32_t slot) const {
    return slot < options_.places.size() ? options_.places[slot].store : options_.store;
  }
  // "failover:(tcp://h:p0,tcp://h:p1,...)" plus `options` ("k=v&k=v") when not empty.
  std::string failover_url(const std::string& options) const;

  // Starts a new incarnation of `slot` (which must not be running). With create_store the
  // broker may create the store (only the first broker of a new store gets it).
  std::error_code start(std::uint32_t slot, bool create_store = false);
  // kill(2) of the slot's current process; errc::no_such_process when it is not running.
  std::error_code signal(std::uint32_t slot, int sig);
  bool running(std::uint32_t slot) const;
  // Any thread. 0 before the first start.
  std::uint64_t incarnation(std::uint32_t slot) const;
  pid_t pid(std::uint32_t slot) const;

  // Collects brokers that exited since the last call (waitpid WNOHANG), in no special order.
  std::vector<incarnation_record> reap();
  // Waits (polling, with a deadline) until `slot` exits; its record, or nullopt on timeout.
  std::optional<incarnation_record> wait_exit(std::uint32_t slot, std::chrono::milliseconds timeout);

  // SIGCONT + SIGTERM to every running broker, wait up to `grace`, then SIGKILL the group of
  // whatever is left and reap it.
  void stop_all(std::chrono::milliseconds grace);
  // Async-signal-safe: SIGKILL to every running broker's process group. No reaping.
  static void emergency_kill() noexcept;
  // A base port below the kernel's ephemeral range whose 2 * brokers ports are all free on
  // `host` now (0 when none found). Another process may still take one before the brokers
  // bind; the broker then exits and the drill reports it.
  static std::uint16_t find_free_base_port(const std::string& host, unsigned brokers);

  // Every incarnation so far, ended or not, in start order.
  const std::vector<incarnation_record>& incarnations() const { return records_; }
  const incarnation_record* current(std::uint32_t slot) const;

 private:
  struct slot_state {
    std::atomic<pid_t> pid{0};
    std::atomic<std::uint64_t> incarnation{0};
    std::size_t record = 0;  // index into records_ of the current incarnation
  };

  void on_exit(std::uint32_t slot, int wait_status);

  fleet_options options_;
  std::array<slot_state, max_brokers> slots_;
  std::vector<incarnation_record> records_;
};

}  // namespace tandem::drill
