// Bodies for dispatch without blocking the io thread (issue 17, finding 8). A journaled
// message's body is in the store's cache, or it must be read from its segment; that pread
// is what a hung NFS or CephFS mount never answers, and while the io thread waited in it
// no client was served, /health did not answer and step_down could not run. So dispatch
// asks fetch(): a cached body comes back at once; on a miss the store reads it (and a run
// of the queue's next messages) on its reader thread (body_read.cpp), and this queue
// stops dispatching until the completion, which files the body in
// q.fetched and dispatches the queue again. Other queues and sessions go on meanwhile.
//
// q.fetched holds a body from its read to its delivery, also one too large for the
// store's cache; remove_message drops its entry, and the map is pruned of messages no
// longer pending when it grows (a purge or an expiry may remove one without delivery).
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

namespace {
constexpr std::size_t fetched_prune_at = 64;
}  // namespace

message_ptr engine::impl::fetch(queue& q, std::uint64_t seq) {
  if (!store_) return nullptr;
  if (auto m = body_in_memory(q, seq)) return m;
  read_body_off_thread(&q, seq, &queue::fetching, q.key,
                       [this, seq](queue* at, body_read r) { on_fetched(at, seq, std::move(r)); });
  // A store without a reader thread has answered inline.
  if (auto it = q.fetched.find(seq); it != q.fetched.end()) return it->second;
  return nullptr;
}

void engine::impl::on_fetched(queue* q, std::uint64_t seq, body_read r) {
  if (r.gone) return;  // acked, purged or expired meanwhile, or the queue went away
  if (!r.body) {
    // A damaged record was set aside and the queue goes on; an OS error leaves it pending
    // until the queue's next event, as an inline read did.
    if (r.set_aside) {
      mark_dirty(*q);
      flush();
    }
    return;
  }
  if (q->fetched.size() >= fetched_prune_at) {
    const auto* live = store_->index().messages(q->key);
    std::erase_if(q->fetched, [&](const auto& e) { return !live->contains(e.first) || q->inflight_persistent.contains(e.first); });
    if (q->fetched.size() >= fetched_prune_at) q->fetched.clear();
  }
  q->fetched.emplace(seq, std::move(r.body));
  mark_dirty(*q);
  flush();
}

}  // namespace tandem::broker
