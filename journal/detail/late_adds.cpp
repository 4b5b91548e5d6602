#include "journal/detail/late_adds.h"

#include <algorithm>

namespace tandem::journal::detail {

void late_adds::remove_missed(std::uint64_t append_no, std::string_view target, std::uint64_t msg_seq,
                              std::uint32_t item) {
  early_removes_[msg_seq].push_back({append_no, item, std::string(target)});
  early_remove_order_.emplace_back(append_no, msg_seq);
}

void late_adds::target_dropped(std::uint64_t append_no, std::string_view target) {
  if (auto it = dropped_.find(target); it != dropped_.end()) it->second = append_no;
  else dropped_.emplace(std::string(target), append_no);
}

bool late_adds::keep_target(std::uint64_t append_no, std::uint64_t msg_seq, std::uint32_t item,
                            std::string_view target) const {
  if (auto it = dropped_.find(target); it != dropped_.end() && it->second > append_no) return false;
  auto early = early_removes_.find(msg_seq);
  if (early == early_removes_.end()) return true;
  return std::none_of(early->second.begin(), early->second.end(), [&](const early_remove& r) {
    return r.target == target && std::pair(r.append_no, r.item) > std::pair(append_no, item);
  });
}

void late_adds::forget_completed(std::uint64_t append_no) {
  if (!dropped_.empty()) std::erase_if(dropped_, [&](const auto& d) { return d.second <= append_no; });
  while (!early_remove_order_.empty() && early_remove_order_.front().first <= append_no) {
    const auto seq = early_remove_order_.front().second;
    early_remove_order_.pop_front();
    auto it = early_removes_.find(seq);
    if (it == early_removes_.end()) continue;
    std::erase_if(it->second, [&](const early_remove& r) { return r.append_no <= append_no; });
    if (it->second.empty()) early_removes_.erase(it);
  }
}

}  // namespace tandem::journal::detail
