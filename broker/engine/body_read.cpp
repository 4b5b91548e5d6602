// One way to a journaled body that is not in memory without blocking the io thread (issue
// 17, finding 8): the store reads it on its reader thread (journal::message_store::
// read_async) and the caller is called back on the io thread. Dispatch (fetch.cpp), expiry
// (expiry.cpp), dead letters and delayed redelivery (redelivery.cpp), queue browsers
// (browse.cpp) and scheduled firings (scheduled.cpp) all come here, so the rules live once:
// - the answer comes only while the engine lives (a failover's new engine starts afresh);
// - a caller that must keep the message from consumers meanwhile names a waiting set of its
//   queue (queue::fetching for dispatch, queue::leaving for a message on its way out, which
//   dispatch and the expiry scan skip); one read per message and set at a time;
// - a message that left its target meanwhile (acked, purged, moved) comes back `gone`, so
//   no caller writes a second removal or a copy of a message that is no longer there;
// - a read error is counted, and a damaged record is set aside (unreadable.cpp) once.
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

message_ptr engine::impl::body_in_memory(queue& q, std::uint64_t seq) {
  if (auto it = q.fetched.find(seq); it != q.fetched.end()) return it->second;
  return store_ ? store_->cached(q.key, seq) : nullptr;
}

bool engine::impl::read_body_off_thread(queue* q, std::uint64_t seq, body_waiters waiters, std::string key,
                                        body_callback then) {
  if (waiters && !(q->*waiters).insert(seq).second) return false;  // already asked
  ++body_reads_in_flight_;
  auto on_read = [this, life = std::weak_ptr<int>(life_), key, seq, waiters,
                  then = std::move(then)](journal::result<message_ptr> r) {
    if (life.expired()) return;
    --body_reads_in_flight_;
    queue* at = find_queue_by_key(key);
    body_read out;
    const auto* live = store_->index().messages(key);
    if (waiters && (!at || !(at->*waiters).erase(seq))) {
      out.gone = true;  // the queue went away meanwhile
    } else if (!live || !live->contains(seq)) {
      out.gone = true;
    } else if (r) {
      out.body = std::move(r).value();
    } else {
      ++read_errors_;
      out.error = r.error();
      if (at) out.set_aside = set_aside_if_unreadable(*at, seq, out.error);
    }
    then(at, std::move(out));
  };
  // A store without a reader thread answers inline (journal::message_store::read_async).
  store_->read_async(key, seq, std::move(on_read));
  return true;
}

std::size_t engine::impl::store_reads_in_flight() const { return body_reads_in_flight_; }

std::size_t engine::store_reads_in_flight() const { return impl_->store_reads_in_flight(); }

}  // namespace tandem::broker
