#include "journal/live_index.h"

#include <algorithm>

namespace tandem::journal {

const live_index::message_map* live_index::messages(std::string_view target) const {
  auto it = targets_.find(target);
  return it == targets_.end() ? nullptr : &it->second;
}

seq_window::seq_window(std::deque<std::uint64_t> seqs) : seqs_(std::move(seqs)) {
  for (std::size_t i = 0; i + 1 < seqs_.size(); ++i)
    if (seqs_[i] > seqs_[i + 1]) ++descents_;
}

bool seq_window::contains(std::uint64_t seq) const {
  if (seqs_.empty()) return false;
  if (descents_ == 0) {
    if (seq > seqs_.back() || seq < seqs_.front()) return false;
    return std::binary_search(seqs_.begin(), seqs_.end(), seq);
  }
  return std::find(seqs_.begin(), seqs_.end(), seq) != seqs_.end();
}

void seq_window::push(std::uint64_t seq, std::size_t limit) {
  // A replay after a checkpoint repeats the seqs of the tail; keep each once.
  if (contains(seq)) return;
  if (!seqs_.empty() && seqs_.back() > seq) ++descents_;
  seqs_.push_back(seq);
  while (seqs_.size() > limit) {
    if (seqs_.size() >= 2 && seqs_[0] > seqs_[1]) --descents_;
    seqs_.pop_front();
  }
}

bool live_index::is_duplicate(std::string_view producer_id, std::uint64_t producer_seq) const {
  if (producer_id.empty()) return false;
  auto it = producers_.find(producer_id);
  if (it == producers_.end()) return false;
  return it->second.contains(producer_seq);
}

}  // namespace tandem::journal
