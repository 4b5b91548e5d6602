// STOMP over WebSocket (issue 18): the transport of connections accepted on ws_listen and
// wss_listen (broker/transport.h is the seam; broker/ws_policy.h the wire and the checks).
// Boost.Beast does the RFC 6455 framing, masking, ping/pong and the close handshake.
//
// async_start reads the HTTP upgrade request (headers up to 8 KiB), refuses what
// ws_policy::decide refuses with an HTTP status and a one-line reason, answers a plain
// HTTP request with 426, and otherwise accepts with the chosen STOMP subprotocol. It runs
// under the connection's CONNECT deadline, so a client that never finishes the upgrade is
// closed like one that never sends CONNECT. For wss the TLS handshake comes first, with
// the context of tls_listen (tls_cert, tls_key, tls_ca, tls_verify_client).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "broker/transport.h"

namespace tandem::broker {

struct ws_options {
  std::vector<std::string> allowed_origins;  // ws_allowed_origins (ws_policy.h)
  // Largest WebSocket message accepted (Beast closes the connection with 1009 beyond it).
  // The STOMP parser's max_frame_bytes still bounds a frame split across messages.
  std::size_t max_message_bytes = 100u << 20;
};

std::unique_ptr<transport> make_ws_transport(asio::ip::tcp::socket& socket, boost::asio::ssl::context* tls,
                                             const ws_options& options);

}  // namespace tandem::broker
