// GET /api/destinations and the Jolokia reads a slice at a time (issue 17, item 3 of the last
// resource bounds): the parts the engine (which walks its destinations) and admin_http (which
// pages them) share. Pure: no Asio, no engine; tests/unit/broker/console_api_test.cpp.
//
// Before, each request built every destination's JSON row in one turn of the io thread and
// then filtered, sorted and cut it: with 50,000 queues a page of 100 held every client for
// 1.4-2.7 s, a single Jolokia value for 0.3-0.5 s (bench/results/io_thread.md). Now:
//
// - what the filter and the sort need of every destination (its name and a few counters) is
//   read destination_key_slice destinations per turn of the io thread (engine::
//   destination_figures_after), with no JSON; a page keeps only the best offset + limit of
//   them (destination_page over bounded_page.h, a bounded heap), never every one;
// - the JSON rows, the expensive part, are built only for the page, a few per turn;
// - a Jolokia read of one destination looks it up by name (engine::destination_json).
//
// The price is the one /api/connections pays (admin_connections.cpp): a page is not one
// instant's picture. A destination created while the slices are read may be missed, one
// removed before its row is built is left out (the page is short by one), and `total` counts
// the destinations looked at.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/bounded_page.h"

namespace tandem::broker {

// One destination's counters, as its /api/destinations row shows them (a topic's are summed
// over its subscriptions; a topic has no dead_lettered).
struct destination_figures {
  std::string name;  // as stored (the row shows stomp::printable_utf8 of it)
  bool topic = false;
  std::uint64_t pending = 0, inflight = 0, consumers = 0, enqueued = 0, dequeued = 0, dead_lettered = 0, bytes = 0;

  // The counter a page may be sorted by (destination_sorts), 0 for any other name.
  std::uint64_t figure(std::string_view sort) const;
};

// Where the next slice of destinations starts: queues, then topics, each in name order (the
// order of the unpaged list).
struct destination_cursor {
  bool topics = false;
  std::string after;  // the last name looked at in this stage; "" before the first
  bool done = false;  // every destination has been looked at
};

// What one slice found: the destinations that match the filter, in walk order.
struct destination_slice {
  std::vector<destination_figures> matched;
  std::size_t looked_at = 0;  // matched or not
};

// The figures a page may be sorted by, largest first; any other sort is "name".
inline constexpr std::string_view destination_sorts[] = {"pending",  "consumers",     "enqueued",
                                                         "dequeued", "dead_lettered", "inflight"};

// The query of a paged GET /api/destinations (console_api.h): nullopt when it has no `limit`
// (the caller answers the whole list). limit 1..1000 (a bad number: 50), offset default 0,
// filter lower-cased, sort "name" or one of destination_sorts.
struct destination_query {
  std::size_t offset = 0;
  std::size_t limit = 50;
  std::string filter;
  std::string sort = "name";
};
std::optional<destination_query> parse_destination_query(std::string_view query);

// True when the printable form of `name` holds `filter` (already lower case), ASCII case
// ignored; "" matches every name.
bool destination_name_holds(std::string_view name, std::string_view lower_filter);

// The entries of one page, chosen from destinations fed one at a time in walk order: at most
// offset + limit are kept (bounded_page.h), so memory is bounded by the page, not by the
// number of destinations. The order is the one of a stable sort of the whole list: by
// printable name, or by the figure, largest first; ties in walk order.
class destination_page {
 public:
  explicit destination_page(const destination_query& q);
  void add(destination_figures d);
  std::size_t matched() const { return page_.added(); }
  std::size_t kept() const { return page_.kept(); }
  // The entries from offset on (at most limit), in page order. Call once, after every add.
  std::vector<destination_figures> take();

 private:
  struct entry {
    std::string key;           // sort by name: the printable name
    std::uint64_t figure = 0;  // sort by a figure
    destination_figures d;
  };
  struct order {
    bool by_name = true;
    bool operator()(const entry& a, const entry& b) const { return by_name ? a.key < b.key : a.figure > b.figure; }
  };

  std::string sort_;
  bool by_name_ = true;
  bounded_page<entry, order> page_;
};

}  // namespace tandem::broker
