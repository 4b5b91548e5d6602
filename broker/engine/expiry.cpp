// Expiry: a message whose `expires` time has passed is never delivered. dispatch checks the
// message it is about to deliver; tick (expire_all) walks queues whose earliest expiry has
// passed, at most once a second each. Expired messages are dropped, or dead-lettered with
// expired_to_dlq. A journaled body not in memory is read on the store's reader thread (issue
// 17, finding 8: a hung mount must not stall the io thread); the message waits in
// queue::leaving, skipped by dispatch and the scan, and the removal or the one-record move
// to the DLQ is appended when the body is in, unless the message left the queue meanwhile.
#include <fmt/format.h>

#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

void engine::impl::expire(queue& q, std::uint64_t seq, bool persistent, message_ptr m) {
  if (persistent && !m && store_) {
    m = body_in_memory(q, seq);
    if (!m) {
      // Not in memory: the body (for the advisory, the dead-letter copy and the queue's byte
      // count) is read off the io thread, and the message is held back from dispatch and
      // from the next scan until it is in (on_leaving_read). Asked already: nothing to do.
      read_body_off_thread(&q, seq, &queue::leaving, q.key,
                           [this, seq](queue* at, body_read r) { on_leaving_read(at, seq, std::move(r)); });
      return;
    }
  }
  expire_with_body(q, seq, persistent, std::move(m));
}

// The read for an expiry completed. The message may have left the queue meanwhile (a purge,
// a failover's new engine, the queue removed): then there is nothing left to do, and no
// second removal or dead-letter copy may be written. A failed read: the expired message
// goes without its body (nothing to copy to the DLQ, as dead_letter drops what it cannot
// read).
void engine::impl::on_leaving_read(queue* q, std::uint64_t seq, body_read r) {
  if (r.gone || q->inflight_persistent.contains(seq)) return;
  expire_with_body(*q, seq, true, std::move(r.body));
  mark_dirty(*q);
  flush();
}

void engine::impl::expire_with_body(queue& q, std::uint64_t seq, bool persistent, message_ptr m) {
  ++q.expired;
  if (advising()) advise_message("Expired", q, m.get(), "expired");
  std::uint64_t bytes = m ? message_bytes(*m) : 0;
  // Without a body (unreadable) there is nothing to copy: dead_letter would only read again.
  if (config_.expired_to_dlq && m) {
    dead_letter(q, seq, persistent, std::move(m), bytes, "expired");
    return;
  }
  remove_message(q, seq, persistent, bytes, nullptr);
}

void engine::impl::expire_all(std::int64_t now_ms) {
  for_each_queue([&](queue& q) { expire_scan(q, now_ms); });
}

void engine::impl::expire_scan(queue& q, std::int64_t now_ms) {
  if (q.earliest_expiry == 0 || q.earliest_expiry > now_ms) return;
  // A full walk of the queue: at most once a second per queue (dispatch checks expiry of
  // each message it is about to deliver anyway).
  if (q.last_expiry_scan != 0 && now_ms - q.last_expiry_scan < 1000) return;
  q.last_expiry_scan = now_ms;
  std::int64_t next = 0;
  auto later = [&](std::int64_t e) {
    if (next == 0 || e < next) next = e;
  };
  std::vector<std::uint64_t> persistent_expired, memory_expired;
  if (store_ && !q.key.empty()) {
    if (const auto* m = store_->index().messages(q.key)) {
      for (const auto& [seq, ref] : *m) {
        if (ref.expires_ms == 0 || q.inflight_persistent.contains(seq)) continue;  // a consumer has it
        if (q.leaving.contains(seq)) continue;                                      // expiring already
        if (ref.expires_ms <= now_ms) persistent_expired.push_back(seq);
        else later(ref.expires_ms);
      }
    }
  }
  for (const auto& [seq, m] : q.memory) {
    if (m->expires_ms == 0) continue;
    if (m->expires_ms <= now_ms) memory_expired.push_back(seq);
    else later(m->expires_ms);
  }
  q.earliest_expiry = next;
  for (auto seq : persistent_expired) expire(q, seq, true, nullptr);
  for (auto seq : memory_expired) {
    auto it = q.memory.find(seq);
    auto m = std::move(it->second);
    q.memory.erase(it);
    expire(q, seq, false, std::move(m));
  }
  if (!persistent_expired.empty() || !memory_expired.empty()) mark_dirty(q);
}

}  // namespace tandem::broker
