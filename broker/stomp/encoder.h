// Writing frames (frame.h is the format). Appends to a caller-owned std::string so a
// connection can batch frames into one buffer and reuse its capacity.
//
// content-length policy: written (last, after the frame's own headers) whenever the body is
// not empty, computed from the body; any content-length header in the frame is skipped, so a
// frame forwarded from a SEND cannot carry a stale one. The 1.2 spec says frames with a body
// SHOULD carry it, and it lets the body hold NULs. An empty body gets no content-length.
//
// Headers are escaped for the version (CONNECT / STOMP / CONNECTED never); a header that
// cannot be written so it reads back the same (escape.h: escape_append) is refused.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "broker/stomp/frame.h"

namespace tandem::stomp {

// Appends `f` encoded for `v`. On error appends nothing and returns errc::bad_command (not a
// STOMP command) or errc::unencodable_header (empty name, or see escape_append).
std::error_code encode(const frame& f, version v, std::string& out);

// A MESSAGE delivery without building a `frame`: the broker's hot path (one per delivery).
// The delivery headers come first, then the message's own headers (those of its SEND) minus
// any named destination, message-id, subscription, ack or content-length, then the body.
// Views must stay valid for the call only.
struct message_view {
  std::string_view destination;
  std::string_view message_id;
  std::string_view subscription;
  std::string_view ack;  // empty: no ack header (1.2 puts one on client / client-individual acks)
  std::span<const header> headers;
  std::string_view body;
};

// Same bytes as encode() of the equivalent frame; same errors.
std::error_code encode_message(const message_view& m, version v, std::string& out);

// A RECEIPT without building a `frame` (one per receipted SEND): `receipt-id`, then
// `tandem-duplicate:true` when `duplicate`. Same bytes as encode() of the equivalent frame;
// same errors.
std::error_code encode_receipt(std::string_view receipt_id, bool duplicate, version v, std::string& out);

}  // namespace tandem::stomp
