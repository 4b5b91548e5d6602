// Advisory replay (issue 16): a monitor that subscribes to an advisory topic learns what
// exists at that moment, as ActiveMQ's AdvisoryBroker tells a new advisory consumer: one
// `added` (or `created`) advisory per live connection, per consumer of the destination and
// per destination, the same JSON the live advisory would carry (advisory.cpp), with the
// counts of now. They go to the new subscription alone (hand_to); other listeners have
// seen them already.
//
// Only a subscription under /topic/ActiveMQ.Advisory. (wildcards there included, e.g.
// ActiveMQ.Advisory.Consumer.>) gets a replay; a subscriber of /topic/> gets none, so a
// catch-all consumer is not flooded with the broker's state. Producers are not replayed:
// STOMP has no producer objects and Tandem counts them only while someone listens
// (docs/compatibility.md, "Advisory topics").
#include "broker/engine/destinations.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

namespace {

constexpr std::string_view advisory_prefix = "/topic/ActiveMQ.Advisory.";

}  // namespace

void engine::impl::replay_advisories(subscription& sub) {
  if (!sub.topic.starts_with(advisory_prefix)) return;
  for (const auto& [id, s] : sessions_)
    if (s->state == session_state::connected) advise_connection(*s, true, &sub);
  // Consumers, each destination's in subscription order; a wildcard or composite consumer
  // has no advisory topic of its own (advise() skips it), as live.
  auto consumers_of = [&](const std::vector<subscription*>& subs) {
    for (const auto* c : subs)
      if (c != &sub) advise_consumer(*c, true, &sub);
  };
  for (const auto& [name, q] : queues_) consumers_of(q->consumers);
  for (const auto& [name, t] : topics_) {
    consumers_of(t.subscribers);
    for (const auto& [key, q] : t.durable) consumers_of(q->consumers);
  }
  for (const auto& [name, q] : queues_) advise_destination(name, true, &sub);
  for (const auto& [name, t] : topics_) advise_destination(name, true, &sub);
}

}  // namespace tandem::broker
