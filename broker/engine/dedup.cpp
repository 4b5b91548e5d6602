// Duplicate detection: see dedup.h for who remembers which seq.
#include "broker/engine/dedup.h"

#include <algorithm>

#include "journal/message_store.h"

#ifdef TANDEM_UNSAFE_FAULTS  // deliberate defects for tandem-drill's self-test (tools/drill/unsafe_faults.cpp)
extern "C" bool tandem_unsafe_fault(const char* name);
#endif

namespace tandem::broker::detail {

bool dedup::seen(const std::string& producer, std::uint64_t seq) const {
  if (producer.empty()) return false;
#ifdef TANDEM_UNSAFE_FAULTS  // defect dedup_before_durable: an original still in flight counts as stored
  if (tandem_unsafe_fault("dedup_before_durable") && accepted_.contains(producer) && accepted_.at(producer).seqs.contains(seq))
    return true;
#endif
  // issue 12: a hit in `accepted_` may be an original still in flight; answering it should
  // wait for that append (and not count if the append fails).
  if (auto it = accepted_.find(producer); it != accepted_.end() && it->second.seqs.contains(seq))
    return true;
  return store_ && store_->index().is_duplicate(producer, seq);
}

void dedup::accepted(const std::string& producer, std::uint64_t seq) {
  // issue 12: recording at acceptance is what keeps an aborted or refused send "seen".
  if (window_ == 0 || producer.empty()) return;
  auto& w = accepted_[producer];
  if (!w.seqs.insert(seq).second) return;
  w.order.push_back(seq);
  while (w.order.size() > window_) {
    w.seqs.erase(w.order.front());
    w.order.pop_front();
  }
}

void dedup::now_durable(const std::string& producer, std::uint64_t seq) {
  auto it = accepted_.find(producer);
  if (it == accepted_.end() || !it->second.seqs.erase(seq)) return;
  auto& order = it->second.order;
  // In flight means recent: search from the newest end.
  auto at = std::find(order.rbegin(), order.rend(), seq);
  if (at != order.rend()) order.erase(std::next(at).base());
  if (order.empty()) accepted_.erase(it);
}

}  // namespace tandem::broker::detail
