// A resend's RECEIPT (dedup.h). One whose original the store holds is answered only after a
// store barrier (message_store.h, BARRIER) confirmed mastership after it arrived: a master
// stopped and resumed after a newer epoch took over must not report it (issue 12,
// promise.md "Long run 3" finding 4). Each resend asks its own barrier; the store batches
// those queued together into one confirmation (the journal: one writer group; PostgreSQL:
// one transaction), so a burst of resends after a failover costs one check, not one each.
#include <fmt/format.h>

#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

void engine::impl::answer_duplicate(session& s, const stomp::frame& f, dedup::status seen) {
  ++s.messages_in;
  ++duplicates_;
  // Only dedup's own window (non-persistent sends, dedup.h) answers at once: what it holds
  // dies with this process, so no newer master could be contradicted by the RECEIPT.
  const bool through_fence = seen == dedup::status::journaled && store_ != nullptr;
  const auto slot = add_receipt(s, f, through_fence ? 1 : 0, receipt_kind::duplicate);
  if (through_fence && slot != 0) store_->fence_barrier(receipt_when_fenced(s.id, slot));
}

// The slot completes when the barrier did; a failed barrier (a newer master may exist, the
// store failed and the broker is stepping down, or the store closed) reports nothing: the
// receipt is withheld and the connection ends with an ERROR that answers no receipt.
journal::completion engine::impl::receipt_when_fenced(session_id sid, std::uint64_t slot) {
  return guard([this, sid, slot](std::error_code ec) {
    if (!ec) return complete_slot(sid, slot);
    auto* s = find_session(sid);
    if (!s) return;
    for (auto& r : s->slots)
      if (r.id == slot) r.receipt_id.reset();
    fail_slot(sid, slot,
              {errc::shutting_down,
               fmt::format("This broker could not confirm that it is still the master ({}) and reports nothing more; "
                           "reconnect to the current master and send again.",
                           ec.message())});
  });
}

}  // namespace tandem::broker
