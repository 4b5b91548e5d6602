#include "broker/destination_listing.h"

#include <algorithm>
#include <limits>

#include "broker/console_api.h"
#include "broker/stomp/utf8.h"

namespace tandem::broker {

std::uint64_t destination_figures::figure(std::string_view sort) const {
  if (sort == "pending") return pending;
  if (sort == "consumers") return consumers;
  if (sort == "enqueued") return enqueued;
  if (sort == "dequeued") return dequeued;
  if (sort == "dead_lettered") return dead_lettered;
  if (sort == "inflight") return inflight;
  return 0;
}

std::optional<destination_query> parse_destination_query(std::string_view query) {
  auto q = console_api::parse_query(query);
  if (!q.count("limit")) return std::nullopt;
  destination_query out;
  out.limit = std::clamp<std::size_t>(console_api::number_or(q, "limit", 50), 1, 1000);
  out.offset = console_api::number_or(q, "offset", 0);
  out.filter = console_api::lower(q.count("filter") ? q["filter"] : "");
  out.sort = q.count("sort") ? q["sort"] : "name";
  if (std::find(std::begin(destination_sorts), std::end(destination_sorts), out.sort) == std::end(destination_sorts))
    out.sort = "name";
  return out;
}

bool destination_name_holds(std::string_view name, std::string_view lower_filter) {
  if (lower_filter.empty()) return true;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  auto holds = [&](std::string_view text) {
    return std::search(text.begin(), text.end(), lower_filter.begin(), lower_filter.end(),
                       [&](char a, char b) { return lower(a) == b; }) != text.end();
  };
  // Names journaled before issue 17 may not be UTF-8: the filter sees what the row shows.
  return stomp::valid_utf8(name) ? holds(name) : holds(stomp::printable_utf8(name));
}

destination_page::destination_page(const destination_query& q)
    : sort_(q.sort), by_name_(q.sort == "name"), offset_(q.offset), limit_(q.limit) {
  keep_ = offset_ > std::numeric_limits<std::size_t>::max() - limit_ ? std::numeric_limits<std::size_t>::max()
                                                                      : offset_ + limit_;
}

bool destination_page::before(const entry& a, const entry& b) const {
  if (by_name_) {
    if (a.key != b.key) return a.key < b.key;
  } else if (a.figure != b.figure) {
    return a.figure > b.figure;
  }
  return a.seq < b.seq;
}

void destination_page::add(destination_figures d) {
  entry e;
  e.seq = matched_++;
  if (by_name_) e.key = stomp::valid_utf8(d.name) ? d.name : stomp::printable_utf8(d.name);
  else e.figure = d.figure(sort_);
  auto cmp = [this](const entry& a, const entry& b) { return before(a, b); };
  if (heap_.size() == keep_) {
    if (!before(e, heap_.front())) return;  // after every entry kept: not on the page
    std::pop_heap(heap_.begin(), heap_.end(), cmp);
    heap_.pop_back();
  }
  e.d = std::move(d);
  heap_.push_back(std::move(e));
  std::push_heap(heap_.begin(), heap_.end(), cmp);
}

std::vector<destination_figures> destination_page::take() {
  std::sort(heap_.begin(), heap_.end(), [this](const entry& a, const entry& b) { return before(a, b); });
  std::vector<destination_figures> out;
  for (std::size_t i = offset_; i < heap_.size(); ++i) out.push_back(std::move(heap_[i].d));
  heap_.clear();
  return out;
}

}  // namespace tandem::broker
