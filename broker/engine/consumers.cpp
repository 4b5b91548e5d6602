// Who among a queue's consumers gets a message, beyond round robin (issue 16), with
// ActiveMQ 5.17's rules:
//
// Exclusive consumers (SUBSCRIBE activemq.exclusive:true). The first exclusive consumer of
// a queue gets every message; a later exclusive one with a higher activemq.priority takes
// over from it. While the queue has an exclusive consumer no other consumer gets anything
// (ActiveMQ's QueueDispatchSelector). When it goes (UNSUBSCRIBE, disconnect, a broker
// failover that ends every connection) the next exclusive consumer (highest priority,
// then the one that subscribed first) takes over, and the unacked messages of the one that
// went come back to their original places (redelivery.cpp, return_delivery), so it gets
// them first, in order.
//
// Consumer priority (activemq.priority, 0-127, default 0). A message goes to the highest
// priority consumer that has prefetch room; round robin among consumers of equal priority.
// Lower priorities get messages only while every higher one is full.
//
// Message groups (JMSXGroupID). The first message of a group that is delivered pins the
// group to the consumer it went to (that MESSAGE carries JMSXGroupFirstForConsumer:true);
// later messages of the group go to that consumer only, and wait while it is full without
// holding back other groups (dispatch_selected walks past them). JMSXGroupSeq:-1 closes the
// group once that message is delivered; JMSXGroupSeq:1 starts it anew on whichever consumer
// is next. When the owner goes its groups are freed before its unacked messages come back,
// so the next owner gets those first, in their original order, then the rest of the group.
// Owners live in memory only (queue::groups), as in ActiveMQ: after a restart or failover
// the groups are assigned again as messages are dispatched, which keeps per-group order
// because every unacked message comes back in its original place.
//
// Cost: a queue whose consumers are all non-exclusive priority 0 (queue::ranked false) and
// that has no group owner takes the same path as before (pick_consumer's round robin,
// dispatch's head-of-queue loop); deliver() reads the headers of each message it sends for a
// JMSXGroupID, a short scan over a handful of headers.
#include <algorithm>
#include <charconv>

#include "broker/engine/filter.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

namespace {

const std::string* find_header(const message& m, std::string_view name) {
  for (const auto& [k, v] : m.headers)
    if (k == name) return &v;
  return nullptr;
}

// JMSXGroupSeq as a number; 0 when absent or not a number (ActiveMQ's default).
int group_seq(const message& m) {
  const auto* v = find_header(m, "JMSXGroupSeq");
  int n = 0;
  if (v) std::from_chars(v->data(), v->data() + v->size(), n);
  return n;
}

bool is_ranked(const subscription& sub) { return sub.exclusive || sub.priority != 0; }

// The exclusive consumer of `q` after a change: the highest priority, then the first to
// subscribe (q.consumers is in subscription order); nullptr when there is none.
subscription* next_exclusive(const queue& q) {
  subscription* best = nullptr;
  for (auto* c : q.consumers)
    if (c->exclusive && (!best || c->priority > best->priority)) best = c;
  return best;
}

}  // namespace

void engine::impl::consumer_joined(queue& q, subscription& sub) {
  if (!is_ranked(sub)) return;
  q.ranked = true;
  if (sub.exclusive && (!q.exclusive_owner || sub.priority > q.exclusive_owner->priority)) q.exclusive_owner = &sub;
}

void engine::impl::consumer_left(queue& q, subscription& sub) {
  if (!q.groups.empty()) q.groups.release(&sub);
  if (!q.ranked) return;
  if (q.exclusive_owner == &sub) q.exclusive_owner = next_exclusive(q);
  q.ranked = std::any_of(q.consumers.begin(), q.consumers.end(), [](const subscription* c) { return is_ranked(*c); });
}

subscription* engine::impl::pick_ranked(queue& q, const message* m, std::uint32_t redeliveries) {
  auto fits = [&](subscription* c) {
    return consumer_ready(*c) && (!m || selects(c->filter, *m, q.name, redeliveries, {&q, c}));
  };
  if (q.exclusive_owner) return fits(q.exclusive_owner) ? q.exclusive_owner : nullptr;
  subscription* best = nullptr;
  const auto n = q.consumers.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto* c = q.consumers[(q.next_consumer + i) % n];
    if ((!best || c->priority > best->priority) && fits(c)) best = c;
  }
  return best;
}

subscription* engine::impl::pick_for_group(queue& q, const message& m, std::uint32_t redeliveries) {
  const auto* group = q.kind == queue_kind::queue ? find_header(m, "JMSXGroupID") : nullptr;
  if (group && group_seq(m) != 1) {
    if (auto* owner = q.groups.owner(*group)) {
      if (q.exclusive_owner && q.exclusive_owner != owner) return nullptr;
      return consumer_ready(*owner) && selects(owner->filter, m, q.name, redeliveries, {&q, owner}) ? owner : nullptr;
    }
  }
  return pick_consumer(q, &m, redeliveries);
}

bool engine::impl::claim_group(queue& q, const message& m, subscription& sub) {
  if (q.kind != queue_kind::queue) return false;
  const auto* group = find_header(m, "JMSXGroupID");
  if (!group) return false;
  const int seq = group_seq(m);
  const bool first = q.groups.owner(*group) != &sub;
  if (seq >= 0) {
    const auto* policy = policy_of(q);
    q.groups.pin(*group, &sub, policy ? policy->message_group_map_cache_size : destination_policy{}.message_group_map_cache_size);
  } else if (!first) {
    q.groups.erase(*group);
  }
  return first;
}

}  // namespace tandem::broker
