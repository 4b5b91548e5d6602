// monitor: watches every broker of a fleet, all the time, from its own thread.
//
// Two observers per broker slot, each a coroutine on the monitor's io_context:
// - health: GET /health on the admin port every `period` (role, epoch, holder);
// - probe:  a STOMP CONNECT on the client port every `probe_period`; CONNECTED = serving.
//   With a `probe_destination`, the probe then writes one persistent SEND with a RECEIPT on
//   that connection: a write to EVERY broker that serves, whatever the clients do, so two
//   brokers completing appends at once show up in the writers check (writers.h) even when
//   every client stays on the old master. The writes are kept (probe_writes()) and must be
//   delivered like any receipted message (workload::start_end_consumers).
// Each answer (or refusal, or timeout) is an observation for the mastership_book (see
// mastership.h for why two "master" answers in one sweep prove nothing and what does). The
// latest health answer per slot is kept for the drill's controller: who is master now, are
// the others back as slaves.
//
// Every request has a deadline (`timeout`): a SIGSTOPped broker's kernel still accepts TCP
// connections into the backlog but nothing answers, and a poll must not hang on it. Sockets
// are closed with SO_LINGER 0 (RST) so thousands of polls leave no TIME_WAIT behind.
//
// An observation counts only if the slot's incarnation (fleet.h) was the same before and
// after it, so an answer is never credited to the wrong process after a restart.
//
// Threads: the monitor owns one thread that runs its io_context. Public methods may be called
// from any thread; they take the monitor's mutex. The fleet must outlive the monitor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/asio.h"
#include "tools/drill/fleet.h"
#include "tools/drill/mastership.h"
#include "tools/drill/workload.h"

namespace tandem::drill {

struct broker_view {
  bool answered = false;       // the last health poll got an answer
  std::string role;            // "master", "slave", "recovering", "starting", "stopping"
  std::uint64_t epoch = 0;
  std::uint64_t incarnation = 0;
  clock_type::time_point at;   // when that answer was read
  nlohmann::json health;       // the whole /health body
  bool serving = false;        // the last probe got CONNECTED
  clock_type::time_point probed_at;
};

struct monitor_options {
  std::chrono::milliseconds period{20};        // between health polls of one broker
  std::chrono::milliseconds probe_period{40};  // between STOMP probes of one broker
  std::chrono::milliseconds timeout{300};      // per request (and again for a probe's write)
  bool probe = true;
  std::string probe_destination;               // empty: the probe only connects
  std::uint32_t probe_stream = 0;              // drill-p of the probe's writes (history.h)
  std::size_t probe_bytes = 64;
};

// One write of the probe, and who answered it.
struct probe_write_record {
  probe_write write;
  std::uint32_t slot = 0;
  std::uint64_t incarnation = 0;
};

class monitor {
 public:
  monitor(const broker_fleet& fleet, monitor_options options);
  ~monitor();
  monitor(const monitor&) = delete;
  monitor& operator=(const monitor&) = delete;

  void start();
  void stop();  // idempotent; joins the thread

  std::vector<broker_view> views() const;
  // The slot whose latest health answer, read after `since`, says master; nullopt when none
  // does, or more than one does (the controller then waits for a clearer picture).
  std::optional<std::uint32_t> master_after(clock_type::time_point since) const;
  // True when `slot`'s latest health answer, read after `since`, has this role.
  bool role_after(std::uint32_t slot, const std::string& role, clock_type::time_point since) const;

  mastership_book book() const;
  std::vector<probe_write_record> probe_writes() const;

 private:
  asio::awaitable<void> health_loop(std::uint32_t slot);
  asio::awaitable<void> probe_loop(std::uint32_t slot);
  void record(const observation& o, const broker_view* health);

  const broker_fleet& fleet_;
  monitor_options options_;
  asio::io_context io_;
  std::thread thread_;
  bool stopping_ = false;  // io thread only

  mutable std::mutex mutex_;
  std::vector<broker_view> views_;
  mastership_book book_;
  std::vector<probe_write_record> probe_writes_;
  std::uint64_t next_probe_seq_ = 1;  // io thread only
};

}  // namespace tandem::drill
