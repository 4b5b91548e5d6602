// tandem::journal::schedule_list: what live_index::schedules() keeps per pending schedule
// (an entry on format::scheduler_target): its msg_seq, its next due time and its job id,
// in msg_seq order.
//
// Why not a std::map<msg_seq, {due, std::string}>: a takeover replays every entry of the
// log, and at 100,000 pending schedules that map cost 100,000 node allocations and as many
// job id strings; the journal's share of a takeover went from ~290 ms to ~860 ms, mostly
// page faults and malloc (bench/results/scheduler.md). Here the entries are one flat vector
// (24 bytes each) sorted by msg_seq, and the job ids one shared character buffer, so the
// replay appends to two vectors that grow by doubling.
//
// Replay and the live log add entries in msg_seq order (a new entry has the newest
// msg_seq), so an add is an append; an add out of order (a compaction copy, a checkpoint's
// tail replayed again) finds its place by binary search. A remove marks the entry dead and
// leaves its bytes; once dead entries or unused job id bytes are more than half, the two
// buffers are rebuilt without them, so a broker firing all its schedules pays O(1) per
// remove, amortised.
//
// Views (schedule_ref::job_id) point into the shared buffer: they stay valid until the next
// change to the list.
#pragma once

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::journal {

// One pending schedule as the index keeps it: when it fires next (message_add's
// deliver_at_ms, flags bit 2) and its job id (the entry's message_id), a view into the
// schedule_list that holds it.
struct schedule_ref {
  std::int64_t deliver_at_ms = 0;
  std::string_view job_id;
  friend bool operator==(const schedule_ref&, const schedule_ref&) = default;
};

class schedule_list {
  struct slot {
    std::uint64_t seq;
    std::int64_t deliver_at_ms;
    std::uint32_t id_offset;  // into ids_; dead_slot when the entry was removed
    std::uint32_t id_bytes;
  };
  static constexpr std::uint32_t dead_slot = 0xffffffff;

 public:
  // Iterates the live entries in msg_seq order as (msg_seq, schedule_ref) pairs.
  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::pair<std::uint64_t, schedule_ref>;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = value_type;
    struct arrow {
      value_type v;
      const value_type* operator->() const { return &v; }
    };

    const_iterator() = default;
    value_type operator*() const { return {at_->seq, list_->ref(*at_)}; }
    arrow operator->() const { return {**this}; }
    const_iterator& operator++() {
      ++at_;
      skip_dead();
      return *this;
    }
    const_iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) { return a.at_ == b.at_; }

   private:
    friend class schedule_list;
    const_iterator(const schedule_list* list, const slot* at) : list_(list), at_(at) { skip_dead(); }
    void skip_dead() {
      const slot* end = list_->slots_.data() + list_->slots_.size();
      while (at_ != end && at_->id_offset == dead_slot) ++at_;
    }
    const schedule_list* list_ = nullptr;
    const slot* at_ = nullptr;
  };

  // Adds the entry `seq`, or replaces it (the newest copy wins, as for message_ref).
  // Returns true when it was not there.
  bool insert_or_assign(std::uint64_t seq, std::int64_t deliver_at_ms, std::string_view job_id);
  // Returns true when `seq` was there.
  bool erase(std::uint64_t seq);
  void clear();

  std::optional<schedule_ref> find(std::uint64_t seq) const;
  bool contains(std::uint64_t seq) const { return find(seq).has_value(); }
  // REQUIRES: contains(seq) (throws std::out_of_range otherwise, as std::map::at).
  schedule_ref at(std::uint64_t seq) const;
  std::size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  // Bytes held for the list (both buffers' capacity): the index's memory figure.
  std::size_t memory_bytes() const { return slots_.capacity() * sizeof(slot) + ids_.capacity(); }

  const_iterator begin() const { return {this, slots_.data()}; }
  const_iterator end() const { return {this, slots_.data() + slots_.size()}; }

  // Equal live entries, whatever removes either went through.
  friend bool operator==(const schedule_list& a, const schedule_list& b);

 private:
  schedule_ref ref(const slot& s) const { return {s.deliver_at_ms, std::string_view(ids_).substr(s.id_offset, s.id_bytes)}; }
  // The slot holding `seq`, live or dead; nullptr when none.
  slot* locate(std::uint64_t seq);
  const slot* locate(std::uint64_t seq) const;
  void store_id(slot& s, std::string_view job_id);
  void compact_if_sparse();

  std::vector<slot> slots_;  // by seq, ascending
  std::string ids_;          // every job id, back to back
  std::size_t live_ = 0;
  std::size_t dead_id_bytes_ = 0;
};

}  // namespace tandem::journal
