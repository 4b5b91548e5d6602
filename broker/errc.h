// Broker error codes: the expected failures of the broker, as std::error_code values in the
// "broker" category, with one value-or-error type, `broker::result<T>`, as journal/errc.h and
// lockmgr/errc.h do for their modules.
//
// The engine refuses a client's frame with an ERROR frame whose `message` header is the
// code's message() (a short fixed text a client may match on: keep each one stable) and whose
// body is the failure's detail (what exactly, with the values). So the detail rides beside the
// code, never inside it (the libraries' rule: journal::damage beside journal::errc).
//
// Header-only so every broker target (engine, server, config) can use it without a link
// dependency: the category is a function-local static of an inline function, one per process.
#pragma once

#include <string>
#include <system_error>

#include <boost/outcome/std_result.hpp>

namespace tandem::broker {

enum class errc {
  // ---- the session ----
  unknown_command = 1,      // a command that is not a STOMP client frame
  not_connected,            // a frame before CONNECT
  already_connected,        // a second CONNECT
  unsupported_version,      // no common protocol version (the ERROR lists ours, STOMP 1.2)
  bad_heart_beat,           // heart-beat is not "<ms>,<ms>"
  authentication_failed,    // unknown login, wrong passcode, or anonymous where not allowed
  client_id_in_use,         // another live connection holds this client-id
  receipt_not_encodable,    // a receipt id this protocol version cannot write back
  error_not_encodable,      // an ERROR's own headers could not be encoded: the fallback ERROR
  // ---- destinations ----
  missing_destination,
  unsupported_destination,  // neither /queue/NAME nor /topic/NAME
  no_such_destination,      // a temporary destination whose connection is gone
  not_owner,                // a temporary destination is consumed only by its connection
  // ---- SEND ----
  shutting_down,            // the broker is stopping and accepts no more messages
  persistence_unavailable,  // persistent:true on a broker without a store
  bad_expires,
  bad_priority,
  bad_producer_headers,     // tandem-producer-id and -seq must come together
  send_timeout,             // a SEND waited send_timeout for space
  message_not_stored,       // the store refused a SEND's message
  disk_full,                // the store's file system is full (disk_space_guard.h)
  bad_schedule,             // AMQ_SCHEDULED_* headers malformed, or a schedule we do not take
  bad_scheduler_request,    // a SEND to ActiveMQ.Scheduler.Management that is not a valid action
  scheduler_request_not_stored,  // the store refused a REMOVE / REMOVEALL's removal
  // ---- flow control: why a SEND waits (the detail goes into the send_timeout ERROR) ----
  memory_full,              // max_memory_bytes
  store_full,               // max_store_bytes
  destination_full,         // max_destination_bytes of a queue or topic subscription
  duplicate_in_flight,      // a resend waits for its original's append (dedup.h)
  // ---- SUBSCRIBE / UNSUBSCRIBE ----
  missing_subscription_id,
  duplicate_subscription_id,
  too_many_subscriptions,
  bad_ack_mode,
  bad_prefetch,
  invalid_selector,  // SUBSCRIBE's selector does not parse (the detail points at the error)
  durable_needs_client_id,
  durable_subscription_in_use,
  subscription_not_stored,  // the store refused a durable subscription
  unknown_subscription,
  unknown_durable_subscription,
  unsubscribe_not_stored,   // the store refused a durable subscription's removal
  // ---- ACK / NACK ----
  unknown_ack,              // names no unacknowledged message of this connection
  unknown_nack,
  ack_not_stored,           // the store refused an ACK's removes
  // ---- transactions ----
  missing_transaction,      // BEGIN without a transaction header
  unknown_transaction,      // names no transaction begun on this connection
  transaction_already_begun,
  too_many_transactions,
  commit_not_stored,        // the store refused a COMMIT's batch
  // ---- authorization (broker/engine/authorization.h), appended: values above stay ----
  not_authorized,           // the login's groups lack a permission on the destination
  durable_subscription_owned,  // the durable subscription belongs to another login
  too_many_destinations,    // max_destinations reached: no new destination
};

namespace detail {

class broker_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "broker"; }
  // The ERROR frame's `message` header: clients match on these, keep them stable.
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::unknown_command: return "unknown command";
      case errc::not_connected: return "not connected";
      case errc::already_connected: return "already connected";
      case errc::unsupported_version: return "unsupported protocol version";
      case errc::bad_heart_beat: return "bad heart-beat header";
      case errc::authentication_failed: return "authentication failed";
      case errc::client_id_in_use: return "client-id already connected";
      case errc::receipt_not_encodable: return "receipt id cannot be encoded";
      case errc::error_not_encodable: return "request refused";
      case errc::missing_destination: return "missing destination";
      case errc::unsupported_destination: return "unsupported destination";
      case errc::no_such_destination: return "no such destination";
      case errc::not_owner: return "not the owner";
      case errc::not_authorized: return "not authorized";
      case errc::durable_subscription_owned: return "durable subscription owned by another login";
      case errc::too_many_destinations: return "too many destinations";
      case errc::shutting_down: return "broker shutting down";
      case errc::persistence_unavailable: return "persistence unavailable";
      case errc::bad_expires: return "bad expires header";
      case errc::bad_priority: return "bad priority header";
      case errc::bad_producer_headers: return "bad producer headers";
      case errc::send_timeout: return "send timeout";
      case errc::message_not_stored: return "message not stored";
      case errc::memory_full: return "broker memory full";
      case errc::store_full: return "store full";
      case errc::destination_full: return "destination full";
      case errc::duplicate_in_flight: return "original still in flight";
      case errc::disk_full: return "disk full";
      case errc::bad_schedule: return "bad schedule";
      case errc::bad_scheduler_request: return "bad scheduler request";
      case errc::scheduler_request_not_stored: return "scheduler request not stored";
      case errc::missing_subscription_id: return "missing id";
      case errc::duplicate_subscription_id: return "duplicate subscription id";
      case errc::too_many_subscriptions: return "too many subscriptions";
      case errc::bad_ack_mode: return "bad ack mode";
      case errc::bad_prefetch: return "bad activemq.prefetchSize";
      case errc::invalid_selector: return "invalid selector";
      case errc::durable_needs_client_id: return "durable subscription needs client-id";
      case errc::durable_subscription_in_use: return "durable subscription in use";
      case errc::subscription_not_stored: return "subscription not stored";
      case errc::unknown_subscription: return "unknown subscription";
      case errc::unknown_durable_subscription: return "unknown durable subscription";
      case errc::unsubscribe_not_stored: return "unsubscribe not stored";
      case errc::unknown_ack: return "unknown ACK";
      case errc::unknown_nack: return "unknown NACK";
      case errc::ack_not_stored: return "ack not stored";
      case errc::missing_transaction: return "missing transaction";
      case errc::unknown_transaction: return "unknown transaction";
      case errc::transaction_already_begun: return "transaction already begun";
      case errc::too_many_transactions: return "too many transactions";
      case errc::commit_not_stored: return "transaction not stored";
    }
    return "broker error " + std::to_string(value);
  }
};

}  // namespace detail

inline const std::error_category& broker_category() noexcept {
  static const detail::broker_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), broker_category()}; }

// An expected failure: `code` says what failed (an errc, or a journal / OS code passed on),
// `detail` says what exactly, with the values, as a sentence for the client or the operator.
struct failure {
  std::error_code code;
  std::string detail;
};

// Value or failure. Observing the wrong side is a bug and terminates (no exceptions in the
// engine): test the result before value() / error().
template <class T>
using result = boost::outcome_v2::std_result<T, failure, boost::outcome_v2::policy::terminate>;

}  // namespace tandem::broker

template <>
struct std::is_error_code_enum<tandem::broker::errc> : std::true_type {};
