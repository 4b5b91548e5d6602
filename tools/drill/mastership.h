// Did two brokers ever serve at once? The evidence and the reasoning that turns it into a
// yes/no without false alarms.
//
// Two observers look at every broker all the time (monitor.h): the admin `/health` poller
// (role and epoch) and a STOMP prober (CONNECT on the client port answered by CONNECTED). An
// observation covers the interval [start, end] between sending the request and reading the
// answer; the broker was in the observed state at SOME instant inside it, not at all of it.
// Two "master" answers from different brokers in the same sweep therefore prove nothing: the
// first may have died and the second taken over between the two requests.
//
// What does prove it: continuity. A process that answered "master, epoch E" at t1 and again at
// t2 was master during all of [end1, start2] — a broker never leaves mastership and comes back
// with the same epoch, and a listener that accepted at t1 and t2 was open in between (a
// broker opens its client port once, when it becomes master). A run of consecutive positive
// observations of one process incarnation (same epoch for health) is a *stint*; its *proven*
// interval is [end of its first observation, start of its last]. Two stints of different
// processes whose proven intervals intersect = two masters at the same instant.
//
// Checked as well: the same epoch claimed by two incarnations (epochs must be unique).
//
// Threads: not synchronized; the monitor guards its book with its own mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tandem::drill {

using clock_type = std::chrono::steady_clock;

enum class evidence_source { health, probe };
const char* to_string(evidence_source s);

struct observation {
  evidence_source source = evidence_source::health;
  std::uint32_t slot = 0;          // which broker (its ports)
  std::uint64_t incarnation = 0;   // which process of that slot (restarts count up)
  clock_type::time_point start;    // request sent
  clock_type::time_point end;      // answer read
  bool positive = false;           // master (health) / CONNECTED (probe)
  std::uint64_t epoch = 0;         // health only; 0 for the probe
};

struct stint {
  evidence_source source = evidence_source::health;
  std::uint32_t slot = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t epoch = 0;
  clock_type::time_point first_end;   // proven from here...
  clock_type::time_point last_start;  // ...to here (empty when last_start <= first_end)
  std::uint64_t observations = 0;

  bool proven() const { return last_start > first_end; }
};

struct double_master {
  std::string kind;  // "overlap" (proven intervals intersect) or "epoch_reused"
  stint a, b;
  std::chrono::microseconds overlap{0};
};

void to_json(nlohmann::json& j, const double_master& d, clock_type::time_point origin);

class mastership_book {
 public:
  void add(const observation& o);
  // Every stint so far, closed ones and the open ones.
  std::vector<stint> stints() const;
  // The violations found in all stints so far (each pair reported once).
  std::vector<double_master> violations() const;
  std::uint64_t observations() const { return observations_; }
  std::uint64_t positives() const { return positives_; }

 private:
  std::vector<stint> closed_;
  std::vector<stint> open_;  // at most one per (source, slot)
  std::uint64_t observations_ = 0;
  std::uint64_t positives_ = 0;
};

}  // namespace tandem::drill
