// selector::message_view: how a selector reads a message, without copying it.
//
// The engine implements this interface over its own message type (a thin adapter on the
// stack, made per evaluation or kept with the message); the selector only ever borrows the
// string_views it returns, for the duration of one expression::matches() call.
//
// STOMP headers are strings. ActiveMQ's STOMP transport turns a SEND into a JMS message
// (FrameTranslator.Helper.copyStandardHeadersFromFrameToMessage and
// ActiveMQMessage.setObjectProperty, 5.17): some headers become JMS header fields, the rest
// become String properties. A selector names either a JMS field (the names below, case
// sensitive) or a property (any other identifier = the header of that name, as a string).
// The table is the whole mapping; identifiers resolve at parse time (detail/fields.cpp).
//
//  selector name              value (Java type in ActiveMQ)  taken from
//  -------------------------  -----------------------------  --------------------------------------
//  JMSDestination             string                         destination(), ActiveMQ form:
//                                                            /queue/a -> 'queue://a', /topic/a ->
//                                                            'topic://a' (to_jms_destination below)
//  JMSReplyTo                 string or NULL                 header reply-to, same conversion; NULL
//                                                            when absent or of no form that
//                                                            to_jms_destination recognizes
//  JMSType                    string or NULL                 header JMSType, else header type
//  JMSCorrelationID           string or NULL                 header JMSCorrelationID, else correlation-id
//  JMSPriority                int                            header JMSPriority, else priority;
//                                                            absent or not an int: 4 (JMS default)
//  JMSTimestamp               long                           header JMSTimestamp, else timestamp (the
//                                                            broker stamps it at receipt); absent: 0
//  JMSExpiration              long                           header JMSExpiration, else expires; absent: 0
//  JMSDeliveryMode            'PERSISTENT'|'NON_PERSISTENT'  header JMSDeliveryMode (2 or PERSISTENT:
//                                                            persistent; 1 or NON_PERSISTENT: not),
//                                                            else persistent == "true" exactly
//  JMSMessageID               string                         message_id() (the MESSAGE frame's message-id)
//  JMSRedelivered             boolean                        redelivery_count() > 0
//  JMSXDeliveryCount          int                            redelivery_count() + 1
//  JMSXGroupID                string or NULL                 header JMSXGroupID
//  JMSXGroupSeq               int                            header JMSXGroupSeq; absent or bad: 0
//  JMSXUserID                 NULL                           ActiveMQ strips it from SEND and sets it
//                                                            only with populateJMSXUserID (off)
//  JMSXProducerTXID           NULL                           (ActiveMQ: the SEND's transaction id)
//  JMSActiveMQBrokerInTime    NULL                           (ActiveMQ: arrival time, long)
//  JMSActiveMQBrokerOutTime   NULL                           (ActiveMQ: dispatch time, long)
//  JMSActiveMQBrokerPath      NULL                           (ActiveMQ: the string "null" on one broker)
//  JMSXGroupFirstForConsumer  boolean                        group_first_for_consumer(): TRUE when the
//                                                            consumer being matched would get the
//                                                            message as the first of its group (the
//                                                            MESSAGE then carries the header)
//  destination expires timestamp priority type persistent receipt redelivered subscription
//  transaction                NULL: ActiveMQ consumes these headers (the JMS fields above carry
//                             their meaning) and never makes them properties, so `priority > 5`
//                             matches nothing there; use JMSPriority.
//  any other identifier       string or NULL                 header(name)
//
// "JMSType, else type": a header named after the JMS field wins, as in ActiveMQ, where
// setObjectProperty applies it after the STOMP header. A header value ActiveMQ cannot convert
// (priority:abc) makes ActiveMQ refuse the SEND; here the field falls back to its default, so
// the engine should refuse such SENDs itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::selector {

class message_view {
 public:
  // The first header called `name` (STOMP 1.2: the first occurrence wins), unescaped, or
  // nullopt when the message has none. Called with names known at parse time.
  virtual std::optional<std::string_view> header(std::string_view name) const noexcept = 0;
  // The destination the message was sent to, in STOMP form ("/queue/orders"). For a message
  // moved to a dead-letter queue, its original destination (ActiveMQ's JMSDestination does so).
  virtual std::string_view destination() const noexcept = 0;
  // The message-id header of the MESSAGE frames that deliver it.
  virtual std::string_view message_id() const noexcept = 0;
  // How many times it was delivered before and not acknowledged (0 on first delivery).
  virtual std::uint32_t redelivery_count() const noexcept = 0;
  // JMSXGroupFirstForConsumer for the consumer the selector is matched for: true when the
  // message has a JMSXGroupID and would be that consumer's first of the group (the broker's
  // group owner is another consumer or none). Asked only when a selector names the field.
  virtual bool group_first_for_consumer() const noexcept { return false; }

 protected:
  ~message_view() = default;
};

// A STOMP destination in ActiveMQ's JMS form, as JMSDestination and JMSReplyTo show it:
// "/queue/x" -> "queue://x", "/topic/x" -> "topic://x", "/temp-queue/x" -> "temp-queue://x",
// "/temp-topic/x" -> "temp-topic://x", "/remote-temp-queue/x" -> "temp-queue://x",
// "/remote-temp-topic/x" -> "temp-topic://x"; any other name is a queue: "x" -> "queue://x"
// (ActiveMQ's fallback). Composite names ("/queue/a,/topic/b") are not split.
std::string to_jms_destination(std::string_view stomp_destination);

}  // namespace tandem::selector
