// The drill's record of every message and the verdict checked against it.
//
// The model (after etcd's robustness suite: record the history, check it against a model):
// each producer p sends the stream seq = 1, 2, 3, ... to its own queue, each SEND asking for a
// RECEIPT. A RECEIPT is the broker's promise that the message is on disk; from then on it
// must reach a consumer, whatever happens to the master. So at the end:
//
//   lost                 receipted, never delivered                    must be 0
//   duplicates           deliveries beyond a message's first           allowed (at-least-once)
//   duplicates_unflagged of those, flagged neither `redelivered:true`  must be 0: a consumer
//                        nor `tandem-duplicate:true`                   must be able to tell
//   order_violations     a message delivered for the first time after  must be 0 unless
//                        a later one of the same producer, on the      flagged redelivered
//                        same consumer, and not flagged redelivered
//   corrupted            body differs from what was sent               must be 0
//   unexpected           a MESSAGE whose ids we never sent             must be 0
//   policy_violations    a delivery policy's promise broken            must be 0
//                        (--workload, policy_workload.h)
//   acked_redelivered    delivered again after the broker had          must be 0
//                        answered its ACK with a RECEIPT
//
// Consumers ask a RECEIPT for every ACK: an ACK's RECEIPT, like a SEND's, comes only once its
// remove is on disk (docs/failover.md), so a message delivered again after it was broken
// the promise the other way round: an acknowledged message came back (issue 12: "no
// acknowledged message is redelivered", whatever the fault, a planned handover included).
// Only messages that must be delivered once count (a repeating schedule comes back by design).
//
// A SEND whose RECEIPT was lost (connection died) is resent with the same producer id and seq;
// the broker's duplicate detection drops the copy but still answers RECEIPT. A message that
// was delivered without ever being receipted is fine (the broker had it on disk, the RECEIPT
// was lost on the way back).
//
// Bodies are deterministic functions of (producer, seq, size), so a consumer checks integrity
// without keeping what was sent.
//
// Threads: not synchronized. The workload owns one and touches it only on its io thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tandem::drill {

using clock_type = std::chrono::steady_clock;

// Message bodies: "p<producer>:<seq>:" followed by filler derived from both, `size` bytes in
// all (the prefix is cut when size is smaller).
std::string make_body(std::uint32_t producer, std::uint64_t seq, std::size_t size);
bool body_matches(std::string_view body, std::uint32_t producer, std::uint64_t seq, std::size_t size);

struct verdict {
  std::uint64_t sent = 0;           // distinct messages sent at least once
  std::uint64_t send_attempts = 0;  // SEND frames written, resends included
  std::uint64_t receipted = 0;      // distinct messages that got a RECEIPT
  std::uint64_t delivered = 0;      // distinct messages delivered at least once
  std::uint64_t deliveries = 0;     // MESSAGE frames received with ids we know
  std::uint64_t lost = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t duplicates_unflagged = 0;
  std::uint64_t duplicated_messages = 0;     // distinct messages delivered more than once
  std::uint64_t delivered_unreceipted = 0;   // delivered although no RECEIPT came back
  std::uint64_t order_violations = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t unexpected = 0;
  std::uint64_t policy_violations = 0;       // a delivery policy's promise broken (policy_workload.h)
  std::uint64_t acks_receipted = 0;          // distinct messages whose ACK got a RECEIPT
  std::uint64_t acked_redelivered = 0;       // deliveries after the message's ACK was receipted
  std::vector<std::string> lost_examples;    // up to max_examples "p<producer>:<seq>"
  std::vector<std::string> unflagged_examples;  // "p<producer>:<seq>" delivered again without a flag
  std::vector<std::string> order_examples;   // "p1:42 after p1:57 on consumer 0"
  std::vector<std::string> corrupted_examples;
  std::vector<std::string> unexpected_examples;
  std::vector<std::string> policy_examples;
  std::vector<std::string> acked_redelivered_examples;  // "p1:42" delivered after its ACK's RECEIPT
  // When the RECEIPT of each lost message was read, and when each duplicate was delivered
  // (and whether it was flagged): the drill attributes them to fault episodes by time.
  std::vector<clock_type::time_point> lost_receipt_times;
  std::vector<std::pair<clock_type::time_point, bool>> duplicate_events;
  std::vector<clock_type::time_point> acked_redelivered_times;

