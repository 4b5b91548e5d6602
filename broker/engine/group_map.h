// tandem::broker::detail::group_map: a queue's message groups (JMSXGroupID) and the consumer
// each is pinned to (consumers.cpp), bounded as ActiveMQ bounds them.
//
// ActiveMQ keeps a destination's group owners in an LRU map of messageGroupMapFactory's
// cacheSize entries (CachedMessageGroupMap, 1,024 by default); without a bound a producer
// that sends a new JMSXGroupID with every message grows the map forever. Here the bound is
// the destination policy's message_group_map_cache_size (default 1024). Pinning a group,
// or delivering one more of its messages, makes it the most recently used; one group more
// than the bound evicts the least recently used one. An evicted group is like a new one:
// its next message goes to whichever consumer is next, and carries
// JMSXGroupFirstForConsumer (docs/compatibility.md says what that does to ordering).
//
// Cost: per group one list node and one hash node with the group id (~120 bytes with the
// id); a lookup hashes the id once.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tandem::broker::detail {

struct subscription;

class group_map {
 public:
  // The consumer `group` is pinned to; nullptr when none. Not a use: it does not move the
  // group in the LRU order (selectors and dispatch's look-ahead ask without delivering).
  subscription* owner(std::string_view group) const;
  // Pins `group` to `owner` (again) and makes it the most recently used; then evicts the
  // least recently used groups while more than `capacity` (at least 1) are pinned.
  void pin(std::string_view group, subscription* owner, std::size_t capacity);
  void erase(std::string_view group);
  // Frees every group pinned to `owner` (it left the queue).
  void release(const subscription* owner);

  bool empty() const { return by_id_.empty(); }
  std::size_t size() const { return by_id_.size(); }
  // Groups dropped because the map was full, since the queue was made.
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct entry {
    std::string id;
    subscription* owner;
  };
  std::list<entry> by_use_;  // most recently used first
  // Keys are views of the entries' ids in by_use_ (list nodes do not move).
  std::unordered_map<std::string_view, std::list<entry>::iterator> by_id_;
  std::uint64_t evicted_ = 0;
};

}  // namespace tandem::broker::detail
