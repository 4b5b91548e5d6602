// Expiry: a message whose `expires` time has passed is never delivered. dispatch checks the
// message it is about to deliver; tick (expire_all) walks queues whose earliest expiry has
// passed, at most once a second each. Expired messages are dropped, or dead-lettered with
// expired_to_dlq.
#include <fmt/format.h>

#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

void engine::impl::expire(queue& q, std::uint64_t seq, bool persistent, message_ptr m) {
  ++q.expired;
  if (!m) m = load(q, seq, persistent);
  if (advising()) advise_message("Expired", q, m.get(), "expired");
  std::uint64_t bytes = m ? message_bytes(*m) : 0;
  if (config_.expired_to_dlq) {
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
