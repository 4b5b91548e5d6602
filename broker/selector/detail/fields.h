// Identifier resolution: what a name in a selector reads from a message. The table with the
// reasons is in broker/selector/message_view.h; this is its implementation.
#pragma once

#include <cstdint>
#include <string_view>

#include "broker/selector/detail/scratch.h"
#include "broker/selector/detail/value.h"
#include "broker/selector/message_view.h"

namespace tandem::selector::detail {

enum class field : std::uint8_t {
  header,        // a plain property: header(name) as a string, NULL when absent
  consumed,      // a STOMP header ActiveMQ turns into a JMS field: never a property, NULL
  always_null,   // a JMS field Tandem has no value for (see the table)
  group_first,  // JMSXGroupFirstForConsumer: message_view::group_first_for_consumer()
  jms_destination,
  jms_reply_to,
  jms_type,
  jms_correlation_id,
  jms_priority,
  jms_timestamp,
  jms_expiration,
  jms_delivery_mode,
  jms_message_id,
  jms_redelivered,
  jms_delivery_count,
  jms_group_id,
  jms_group_seq,
};

field resolve_field(std::string_view name) noexcept;

// The value of a property node; name is the identifier (used for field::header).
value read_field(field f, std::string_view name, const message_view& message, scratch& space) noexcept;

}  // namespace tandem::selector::detail
