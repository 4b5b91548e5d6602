// Message selectors in the engine: the selector library's message_view over the engine's
// message, and the one test "does this subscription want this message". The selector is
// parsed once per SUBSCRIBE (subscribe.cpp) and kept with the subscription; a durable
// subscription keeps it with its queue and in its journal record, so it survives a restart.
//
// Where each kind of subscription filters:
//   /queue/      at dispatch (dispatch.cpp): a message goes to the next ready consumer whose
//                selector matches; a message no consumer matches stays on the queue, and
//                the messages each consumer matches keep their order
//   /topic/      at fan-out (send.cpp apply_send / plan_send): a subscriber whose selector
//                does not match never gets a copy; a durable subscription is not journaled
//                as a target of a message it does not match
// Evaluation allocates nothing: the view borrows the message's headers (broker/selector).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "broker/engine/state.h"
#include "broker/selector/selector.h"

namespace tandem::broker::detail {

// Who a queue message is matched for, for JMSXGroupFirstForConsumer: true when the message
// has a JMSXGroupID and the group's owner on `q` is not `consumer` (none, or another one),
// as claim_group (consumers.cpp) decides when it is delivered. Worked out only when a
// selector names the field.
struct group_probe {
  const queue* q = nullptr;
  const subscription* consumer = nullptr;

  bool first_for_consumer(const message& m) const noexcept {
    if (!q || q->kind != queue_kind::queue) return false;
    for (const auto& [k, v] : m.headers)
      if (k == "JMSXGroupID") {
        return q->groups.owner(v) != consumer;
      }
    return false;
  }
};

class message_filter_view final : public selector::message_view {
 public:
  // `destination`: where the message was sent (the queue or topic name; for a dead letter
  // the original destination, as ActiveMQ's JMSDestination).
  message_filter_view(const message& m, std::string_view destination, std::uint32_t redeliveries,
                      group_probe group = {}) noexcept
      : m_(m), destination_(destination), redeliveries_(redeliveries), group_(group) {}

  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [k, v] : m_.headers)
      if (k == name) return std::string_view(v);
    return std::nullopt;
  }
  std::string_view destination() const noexcept override { return destination_; }
  std::string_view message_id() const noexcept override { return m_.message_id; }
  std::uint32_t redelivery_count() const noexcept override { return redeliveries_; }
  bool group_first_for_consumer() const noexcept override { return group_.first_for_consumer(m_); }

 private:
  const message& m_;
  std::string_view destination_;
  std::uint32_t redeliveries_;
  group_probe group_;
};

// True when `filter` is empty or the selector is TRUE for the message. `group`: the queue and
// consumer a queue message is matched for (JMSXGroupFirstForConsumer; FALSE without it).
inline bool selects(const std::optional<selector::expression>& filter, const message& m, std::string_view destination,
                    std::uint32_t redeliveries = 0, group_probe group = {}) noexcept {
  if (!filter) return true;
  // JMSDestination: where it was sent (a dead letter's original destination, a wildcard
  // subscriber's topic), else the queue or topic that holds it.
  for (const auto& [k, v] : m.headers) {
    if (k == "original-destination") {
      destination = v;
      break;
    }
    if (k == "destination") destination = v;
  }
  return filter->matches(message_filter_view(m, destination, redeliveries, group));
}

}  // namespace tandem::broker::detail
