// tandem::broker::bounded_page: one page (offset, limit) of a list that is fed one item at a
// time and never held whole (issue 17: admin listings paginated). Used by GET
// /api/destinations (destination_listing.h) and GET /api/connections (admin_connections.cpp):
// the listing walks its destinations or sessions in slices and adds the ones its filter
// matches; only the best offset + limit are kept, in a heap whose front is the worst kept,
// so memory is bounded by the page asked for, not by the number of items.
//
// The page is the one a stable sort of every item fed would give: by `before`, then in the
// order fed (ties, and every item when `before` never answers true).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

namespace tandem::broker {

// Before: bool(const T& a, const T& b), true when a comes before b on the page.
template <class T, class Before>
class bounded_page {
 public:
  bounded_page(std::size_t offset, std::size_t limit, Before before)
      : before_(std::move(before)),
        offset_(offset),
        keep_(offset > std::numeric_limits<std::size_t>::max() - limit ? std::numeric_limits<std::size_t>::max()
                                                                        : offset + limit) {}

  void add(T item) {
    entry e{std::move(item), added_++};
    if (keep_ == 0) return;
    if (heap_.size() == keep_) {
      if (!earlier(e, heap_.front())) return;  // after every item kept: not on the page
      std::pop_heap(heap_.begin(), heap_.end(), cmp());
      heap_.pop_back();
    }
    heap_.push_back(std::move(e));
    std::push_heap(heap_.begin(), heap_.end(), cmp());
  }
  std::size_t added() const { return added_; }
  // Items held now: never more than offset + limit.
  std::size_t kept() const { return heap_.size(); }
  // The items from offset on (at most limit), in page order. Call once, after every add.
  std::vector<T> take() {
    std::sort(heap_.begin(), heap_.end(), cmp());
    std::vector<T> out;
    for (std::size_t i = offset_; i < heap_.size(); ++i) out.push_back(std::move(heap_[i].item));
    heap_.clear();
    return out;
  }

 private:
  struct entry {
    T item;
    std::size_t seq;  // order fed, for ties
  };
  bool earlier(const entry& a, const entry& b) const {
    if (before_(a.item, b.item)) return true;
    if (before_(b.item, a.item)) return false;
    return a.seq < b.seq;
  }
  auto cmp() const {
    return [this](const entry& a, const entry& b) { return earlier(a, b); };
  }

  Before before_;
  std::size_t offset_ = 0, keep_ = 0;
  std::size_t added_ = 0;
  std::vector<entry> heap_;  // max-heap by earlier(): the front is the last kept
};

}  // namespace tandem::broker
