#include "tools/drill/history.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tandem::drill {
namespace {

// Filler letters: a different rotation per message, so a body delivered under the wrong ids
// (or shifted by a byte) does not match.
char filler(std::uint32_t producer, std::uint64_t seq, std::size_t i) {
  std::uint64_t x = std::uint64_t{producer} * 7919u + seq * 31u + i;
  return static_cast<char>('a' + x % 26);
}

std::string body_prefix(std::uint32_t producer, std::uint64_t seq) { return fmt::format("p{}:{}:", producer, seq); }

void add_example(std::vector<std::string>& v, std::string text) {
  if (v.size() < history::max_examples) v.push_back(std::move(text));
}

}  // namespace

std::string make_body(std::uint32_t producer, std::uint64_t seq, std::size_t size) {
  std::string body = body_prefix(producer, seq);
  if (body.size() > size) body.resize(size);
  body.reserve(size);
  for (std::size_t i = body.size(); i < size; ++i) body.push_back(filler(producer, seq, i));
  return body;
}

bool body_matches(std::string_view body, std::uint32_t producer, std::uint64_t seq, std::size_t size) {
  if (body.size() != size) return false;
  std::string prefix = body_prefix(producer, seq);
  std::size_t n = std::min(prefix.size(), size);
  if (body.substr(0, n) != std::string_view(prefix).substr(0, n)) return false;
  for (std::size_t i = n; i < size; ++i) {
    if (body[i] != filler(producer, seq, i)) return false;
  }
  return true;
}

void to_json(nlohmann::json& j, const verdict& v) {
  j = nlohmann::json{
      {"sent", v.sent},
      {"send_attempts", v.send_attempts},
      {"receipted", v.receipted},
      {"delivered", v.delivered},
      {"deliveries", v.deliveries},
      {"lost", v.lost},
      {"duplicates", v.duplicates},
      {"duplicates_unflagged", v.duplicates_unflagged},
      {"duplicated_messages", v.duplicated_messages},
      {"delivered_unreceipted", v.delivered_unreceipted},
      {"order_violations", v.order_violations},
      {"corrupted", v.corrupted},
      {"unexpected", v.unexpected},
      {"policy_violations", v.policy_violations},
      {"acks_receipted", v.acks_receipted},
      {"acked_redelivered", v.acked_redelivered},
      {"lost_examples", v.lost_examples},
      {"unflagged_examples", v.unflagged_examples},
      {"order_examples", v.order_examples},
      {"corrupted_examples", v.corrupted_examples},
      {"unexpected_examples", v.unexpected_examples},
      {"policy_examples", v.policy_examples},
      {"acked_redelivered_examples", v.acked_redelivered_examples},
  };
}

history::history(std::size_t producers) : streams_(producers), unordered_(producers, false) {}

void history::set_unordered(std::uint32_t p) {
  if (p < unordered_.size()) unordered_[p] = true;
}

history::entry* history::find(std::uint32_t p, std::uint64_t seq) {
  if (p >= streams_.size() || seq == 0) return nullptr;
  auto& entries = streams_[p].entries;
  if (seq > entries.size()) return nullptr;
  return &entries[seq - 1];
}

void history::on_send(std::uint32_t p, std::uint64_t seq, std::uint32_t expected) {
  if (p >= streams_.size() || seq == 0) return;
  auto& s = streams_[p];
  if (seq > s.entries.size()) s.entries.resize(seq);
  s.entries[seq - 1].sent = true;
  s.entries[seq - 1].expected = std::max<std::uint32_t>(1, expected);
  ++s.attempts;
}

void history::on_receipt(std::uint32_t p, std::uint64_t seq, clock_type::time_point at) {
  entry* e = find(p, seq);
  if (!e || e->receipted) return;
  e->receipted = true;
  e->receipt_at = at;
  auto& s = streams_[p];
  ++s.receipted;
  if (e->deliveries < e->expected) ++s.receipted_undelivered;
}

