// tandem::journal::live_index: what a message store knows is live, as the broker reads it
// (message_store::index()): the messages per target (queue key) in msg_seq order, the
// destinations, the durable subscriptions, the producers' dedup windows and the next
// msg_seq. Every store fills one (the journal's journal::index derives from it and adds
// where each record lies in its segments); the broker only reads it.
//
// Threading: no mutex. It belongs to the store's owner thread (message_store.h) and is read
// only there, from when open() returns until close().
//
// Memory: bodies and headers stay in the store. Per live message per target one std::map
// node (key + message_ref: 72 bytes, 80 with malloc's header; a big target loaded from a
// checkpoint keeps its nodes in a node_arena, without the header); the journal keeps this
// under its 128-byte budget (the "index memory per live message" test). A pending schedule (an
// entry on format::scheduler_target) costs 24 bytes in schedules() plus its job id's
// characters, in two shared buffers (schedule_list.h).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "journal/node_arena.h"
#include "journal/records.h"
#include "journal/schedule_list.h"

namespace tandem::journal {

// Which stored record holds a message, and its size in bytes: messages appended together
// (one batch) share it, and `size` is what the message costs the store (a batch's size
// counts once per message, an estimate the broker splits). The journal reads it as the
// record's segment seq and byte offset (index.h); a store without segments keeps its own
// key for the record in `segment` (a database: the row's id) and 0 in `offset`.
struct location {
  std::uint64_t segment = 0;
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  friend bool operator==(const location&, const location&) = default;
};

// What the index keeps per live message per target: enough to order and expire messages
// without reading them.
struct message_ref {
  location where;
  std::int64_t expires_ms = 0;
  std::uint8_t priority = 0;
  friend bool operator==(const message_ref&, const message_ref&) = default;
};

// One producer's dedup window: its last seqs, oldest first, each kept once. Producers
// number their sends upwards, so a window is nearly always in ascending order; it counts
// its descents (adjacent pairs out of order) and while there are none answers membership
// by a comparison with the newest seq or a binary search. A linear scan of up to
// `producer_window` seqs per replayed add was a third of a million-message rebuild.
class seq_window {
 public:
  seq_window() = default;
  explicit seq_window(std::deque<std::uint64_t> seqs);  // as loaded; no duplicates expected
  bool contains(std::uint64_t seq) const;
  // Appends `seq` unless it is present; drops the oldest past `limit`.
  void push(std::uint64_t seq, std::size_t limit);
  const std::deque<std::uint64_t>& seqs() const { return seqs_; }
  std::size_t size() const { return seqs_.size(); }
  friend bool operator==(const seq_window& a, const seq_window& b) { return a.seqs_ == b.seqs_; }
  friend bool operator==(const seq_window& a, const std::deque<std::uint64_t>& b) { return a.seqs_ == b; }
  // When the window was last recorded to (journal::index's recency tick; 0 = never).
  std::uint64_t last_use() const { return last_use_; }
  void set_last_use(std::uint64_t tick) { last_use_ = tick; }

 private:
  std::deque<std::uint64_t> seqs_;
  std::size_t descents_ = 0;  // i with seqs_[i] > seqs_[i + 1]
  std::uint64_t last_use_ = 0;
};

class live_index {
 public:
  // Looked up by string_view without building a string (once per replayed add).
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using producer_map = std::unordered_map<std::string, seq_window, string_hash, std::equal_to<>>;
  // msg_seq -> ref. A big target loaded from a checkpoint keeps its nodes in a node_arena
  // (node_arena.h); every other node comes from operator new, as with std::allocator.
  using message_map = std::map<std::uint64_t, message_ref, std::less<std::uint64_t>,
                               arena_allocator<std::pair<const std::uint64_t, message_ref>>>;
  // What the index keeps besides the message_ref of each entry on format::scheduler_target
  // (a pending schedule, format.h section 5): when it fires next and its job id, so a broker
  // taking over rebuilds its timer heap, and can cancel by job id, without reading a single
  // entry (reading them all cost ~60 us each: 6 s at 100,000 schedules). Kept for that one
  // target only: every other message would pay 16 bytes for a field it rarely has.
  using schedule_map = schedule_list;  // msg_seq -> schedule_ref, flat (schedule_list.h)

  // Live messages on `target` in msg_seq order; nullptr when none.
  const message_map* messages(std::string_view target) const;
  const std::map<std::string, message_map, std::less<>>& targets() const { return targets_; }
  // The schedule_ref of entries on format::scheduler_target, by msg_seq. A store that does
  // not keep them (the PostgreSQL store) leaves this empty; an entry without one must then
  // be read (message_store::read) to learn its due time and job id.
  const schedule_map& schedules() const { return schedules_; }
  const std::set<std::string, std::less<>>& destinations() const { return destinations_; }
  // Keyed by subscription_target(client_id, subscription_name).
  const std::map<std::string, durable_subscription, std::less<>>& durable_subscriptions() const {
    return subscriptions_;
  }

  // True when (producer_id, producer_seq) is among the last producer_window() seqs
  // recorded for the producer (a resend of a message already durable). Empty producer id:
  // never.
  bool is_duplicate(std::string_view producer_id, std::uint64_t producer_seq) const;
  const producer_map& producer_windows() const { return producers_; }
  std::size_t producer_window() const { return producer_window_; }
  // At most this many producers keep a window (0 = no bound): recording a seq for one more
  // drops the window of the producer recorded to least recently (journal::index). Its
  // resends are then new messages (ActiveMQ's maxProducersToAudit).
  std::size_t max_producers() const { return max_producers_; }
  // Windows dropped because more than max_producers() producers had one, since this index
  // was made (a recovery's replay drops again what the previous master dropped).
  std::uint64_t producers_evicted() const { return producers_evicted_; }

  std::uint64_t next_msg_seq() const { return next_msg_seq_; }
  std::uint64_t live_messages() const { return live_messages_; }  // (target, message) pairs
  std::uint64_t live_bytes() const { return live_bytes_; }  // sum of location sizes, per target

 protected:
  explicit live_index(std::size_t producer_window, std::size_t max_producers = 0)
      : producer_window_(producer_window), max_producers_(max_producers) {}

  std::size_t producer_window_;
  std::size_t max_producers_;
  std::map<std::string, message_map, std::less<>> targets_;
  schedule_map schedules_;
  std::set<std::string, std::less<>> destinations_;
  std::map<std::string, durable_subscription, std::less<>> subscriptions_;
  producer_map producers_;
  std::uint64_t producers_evicted_ = 0;
  std::uint64_t next_msg_seq_ = 1;
  std::uint64_t live_messages_ = 0;
  std::uint64_t live_bytes_ = 0;
};

}  // namespace tandem::journal
