// Client error codes: expected failures of the STOMP client library, as std::error_code values
// in the "tandem.client" category. Socket errors keep Asio's / the generic category.
//
// Detail that does not fit a code (the text of a broker's ERROR frame, the offending URL part)
// rides beside it: `client::broker_error` in the handlers, the message of a parse failure.
#pragma once

#include <system_error>

namespace tandem::client {

enum class errc {
  // A broker URL does not parse (unknown scheme, missing port, bad option). Fix the --url.
  bad_url = 1,
  // An option in `failover:(...)?key=value` that the client does not know.
  unknown_url_option,
  // Every broker in the list refused or timed out, and the reconnect budget is spent.
  no_broker_reachable,
  // The broker answered CONNECT with ERROR (bad credentials, unsupported version).
  connect_refused,
  // The broker sent bytes the STOMP parser rejects; the connection is dropped.
  protocol_error,
  // The broker sent an ERROR frame; it usually closes the connection right after.
  broker_error,
  // The connection was lost before the RECEIPT arrived: the frame may or may not have been
  // applied (resend it; a broker with duplicate detection drops the copy).
  receipt_lost,
  // No bytes from the broker within the negotiated heart-beat period (plus grace).
  heartbeat_timeout,
  // The operation needs a live connection (a transaction, an ACK of a message delivered on
  // an earlier connection) and the connection is down or was re-established since.
  not_connected,
  // close() was called, or the connection failed for good; nothing more is sent.
  closed,
  // CONNECT got no CONNECTED (or DISCONNECT no RECEIPT) within the timeout.
  timed_out,
  // drop() cut the connection on purpose (a drill simulating a network failure).
  connection_dropped,
};

const std::error_category& client_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

}  // namespace tandem::client

template <>
struct std::is_error_code_enum<tandem::client::errc> : std::true_type {};
