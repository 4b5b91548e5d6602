#include "broker/engine/group_map.h"

#include <algorithm>

namespace tandem::broker::detail {

subscription* group_map::owner(std::string_view group) const {
  auto it = by_id_.find(group);
  return it == by_id_.end() ? nullptr : it->second->owner;
}

void group_map::pin(std::string_view group, subscription* owner, std::size_t capacity) {
  if (auto it = by_id_.find(group); it != by_id_.end()) {
    it->second->owner = owner;
    by_use_.splice(by_use_.begin(), by_use_, it->second);
    return;
  }
  by_use_.push_front(entry{std::string(group), owner});
  by_id_.emplace(by_use_.front().id, by_use_.begin());
  const std::size_t bound = std::max<std::size_t>(capacity, 1);
  while (by_id_.size() > bound) {
    by_id_.erase(by_use_.back().id);
    by_use_.pop_back();
    ++evicted_;
  }
}

void group_map::erase(std::string_view group) {
  auto it = by_id_.find(group);
  if (it == by_id_.end()) return;
  auto node = it->second;
  by_id_.erase(it);
  by_use_.erase(node);
}

void group_map::release(const subscription* owner) {
  for (auto it = by_use_.begin(); it != by_use_.end();) {
    if (it->owner != owner) {
      ++it;
      continue;
    }
    by_id_.erase(it->id);
    it = by_use_.erase(it);
  }
}

}  // namespace tandem::broker::detail
