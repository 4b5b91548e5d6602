// STOMP over WebSocket (issue 18): what the broker decides about an upgrade request, apart
// from any socket (ws_transport.cpp applies it; tests/unit/broker/ws_policy_test.cpp checks
// it). The wire is RFC 6455 with the STOMP subprotocols every browser client offers:
//
//   GET / HTTP/1.1                          any target: the listener serves STOMP only
//   Upgrade: websocket
//   Sec-WebSocket-Protocol: v12.stomp, v11.stomp, v10.stomp
//   Origin: https://app.example             sent by browsers, absent from other clients
//
//   HTTP/1.1 101 Switching Protocols
//   Sec-WebSocket-Protocol: v12.stomp       the highest STOMP version the client offered
//
// After the upgrade every WebSocket message carries STOMP bytes: one frame per message is
// what @stomp/stompjs sends and what the broker writes (text when the frame is valid UTF-8,
// binary otherwise: a browser fails a text message that is not UTF-8), but the bytes of
// all messages go through the one incremental STOMP parser, so a frame split across
// messages, or several frames in one message, are read the same as over TCP. A heart-beat
// is a message holding one EOL, both ways. The subprotocol names only the STOMP versions
// the client may ask for; CONNECT's accept-version still decides, as over TCP.
//
// Origin is the defence against cross-site WebSocket hijacking: a page on any site can
// open a WebSocket to the broker, and the browser sends it with that site's Origin (and no
// CORS check applies to WebSockets). A request with an Origin is accepted only when the
// Origin is in ws_allowed_origins ("*" accepts every one); a request without one comes from
// a program, not a browser page, and is accepted (its CONNECT still needs a login).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tandem::broker::ws_policy {

inline constexpr std::string_view stomp_subprotocols[] = {"v12.stomp", "v11.stomp", "v10.stomp"};

struct decision {
  bool accept = false;
  std::string subprotocol;  // to echo in Sec-WebSocket-Protocol; empty: none was offered
  unsigned status = 0;      // the HTTP status of a refusal (403, 400)
  std::string reason;       // why refused, for the response body and the log
};

// `offered`: the Sec-WebSocket-Protocol header values joined by ","; `origin`: the Origin
// header ("" when absent); `allowed_origins`: ws_allowed_origins. A client that offers
// subprotocols but none of the STOMP ones is refused (it would fail after the upgrade).
decision decide(std::string_view offered, std::string_view origin, const std::vector<std::string>& allowed_origins);

// True when `origin` ("scheme://host[:port]") is one of `allowed` (case-insensitive, a
// trailing "/" ignored) or `allowed` holds "*". "null" (a sandboxed page) only matches "*".
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed);

// The STOMP subprotocol to answer for the offered list, or "" when the client offered none
// of v10/v11/v12.stomp.
std::string choose_subprotocol(std::string_view offered);

}  // namespace tandem::broker::ws_policy
