// The journal's index: the live index every store keeps (live_index.h) plus where each
// live record lies in the log, which GC, compaction and checkpoints need.
//
// Threading: the index has no mutex. It is owned by the store's owner thread, the thread
// that runs the functions given to options::post (the broker's io_context thread). Read it
// only there. With the default inline post (tools, tests) read it only while no append is
// in flight (e.g. after every callback has run).
//
// In the journal a location (live_index.h) is a record's segment seq, the byte offset of
// its header and its total bytes (header, payload, padding); a message inside a batch
// points at the batch record.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/live_index.h"
#include "journal/records.h"

namespace tandem::journal {

// What keeps a segment from being deleted: live (target, message) entries pointing into it,
// and the durable definitions (destination_create / durable_subscription_create records) of
// destinations and subscriptions that still exist. GC deletes a segment only when both are
// gone; compaction copies both forward (store.h).
struct segment_stats {
  std::uint64_t live_records = 0;  // live entries and definitions pointing into it
  std::uint64_t live_bytes = 0;    // sum of their record sizes (a shared record counts once per target)
  friend bool operator==(const segment_stats&, const segment_stats&) = default;
};

// The fields of a message_add that index::schedules() keeps when a target is
// format::scheduler_target (views: copied only for that target).
struct schedule_fields {
  std::int64_t deliver_at_ms = 0;
  std::string_view job_id;
};

class index : public live_index {
 public:
  const std::map<std::uint64_t, segment_stats>& segments() const { return segments_; }
  // Where the durable record defining each destination / subscription (by
  // subscription_target key) is: the latest create in log order. A definition whose create
  // is not durable yet (just appended) has no entry until it is.
  using location_map = std::map<std::string, location, std::less<>>;
  const location_map& destination_locations() const { return destination_where_; }
  const location_map& subscription_locations() const { return subscription_where_; }

  std::uint64_t last_lsn() const { return last_lsn_; }     // last lsn applied
  std::uint64_t definition_bytes() const { return definition_bytes_; }  // located definitions

  // Equal contents: live entries with their locations (and schedules()), definitions with
  // theirs, segment stats, dedup windows, next_msg_seq (last_lsn is not compared: a checkpointed and a
  // fully replayed index agree on contents while their lsn bookkeeping may differ).
  friend bool operator==(const index&, const index&);

  // ---- mutation (the store and recovery call these; exposed for tests and tools) ----
  explicit index(std::size_t producer_window = 1024, std::size_t max_producers = 0)
      : live_index(producer_window, max_producers) {}
  void add(std::uint64_t msg_seq, std::span<const std::string> targets, const message_ref& ref,
           std::string_view producer_id, std::uint64_t producer_seq, schedule_fields schedule = {});
  void add(std::uint64_t msg_seq, std::span<const std::string_view> targets, const message_ref& ref,
           std::string_view producer_id, std::uint64_t producer_seq, schedule_fields schedule = {});
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
  // Bulk loading from a checkpoint: a whole target's map / a producer's window at once.
  // load_producer, like record_producer, makes the producer the most recently used.
  void load_target(std::string target, message_map entries);
  // Replaces schedules() (a checkpoint's list, format.h section 6).
  void load_schedules(schedule_map schedules) { schedules_ = std::move(schedules); }
  void load_producer(std::string producer_id, std::deque<std::uint64_t> window);

  // The producers with a window, least recently recorded to first: the order checkpoints
  // and index_state sets write them in, so that loading them in that order rebuilds the
  // same recency (format.h sections 5 and 6).
  std::vector<const producer_map::value_type*> producers_by_recency() const;

 private:
  void account(const location& where, bool add);
  void account_definition(const location& where, bool add);
  void place(location_map& where_map, std::string_view key, const location& where);
  void forget(location_map& where_map, std::string_view key);
  void add_one(std::string_view target, std::uint64_t msg_seq, const message_ref& ref, schedule_fields schedule);
  // Makes the producer the most recently recorded to; then drops the least recent windows
  // beyond max_producers().
  void touch(producer_map::iterator it);
  void evict_producers();

  location_map destination_where_;
  location_map subscription_where_;
  std::map<std::uint64_t, segment_stats> segments_;
  std::uint64_t last_lsn_ = 0;
  std::uint64_t definition_bytes_ = 0;
  // Producers by recency: tick of their last record -> id (a copy: no pointers into
  // producers_, so the index stays copyable).
  std::map<std::uint64_t, std::string> recency_;
  std::uint64_t tick_ = 0;
};

// A 64-bit digest (XXH3) of what operator== compares: live entries with their locations,
// definitions with theirs, the dedup windows and next_msg_seq, in a canonical order (not
// last_lsn). Two indexes with equal contents have equal digests; `tandem-journal summary`
// prints it so a rebuilt index can be compared with a broker's without listing every entry.
std::uint64_t content_digest(const index& idx);

}  // namespace tandem::journal
