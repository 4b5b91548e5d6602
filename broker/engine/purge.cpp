// engine::purge: the admin purge of a destination (POST /api/destinations/NAME/purge,
// `tandemctl purge`). It reuses the expiry path's removal (remove_message + one journal
// batch), so purged messages leave exactly as expired ones do, minus the DLQ, and the index
// drops them at once (journal::store::append applies removes immediately), so dispatch
// cannot deliver a purged message while its removal is being made durable.
#include <utility>

#include <fmt/format.h>

#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

bool engine::purge(std::string_view destination, std::function<void(std::error_code, std::uint64_t)> done) {
  auto& self = *impl_;
  // Drops the pending messages of `q` (in flight ones stay: their consumer may still ack them).
  auto purge_queue = [&self](queue& q, std::vector<journal::batch_item>& removes) {
    std::uint64_t dropped = 0;
    if (self.store_ && !q.key.empty()) {
      // No body is read (issue 17: reading 30,000 bodies on the io thread stalled every
      // client for 489 ms): the index's record size stands in for the message's bytes, the
      // estimate recovery uses too; q.bytes is zeroed below once nothing is left.
      std::vector<std::pair<std::uint64_t, std::uint64_t>> seqs;
      if (const auto* m = self.store_->index().messages(q.key)) {
        for (const auto& [seq, ref] : *m)
          if (!q.inflight_persistent.contains(seq)) seqs.emplace_back(seq, ref.where.size);
      }
      for (auto [seq, bytes] : seqs) {
        self.remove_message(q, seq, true, bytes, &removes);
        ++dropped;
      }
    }
    for (auto it = q.memory.begin(); it != q.memory.end();) {
      std::uint64_t bytes = it->second ? message_bytes(*it->second) : 0;
      auto seq = it->first;
      it = q.memory.erase(it);
      self.remove_message(q, seq, false, bytes, nullptr);
      ++dropped;
    }
    for (auto& [seq, m] : q.deferred_memory) {
      self.remove_message(q, seq, false, m ? message_bytes(*m) : 0, nullptr);
      ++dropped;
    }
    q.deferred_memory.clear();
    q.deferred.clear();
    q.next_due = 0;
    q.earliest_expiry = 0;
    if (q.inflight == 0 && q.pending_appends == 0) q.bytes = 0;
    self.mark_dirty(q);
    return dropped;
  };
  std::vector<queue*> targets;
  if (auto it = self.queues_.find(destination); it != self.queues_.end()) {
    targets.push_back(it->second.get());
  } else if (auto t = self.topics_.find(destination); t != self.topics_.end()) {
    for (auto& [key, q] : t->second.durable) targets.push_back(q);
    for (auto* sub : t->second.subscribers) targets.push_back(sub->q);
  } else {
    return false;
  }
  std::vector<journal::batch_item> removes;
  std::uint64_t dropped = 0;
  for (auto* q : targets) dropped += purge_queue(*q, removes);
  self.append_removes(std::move(removes), self.guard([done = std::move(done), dropped](std::error_code ec) {
    if (done) done(ec, dropped);
  }));
  return true;
}

}  // namespace tandem::broker
