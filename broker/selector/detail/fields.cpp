#include "broker/selector/detail/fields.h"

#include <array>
#include <utility>

#include "broker/selector/detail/java.h"

namespace tandem::selector::detail {
namespace {

// PropertyExpression.JMS_PROPERTY_EXPRESSIONS (ActiveMQ 5.17): these names never read a
// property, whatever headers the message has. Case-sensitive, like the Java map.
constexpr std::array<std::pair<std::string_view, field>, 19> jms_fields{{
    {"JMSDestination", field::jms_destination},
    {"JMSReplyTo", field::jms_reply_to},
    {"JMSType", field::jms_type},
    {"JMSDeliveryMode", field::jms_delivery_mode},
    {"JMSPriority", field::jms_priority},
    {"JMSMessageID", field::jms_message_id},
    {"JMSTimestamp", field::jms_timestamp},
    {"JMSCorrelationID", field::jms_correlation_id},
    {"JMSExpiration", field::jms_expiration},
    {"JMSRedelivered", field::jms_redelivered},
    {"JMSXDeliveryCount", field::jms_delivery_count},
    {"JMSXGroupID", field::jms_group_id},
    {"JMSXUserID", field::always_null},
    {"JMSXGroupSeq", field::jms_group_seq},
    {"JMSXProducerTXID", field::always_null},
    {"JMSActiveMQBrokerInTime", field::always_null},
    {"JMSActiveMQBrokerOutTime", field::always_null},
    {"JMSActiveMQBrokerPath", field::always_null},
    {"JMSXGroupFirstForConsumer", field::group_first},
}};

// STOMP headers that FrameTranslator / ProtocolConverter remove from a SEND before the rest
// become properties (those a selector identifier can name; correlation-id, reply-to,
// message-id and content-length contain '-' and cannot be named).
constexpr std::array<std::string_view, 10> consumed_headers{
    "destination", "expires", "timestamp", "priority", "type", "persistent",
    "receipt", "redelivered", "subscription", "transaction",
};

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> either(const message_view& m, std::string_view jms_name,
                                       std::string_view stomp_name) {
  if (auto v = m.header(jms_name)) return v;
  return m.header(stomp_name);
}

value string_or_null(std::optional<std::string_view> v) {
  return v ? value::make_string(*v) : value::make_null();
}

constexpr std::array<std::pair<std::string_view, std::string_view>, 6> destination_prefixes{{
    {"/queue/", "queue://"},
    {"/topic/", "topic://"},
    {"/temp-queue/", "temp-queue://"},
    {"/temp-topic/", "temp-topic://"},
    {"/remote-temp-queue/", "temp-queue://"},
    {"/remote-temp-topic/", "temp-topic://"},
}};

// ActiveMQ form of a STOMP destination, in the scratch; NULL when unrecognized and no fallback.
value jms_destination_value(std::string_view stomp, bool fallback_to_queue, scratch& space) {
  for (const auto& [from, to] : destination_prefixes) {
    if (stomp.starts_with(from)) return value::make_string(space.concat(to, stomp.substr(from.size())));
  }
  if (!fallback_to_queue) return value::make_null();
  return value::make_string(space.concat("queue://", stomp));
}

}  // namespace

field resolve_field(std::string_view name) noexcept {
  for (const auto& [jms_name, f] : jms_fields) {
    if (jms_name == name) return f;
  }
  for (const auto header : consumed_headers) {
    if (header == name) return field::consumed;
  }
  return field::header;
}

value read_field(field f, std::string_view name, const message_view& m, scratch& space) noexcept {
  switch (f) {
    case field::header: return string_or_null(m.header(name));
    case field::consumed:
    case field::always_null: return value::make_null();
    case field::group_first: return value::make_bool(m.group_first_for_consumer());
    case field::jms_destination: return jms_destination_value(m.destination(), true, space);
    case field::jms_reply_to: {
      const auto v = m.header("reply-to");
      return v ? jms_destination_value(*v, false, space) : value::make_null();
    }
    case field::jms_type: return string_or_null(either(m, "JMSType", "type"));
    case field::jms_correlation_id: return string_or_null(either(m, "JMSCorrelationID", "correlation-id"));
    case field::jms_priority: {
      const auto v = either(m, "JMSPriority", "priority");
      const auto n = v ? java_parse_int(*v) : std::nullopt;
      return value::make_int(n.value_or(4));
    }
    case field::jms_timestamp: {
      const auto v = either(m, "JMSTimestamp", "timestamp");
      return value::make_long((v ? java_parse_long(*v) : std::nullopt).value_or(0));
    }
    case field::jms_expiration: {
      const auto v = either(m, "JMSExpiration", "expires");
      return value::make_long((v ? java_parse_long(*v) : std::nullopt).value_or(0));
    }
    case field::jms_delivery_mode: {
      bool persistent = false;
      if (const auto mode = m.header("JMSDeliveryMode")) {
        // DeliveryMode.PERSISTENT is 2; ActiveMQ also takes the names, in any case.
        const auto n = java_parse_int(*mode);
        persistent = n ? *n == 2 : equals_ignoring_ascii_case(*mode, "PERSISTENT");
      } else {
        persistent = m.header("persistent") == std::optional<std::string_view>("true");
      }
      return value::make_string(persistent ? "PERSISTENT" : "NON_PERSISTENT");
    }
    case field::jms_message_id: return value::make_string(m.message_id());
    case field::jms_redelivered: return value::make_bool(m.redelivery_count() > 0);
    case field::jms_delivery_count:
      return value::make_int(static_cast<std::int32_t>(m.redelivery_count() + 1));
    case field::jms_group_id: return string_or_null(m.header("JMSXGroupID"));
    case field::jms_group_seq: {
      const auto v = m.header("JMSXGroupSeq");
      return value::make_int((v ? java_parse_int(*v) : std::nullopt).value_or(0));
    }
  }
  return value::make_null();
}

}  // namespace tandem::selector::detail

namespace tandem::selector {

std::string to_jms_destination(std::string_view stomp_destination) {
  detail::scratch space;
  return std::string(detail::jms_destination_value(stomp_destination, true, space).s);
}

}  // namespace tandem::selector