  // The run failed on its messages (loss, corruption, reordering, ids from nowhere,
  // duplicates a consumer cannot recognise).
  bool failed() const {
    return lost > 0 || order_violations > 0 || corrupted > 0 || unexpected > 0 || duplicates_unflagged > 0 ||
           policy_violations > 0 || acked_redelivered > 0;
  }
};

void to_json(nlohmann::json& j, const verdict& v);

class history {
 public:
  static constexpr std::size_t max_examples = 20;

  explicit history(std::size_t producers);

  // A SEND of (p, seq) was queued (each attempt, resends included). Seqs start at 1 and a
  // producer never skips one. `expected`: MESSAGEs it must produce (a repeating schedule
  // fires several times, policy_workload.h); with more than one, a delivery beyond the first
  // is a duplicate only when the deliveries exceed `expected`, an unflagged one only when
  // the unflagged deliveries do, and fewer deliveries than `expected` is lost.
  void on_send(std::uint32_t p, std::uint64_t seq, std::uint32_t expected = 1);
  // Its RECEIPT arrived at `at` (a second RECEIPT for a resend is harmless).
  void on_receipt(std::uint32_t p, std::uint64_t seq, clock_type::time_point at = clock_type::now());
  // A MESSAGE carrying (p, seq) reached consumer `consumer` at `at`; `flagged`: it carried
  // redelivered:true or tandem-duplicate:true. The order check compares first deliveries
  // with the same `consumer` value, so a caller may pass another scope (a message group:
  // order across consumers), or no_order_check.
  static constexpr std::uint32_t no_order_check = UINT32_MAX;
  void on_delivery(std::uint32_t consumer, std::uint32_t p, std::uint64_t seq, bool flagged, bool body_ok,
                   clock_type::time_point at = clock_type::now());
  // The RECEIPT of a consumer's ACK of (p, seq) arrived: from now on it must not come back.
  void on_ack_receipted(std::uint32_t p, std::uint64_t seq);
  // The broker broke a delivery policy's promise (policy_workload.h), e.g. dead-lettered a
  // message that was NACKed once under a redelivery policy allowing more.
  void on_policy_violation(std::string what);
  // A MESSAGE whose drill headers are missing, unparsable or name a message never sent.
  void on_unexpected(std::string_view what);
  // Stream p has no send order to keep (the probe writes over many connections at once).
  void set_unordered(std::uint32_t p);

  // Receipted messages of producer p (or of all, with p = npos) not delivered yet: the end of
  // a run waits for this to reach 0.
  static constexpr std::uint32_t all = UINT32_MAX;
  std::uint64_t receipted_undelivered(std::uint32_t p = all) const;
  std::uint64_t receipted(std::uint32_t p = all) const;
  std::uint64_t delivered(std::uint32_t p = all) const;

  verdict compute() const;

 private:
  struct entry {
    bool sent = false;
    bool receipted = false;
    bool ack_receipted = false;
    std::uint32_t deliveries = 0;
    std::uint32_t unflagged_deliveries = 0;
    std::uint32_t unflagged_duplicates = 0;
    std::uint32_t expected = 1;
    clock_type::time_point receipt_at;
  };
  struct stream {
    std::vector<entry> entries;  // index seq - 1
    std::uint64_t attempts = 0;
    std::uint64_t receipted = 0;
    std::uint64_t delivered = 0;
    std::uint64_t receipted_undelivered = 0;
  };
  entry* find(std::uint32_t p, std::uint64_t seq);

  std::vector<stream> streams_;
  std::vector<bool> unordered_;
  // Highest seq delivered for the first time, per (consumer, producer): the order check.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> max_first_seq_;
  std::uint64_t order_violations_ = 0;
  std::uint64_t corrupted_ = 0;
  std::uint64_t unexpected_ = 0;
  std::uint64_t policy_violations_ = 0;
  std::uint64_t acked_redelivered_ = 0;
  std::vector<std::string> acked_redelivered_examples_;
  std::vector<clock_type::time_point> acked_redelivered_times_;
  std::vector<std::string> policy_examples_;
  std::vector<std::string> order_examples_;
  std::vector<std::string> corrupted_examples_;
  std::vector<std::string> unexpected_examples_;
  std::vector<std::pair<clock_type::time_point, bool>> duplicate_events_;
};

}  // namespace tandem::drill
