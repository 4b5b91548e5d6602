// The journal's in-memory index: what is live, and where on disk it is.
//
// Threading: the index has no mutex. It is owned by the store's owner thread, the thread
// that runs the functions given to options::post (the broker's io_context thread). Read it
// only there. With the default inline post (tools, tests) read it only while no append is
// in flight (e.g. after every callback has run).
//
// Memory: bodies and headers stay on disk. Per live message per target the index holds
// one std::map node (key + message_ref, ~80 bytes with malloc overhead), well under the
// 128-byte budget; see the "index memory per live message" test.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "journal/records.h"

namespace tandem::journal {

// Where a record is: segment seq, byte offset of its header, total bytes (header, payload,
// padding). A message inside a batch points at the batch record.
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

// What keeps a segment from being deleted: live (target, message) entries pointing into it,
// and the durable definitions (destination_create / durable_subscription_create records) of
// destinations and subscriptions that still exist. GC deletes a segment only when both are
// gone; compaction copies both forward (store.h).
struct segment_stats {
  std::uint64_t live_records = 0;  // live entries and definitions pointing into it
  std::uint64_t live_bytes = 0;    // sum of their record sizes (a shared record counts once per target)
  friend bool operator==(const segment_stats&, const segment_stats&) = default;
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

 private:
  std::deque<std::uint64_t> seqs_;
  std::size_t descents_ = 0;  // i with seqs_[i] > seqs_[i + 1]
};

class index {
 public:
  // Looked up by string_view without building a string (once per replayed add).
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using producer_map = std::unordered_map<std::string, seq_window, string_hash, std::equal_to<>>;
  using message_map = std::map<std::uint64_t, message_ref>;  // msg_seq -> ref

  // Live messages on `target` in msg_seq order; nullptr when none.
  const message_map* messages(std::string_view target) const;
  const std::map<std::string, message_map, std::less<>>& targets() const { return targets_; }
  const std::set<std::string, std::less<>>& destinations() const { return destinations_; }
  // Keyed by subscription_target(client_id, subscription_name).
  const std::map<std::string, durable_subscription, std::less<>>& durable_subscriptions() const {
    return subscriptions_;
  }
  const std::map<std::uint64_t, segment_stats>& segments() const { return segments_; }
  // Where the durable record defining each destination / subscription (by
  // subscription_target key) is: the latest create in log order. A definition whose create
  // is not durable yet (just appended) has no entry until it is.
  using location_map = std::map<std::string, location, std::less<>>;
  const location_map& destination_locations() const { return destination_where_; }
  const location_map& subscription_locations() const { return subscription_where_; }

  // True when (producer_id, producer_seq) is among the last `window` seqs recorded for the
  // producer (a resend of a message already durable). Empty producer id: never.
  bool is_duplicate(std::string_view producer_id, std::uint64_t producer_seq) const;

  std::uint64_t next_msg_seq() const { return next_msg_seq_; }
  std::uint64_t last_lsn() const { return last_lsn_; }     // last lsn applied
  std::uint64_t live_messages() const { return live_messages_; }  // (target, message) pairs
  std::uint64_t live_bytes() const { return live_bytes_; }  // of messages, per target
  std::uint64_t definition_bytes() const { return definition_bytes_; }  // located definitions

  // Equal contents: live entries with their locations, definitions with theirs, segment
  // stats, dedup windows, next_msg_seq (last_lsn is not compared: a checkpointed and a
  // fully replayed index agree on contents while their lsn bookkeeping may differ).
  friend bool operator==(const index&, const index&);

  // ---- mutation (the store and recovery call these; exposed for tests and tools) ----
  explicit index(std::size_t producer_window = 1024) : producer_window_(producer_window) {}
  void add(std::uint64_t msg_seq, std::span<const std::string> targets, const message_ref& ref,
           std::string_view producer_id, std::uint64_t producer_seq);
  void add(std::uint64_t msg_seq, std::span<const std::string_view> targets, const message_ref& ref,
           std::string_view producer_id, std::uint64_t producer_seq);
  // Moves (target, msg_seq) to `where` if it is still live there (a compaction copy
  // became durable); false when it was removed meanwhile (the copy must not resurrect it).
  bool relocate(std::string_view target, std::uint64_t msg_seq, const location& where);
  // Returns false when the message was not on the target.
  bool remove(std::string_view target, std::uint64_t msg_seq);
  // Creates (or keeps) a destination / subscription. Without `where` (the store, at append
  // time) an existing definition keeps its location until locate_*() moves it; with `where`
  // (replay, whose record is durable by definition) the definition moves there.
  void create_destination(std::string_view name);
  void create_destination(std::string_view name, const location& where);
  void delete_destination(std::string_view name);  // also drops target `name`
  void create_subscription(const durable_subscription& s);
  void create_subscription(const durable_subscription& s, const location& where);
  void remove_subscription(std::string_view client_id, std::string_view subscription_name);
  // A create record (or its compaction copy) became durable at `where`: the definition
  // moves there if it still exists; false when it was deleted meanwhile.
  bool locate_destination(std::string_view name, const location& where);
  bool locate_subscription(std::string_view key, const location& where);
  void drop_target(std::string_view target);
  void note_msg_seq(std::uint64_t msg_seq);  // next_msg_seq = max(next, msg_seq + 1)
  void set_next_msg_seq(std::uint64_t n) { next_msg_seq_ = n; }
  void set_last_lsn(std::uint64_t lsn) { last_lsn_ = lsn; }
  // Kept once per window, oldest dropped past producer_window() (seq_window::push, which
  // the store also uses to predict windows with appends in flight).
  void record_producer(std::string_view producer_id, std::uint64_t producer_seq);
  std::size_t producer_window() const { return producer_window_; }
  // Bulk loading from a checkpoint: a whole target's map / a producer's window at once.
  void load_target(std::string target, message_map entries);
  void load_producer(std::string producer_id, std::deque<std::uint64_t> window);
  const producer_map& producer_windows() const { return producers_; }

 private:
  void account(const location& where, bool add);
  void account_definition(const location& where, bool add);
  void place(location_map& where_map, std::string_view key, const location& where);
  void forget(location_map& where_map, std::string_view key);
  void add_one(std::string_view target, std::uint64_t msg_seq, const message_ref& ref);

  std::size_t producer_window_;
  std::map<std::string, message_map, std::less<>> targets_;
  std::set<std::string, std::less<>> destinations_;
  std::map<std::string, durable_subscription, std::less<>> subscriptions_;
  location_map destination_where_;
  location_map subscription_where_;
  std::map<std::uint64_t, segment_stats> segments_;
  producer_map producers_;
  std::uint64_t next_msg_seq_ = 1;
  std::uint64_t last_lsn_ = 0;
  std::uint64_t live_messages_ = 0;
  std::uint64_t live_bytes_ = 0;
  std::uint64_t definition_bytes_ = 0;
};

// A 64-bit digest (XXH3) of what operator== compares: live entries with their locations,
// definitions with theirs, the dedup windows and next_msg_seq, in a canonical order (not
// last_lsn). Two indexes with equal contents have equal digests; `tandem-journal summary`
// prints it so a rebuilt index can be compared with a broker's without listing every entry.
std::uint64_t content_digest(const index& idx);

}  // namespace tandem::journal
