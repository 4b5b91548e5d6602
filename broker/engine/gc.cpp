// Unused empty destinations are dropped (ActiveMQ's gcInactiveDestinations), so a client that
// subscribes to and leaves many transient names cannot grow the broker for good (issue 17,
// finding 2: 100,000 SUBSCRIBE/UNSUBSCRIBE pairs left RSS +100 MB and /metrics at 190 MB).
//
// A queue goes when it has had no consumer, no message (in memory, in flight, in the journal
// or being appended) and no journal record of its own (destination_create) for
// destination_gc; a topic when it has had no subscriber, durable or not, that long. "That
// long" is measured between scans, once a second from tick: a destination used and emptied
// again between two scans may go early, which costs nothing but its counters (it is made again
// on its next use, as ActiveMQ does).
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

void engine::impl::collect_inactive(std::chrono::steady_clock::time_point now) {
  if (config_.destination_gc.count() == 0 || now - last_gc_ < std::chrono::seconds(1)) return;
  last_gc_ = now;
  auto unused = [&](const queue& q) {
    if (!q.consumers.empty() || !q.memory.empty() || !q.deferred_memory.empty() || q.inflight != 0 || q.pending_appends != 0 || q.dirty ||
        q.create_journaled)
      return false;
    if (store_ && !q.key.empty()) {
      const auto* journaled = store_->index().messages(q.key);
      if (journaled && !journaled->empty()) return false;
    }
    return true;
  };
  // Marks a first sighting; true once the destination has been unused for destination_gc.
  auto expired = [&](bool idle, std::chrono::steady_clock::time_point& since) {
    if (!idle) {
      since = {};
      return false;
    }
    if (since == std::chrono::steady_clock::time_point{}) since = now;
    return now - since >= config_.destination_gc;
  };
  for (auto it = queues_.begin(); it != queues_.end();) {
    if (expired(unused(*it->second), it->second->idle_since)) {
      if (advising()) advise_destination(it->first, false);
      it = queues_.erase(it);
      ++destinations_collected_;
    } else {
      ++it;
    }
  }
  for (auto it = topics_.begin(); it != topics_.end();) {
    auto& t = it->second;
    if (expired(t.subscribers.empty() && t.durable.empty(), t.idle_since)) {
      if (advising()) advise_destination(it->first, false);
      it = topics_.erase(it);
      ++destinations_collected_;
    } else {
      ++it;
    }
  }
}

}  // namespace tandem::broker
