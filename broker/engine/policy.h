// Destination policies (config key "destination_policies", ActiveMQ's policyEntry list):
// which entry applies to a destination, and what its redelivery settings mean.
//
// Matching: an entry names queues or topics by a pattern, with the wildcards of
// authorization.h ('*' one element, '>' the rest). Of the entries that match a destination
// the most specific applies, as ActiveMQ's PolicyMap chooses: the one with the most literal
// (non-wildcard) elements before its first wildcard, then the longer pattern, then the
// earlier entry. Entries do not merge: an entry without redelivery settings means "NACK dead-letters at once" for
// the destinations it is the best match of.
//
// The engine looks a queue's policy up once and caches it in the queue (state.h), so no
// message pays a string match (the SEND and dispatch paths never call find()).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "broker/engine_config.h"

namespace tandem::broker {

class policy_map {
 public:
  explicit policy_map(std::vector<destination_policy> entries) : entries_(std::move(entries)) {}
  // The entry for `destination` ("/queue/NAME" or "/topic/NAME"; a durable subscription's
  // queue is looked up by its topic); nullptr when none matches. The pointer stays valid
  // for the life of the map.
  const destination_policy* find(std::string_view destination) const;
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<destination_policy> entries_;
};

// The delay before redelivery number `redeliveries_so_far` + 1 of a message, by
// ActiveMQ's rules (RedeliveryPlugin and RedeliveryPolicy.getNextRedeliveryDelay):
//   first redelivery (0 so far): initial_redelivery_delay
//   each later one: with use_exponential_back_off and back_off_multiplier > 1, the previous
//   delay times the multiplier, capped at maximum_redelivery_delay (when not -1; a cap
//   below redelivery_delay gives redelivery_delay); otherwise redelivery_delay.
std::chrono::milliseconds redelivery_delay(const redelivery_settings& s, std::uint32_t redeliveries_so_far);

// Whether a message delivered `redeliveries_so_far` + 1 times and NACKed is redelivered
// (true) or dead-lettered: maximum_redeliveries -1 never gives up.
bool redelivery_allowed(const redelivery_settings& s, std::uint32_t redeliveries_so_far);

}  // namespace tandem::broker
