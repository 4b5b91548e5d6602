// Duplicate detection: see dedup.h for who remembers which seq.
#include "broker/engine/dedup.h"

#include <algorithm>

#include <fmt/format.h>

#include "journal/message_store.h"

#ifdef TANDEM_UNSAFE_FAULTS  // deliberate defects for tandem-drill's self-test (tools/drill/unsafe_faults.cpp)
extern "C" bool tandem_unsafe_fault(const char* name);
#endif

namespace tandem::broker::detail {

dedup::dedup(std::size_t window, std::size_t max_producers, const journal::message_store* store)
    : window_(window),
      max_producers_(max_producers),
      store_(store),
      journal_evicted_before_(store ? store->index().producers_evicted() : 0) {}

std::uint64_t dedup::evicted_journal() const {
  return store_ ? store_->index().producers_evicted() - journal_evicted_before_ : 0;
}

std::optional<std::string> dedup::eviction_news(std::chrono::steady_clock::time_point now, std::chrono::seconds every) {
  const std::uint64_t total = evicted_ + evicted_journal();
  if (total == evicted_reported_) return std::nullopt;
  if (reported_at_ && now - *reported_at_ < every) return std::nullopt;
  std::string line = fmt::format(
      "dedup windows evicted: {} since the last report, {} since this broker became master; dedup_max_producers={} "
      "producers keep a window, and a resend from an evicted producer is stored again as a new message; raise "
      "dedup_max_producers if producers that resend after failovers are more than that",
      total - evicted_reported_, total, max_producers_);
  evicted_reported_ = total;
  reported_at_ = now;
  return line;
}

dedup::status dedup::check(const std::string& producer, std::uint64_t seq) const {
  if (producer.empty()) return status::fresh;
  if (in_flight_.contains({producer, seq})) {
#ifdef TANDEM_UNSAFE_FAULTS  // defect dedup_before_durable: an original still in flight counts as stored
    if (tandem_unsafe_fault("dedup_before_durable")) return status::stored;
#endif
    return status::in_flight;
  }
  if (auto it = stored_.find(producer); it != stored_.end() && it->second.seqs.contains(seq)) return status::stored;
  if (store_ && store_->index().is_duplicate(producer, seq)) return status::journaled;
  return status::fresh;
}

void dedup::stored(const std::string& producer, std::uint64_t seq) {
  if (window_ == 0 || producer.empty()) return;
  auto [it, added] = stored_.try_emplace(producer);
  auto& w = it->second;
  if (added) {
    w.recency = recency_.insert(recency_.end(), producer);
    if (max_producers_ != 0 && stored_.size() > max_producers_) {
      stored_.erase(recency_.front());
      recency_.pop_front();
      ++evicted_;
    }
  } else {
    recency_.splice(recency_.end(), recency_, w.recency);
  }
  if (!w.seqs.insert(seq).second) return;
  w.order.push_back(seq);
  while (w.order.size() > window_) {
    w.seqs.erase(w.order.front());
    w.order.pop_front();
  }
}

void dedup::begin_append(const std::string& producer, std::uint64_t seq) {
  if (window_ == 0 || producer.empty()) return;
  ++in_flight_[{producer, seq}];
}

void dedup::end_append(const std::string& producer, std::uint64_t seq) {
  auto it = in_flight_.find({producer, seq});
  if (it == in_flight_.end()) return;
  if (--it->second == 0) in_flight_.erase(it);
}

}  // namespace tandem::broker::detail