void history::on_delivery(std::uint32_t consumer, std::uint32_t p, std::uint64_t seq, bool redelivered, bool body_ok,
                          clock_type::time_point at) {
  entry* e = find(p, seq);
  if (!e || !e->sent) {
    on_unexpected(fmt::format("p{}:{} was never sent", p, seq));
    return;
  }
  if (!body_ok) {
    ++corrupted_;
    add_example(corrupted_examples_, fmt::format("p{}:{}", p, seq));
  }
  auto& s = streams_[p];
  if (e->deliveries == 0) {
    ++s.delivered;
    // Order: the first delivery of each message, per consumer, follows the send order. A
    // message the broker flags redelivered may come back out of order (it went back to the
    // queue); an unflagged one may not.
    if (consumer != no_order_check) {
      auto& max_seq = max_first_seq_[{consumer, p}];
      if (seq < max_seq && !redelivered && !unordered_[p]) {
        ++order_violations_;
        add_example(order_examples_, fmt::format("p{}:{} after p{}:{} on consumer {}", p, seq, p, max_seq, consumer));
      }
      if (seq > max_seq) max_seq = seq;
    }
  }
  if (e->deliveries + 1 == e->expected && e->receipted) --s.receipted_undelivered;
  // Beyond what it must produce: for a plain message any delivery after the first; for a
  // schedule of n firings, the (n+1)th unflagged one (a flagged copy of an earlier firing
  // may come in between).
  const bool beyond = e->expected == 1 ? e->deliveries >= 1 : e->unflagged_deliveries >= e->expected;
  if (!redelivered) {
    if (beyond) ++e->unflagged_duplicates;
    ++e->unflagged_deliveries;
  }
  // Counted unflagged exactly when the verdict counts it (`beyond` and not flagged): a
  // schedule's due firing after a flagged copy of an earlier one is a delivery more than
  // expected, but not an unflagged duplicate (the per-kind tally used to say it was).
  if (e->deliveries >= e->expected) duplicate_events_.emplace_back(at, redelivered || !beyond);
  if (e->ack_receipted && e->expected == 1) {
    ++acked_redelivered_;
    add_example(acked_redelivered_examples_, fmt::format("p{}:{}", p, seq));
    acked_redelivered_times_.push_back(at);
  }
  ++e->deliveries;
}

void history::on_ack_receipted(std::uint32_t p, std::uint64_t seq) {
  if (entry* e = find(p, seq)) e->ack_receipted = true;
}

void history::on_policy_violation(std::string what) {
  ++policy_violations_;
  add_example(policy_examples_, std::move(what));
}

void history::on_unexpected(std::string_view what) {
  ++unexpected_;
  add_example(unexpected_examples_, std::string(what));
}

std::uint64_t history::receipted_undelivered(std::uint32_t p) const {
  if (p != all) return p < streams_.size() ? streams_[p].receipted_undelivered : 0;
  std::uint64_t n = 0;
  for (const auto& s : streams_) n += s.receipted_undelivered;
  return n;
}

std::uint64_t history::receipted(std::uint32_t p) const {
  if (p != all) return p < streams_.size() ? streams_[p].receipted : 0;
  std::uint64_t n = 0;
  for (const auto& s : streams_) n += s.receipted;
  return n;
}

std::uint64_t history::delivered(std::uint32_t p) const {
  if (p != all) return p < streams_.size() ? streams_[p].delivered : 0;
  std::uint64_t n = 0;
  for (const auto& s : streams_) n += s.delivered;
  return n;
}

verdict history::compute() const {
  verdict v;
  for (std::uint32_t p = 0; p < streams_.size(); ++p) {
    const auto& s = streams_[p];
    v.send_attempts += s.attempts;
    for (std::uint64_t i = 0; i < s.entries.size(); ++i) {
      const entry& e = s.entries[i];
      if (e.sent) ++v.sent;
      if (e.ack_receipted) ++v.acks_receipted;
      if (e.receipted) ++v.receipted;
      if (e.deliveries > 0) {
        ++v.delivered;
        v.deliveries += e.deliveries;
        if (!e.receipted) ++v.delivered_unreceipted;
      }
      if (e.deliveries > e.expected) {
        ++v.duplicated_messages;
        v.duplicates += e.deliveries - e.expected;
        v.duplicates_unflagged += e.unflagged_duplicates;
        if (e.unflagged_duplicates > 0) add_example(v.unflagged_examples, fmt::format("p{}:{}", p, i + 1));
      }
      if (e.receipted && e.deliveries < e.expected) {
        ++v.lost;
        add_example(v.lost_examples, fmt::format("p{}:{}", p, i + 1));
        v.lost_receipt_times.push_back(e.receipt_at);
      }
    }
  }
  v.order_violations = order_violations_;
  v.order_examples = order_examples_;
  v.corrupted = corrupted_;
  v.corrupted_examples = corrupted_examples_;
  v.unexpected = unexpected_;
  v.unexpected_examples = unexpected_examples_;
  v.policy_violations = policy_violations_;
  v.policy_examples = policy_examples_;
  v.duplicate_events = duplicate_events_;
  v.acked_redelivered = acked_redelivered_;
  v.acked_redelivered_examples = acked_redelivered_examples_;
  v.acked_redelivered_times = acked_redelivered_times_;
  return v;
}

}  // namespace tandem::drill
