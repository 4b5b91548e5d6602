#include "broker/destination_listing.h"

#include <algorithm>

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
    : sort_(q.sort), by_name_(q.sort == "name"), page_(q.offset, q.limit, order{q.sort == "name"}) {}

void destination_page::add(destination_figures d) {
  entry e;
  if (by_name_) e.key = stomp::valid_utf8(d.name) ? d.name : stomp::printable_utf8(d.name);
  else e.figure = d.figure(sort_);
  e.d = std::move(d);
  page_.add(std::move(e));
}

std::vector<destination_figures> destination_page::take() {
  std::vector<destination_figures> out;
  for (auto& e : page_.take()) out.push_back(std::move(e.d));
  return out;
}

}  // namespace tandem::broker
