// Did two brokers complete appends in overlapping time? The check, from outside.
//
// "Never both report master" is not enough: a deposed master that still receipts appends
// while the new one already does is two writers, whatever /health says. What the drill can
// see of an append is its RECEIPT: the broker completed the append (fsync and fence
// included) after the drill wrote the SEND (`sent`: a lower bound of the append's start) and
// before the drill read the RECEIPT (`received`: an upper bound of its completion). Each
// RECEIPT is attributed to the broker process that sent it (the connection's slot and the
// incarnation running when the connection was made) and that process's epoch (from its
// "master epoch=N" log line, or its /health).
//
// The rule (etcd's robustness checks, applied to fencing): once a newer epoch exists, no
// append of an older epoch completes. Proof of a violation from the drill's clock alone:
//
//   RECEIPT r of epoch e, and a RECEIPT n of epoch E > e with  n.received < r.sent
//
// The newer master had completed an append before the drill even wrote r's SEND, so r's
// append completed after it: overlapping writers. A RECEIPT of the old epoch read late (it
// was in flight, or the old master was paused after completing) is not counted: its SEND
// was written before the new epoch's first RECEIPT was seen, so nothing proves an overlap.
// No false alarms, at the price of seeing only overlaps that last longer than one
// round trip. Besides, the window of RECEIPTs seen per epoch is reported for people.
//
// Threads: plain functions over values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tandem::drill {

using clock_type = std::chrono::steady_clock;

struct write_ack {
  clock_type::time_point sent;      // the SEND was queued by the drill
  clock_type::time_point received;  // its RECEIPT was read
  std::uint32_t slot = 0;           // broker that answered
  std::uint64_t incarnation = 0;    // its process (fleet.h)
  std::optional<std::uint64_t> epoch;  // resolved by the caller; nullopt: unknown
  std::string what;                 // "p3:1234", "probe:77"
};

struct epoch_window {
  std::uint64_t epoch = 0;
  std::uint32_t slot = 0;
  std::uint64_t incarnation = 0;
  clock_type::time_point first_received, last_received;
  std::uint64_t receipts = 0;
};

struct overlap_pair {
  std::uint64_t older = 0, newer = 0;
  std::uint64_t receipts = 0;  // RECEIPTs of `older` proven after `newer` completed an append
  std::string example;         // "probe:77 (epoch 4) sent 12.5 ms after epoch 5's first RECEIPT"
  clock_type::time_point first;  // the earliest such RECEIPT (its `received`)
};

struct writers_report {
  std::uint64_t acks = 0;
  std::uint64_t unattributed = 0;     // no epoch known for the process that answered
  std::uint64_t overlapping = 0;      // RECEIPTs proving two writers (sum over pairs)
  std::vector<overlap_pair> pairs;
  std::vector<epoch_window> windows;  // by epoch
  // When each overlapping RECEIPT was read (for attributing them to fault episodes).
  std::vector<clock_type::time_point> overlap_times;
};

writers_report check_writers(const std::vector<write_ack>& acks);

void to_json(nlohmann::json& j, const writers_report& r, clock_type::time_point origin);

}  // namespace tandem::drill
