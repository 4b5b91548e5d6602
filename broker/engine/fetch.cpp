// Bodies for dispatch without blocking the io thread (issue 17, finding 8). A journaled
// message's body is in the store's cache, or it must be read from its segment; that pread
// is what a hung NFS or CephFS mount never answers, and while the io thread waited in it
// no client was served, /health did not answer and step_down could not run. So dispatch
// asks fetch(): a cached body comes back at once; on a miss the store reads it (and a run
// of the queue's next messages) on its reader thread (journal::message_store::read_async),
// and this queue stops dispatching until the completion, which files the body in
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
  if (auto it = q.fetched.find(seq); it != q.fetched.end()) return it->second;
  if (!store_) return nullptr;
  if (auto m = store_->cached(q.key, seq)) return m;
  if (!q.fetching.insert(seq).second) return nullptr;  // already asked
  store_->read_async(q.key, seq,
                     [this, life = std::weak_ptr<int>(life_), key = q.key, seq](journal::result<message_ptr> r) {
                       if (life.expired()) return;
                       on_fetched(key, seq, std::move(r));
                     });
  // A store without a reader thread answers inline (journal::message_store::read_async).
  if (auto it = q.fetched.find(seq); it != q.fetched.end()) return it->second;
  return nullptr;
}

void engine::impl::on_fetched(const std::string& key, std::uint64_t seq, journal::result<message_ptr> r) {
  queue* q = find_queue_by_key(key);
  if (!q || !q->fetching.erase(seq)) return;  // the queue went away meanwhile
  const auto* live = store_->index().messages(key);
  if (!live || !live->contains(seq)) return;  // acked, purged or expired meanwhile
  if (!r) {
    ++read_errors_;
    // A damaged record is set aside and the queue goes on; an OS error leaves it pending
    // until the queue's next event, as an inline read did.
    if (set_aside_if_unreadable(*q, seq, r.error())) {
      mark_dirty(*q);
      flush();
    }
    return;
  }
  if (q->fetched.size() >= fetched_prune_at) {
    std::erase_if(q->fetched, [&](const auto& e) { return !live->contains(e.first) || q->inflight_persistent.contains(e.first); });
    if (q->fetched.size() >= fetched_prune_at) q->fetched.clear();
  }
  q->fetched.emplace(seq, std::move(r).value());
  mark_dirty(*q);
  flush();
}

std::size_t engine::impl::store_reads_in_flight() const {
  std::size_t n = 0;
  for (const auto& [name, q] : queues_) n += q->fetching.size() + q->leaving.size();
  return n;
}

std::size_t engine::store_reads_in_flight() const { return impl_->store_reads_in_flight(); }

}  // namespace tandem::broker
