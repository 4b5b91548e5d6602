// The seam between a STOMP connection and its byte stream (issue 18): plain TCP, TLS, or
// WebSocket (over TCP or TLS). broker/connection.h holds one session per client whatever
// the transport: the same parser, engine session, limits, heart-beats and deadlines. Only
// what differs on the wire lives behind this interface:
//
//   async_start   before the first read: nothing (TCP), the TLS handshake, the WebSocket
//                 upgrade (ws_transport.h: Origin and subprotocol checks, TLS first for wss)
//   read_some     the next bytes of the STOMP stream (over WebSocket: the payload of as
//                 many whole messages as were read at once, ws_read_buffer.h; message
//                 boundaries mean nothing to the STOMP parser)
//   write         a batch of encoded frames: one gathered write (TCP, TLS); over WebSocket
//                 one message per frame, the batch gathered into one send (ws_write_gather.h)
//   finish        after close_after_flush wrote everything: tell the client we are done
//                 (TCP half-close, TLS close_notify, WebSocket close frame) and wait until
//                 it hangs up; the connection's linger deadline closes the socket otherwise
//
// Threads and ownership: a transport belongs to one connection and runs on its executor. It
// refers to the connection's socket, which stays the owner of the descriptor: closing the
// socket ends any pending operation of the transport.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "broker/asio.h"

namespace boost::asio::ssl {
class context;
}

namespace tandem::broker {

struct ws_options;  // broker/ws_transport.h

class transport {
 public:
  virtual ~transport() = default;
  // A short name for logs and session info: "tcp", "tls", "ws", "wss".
  virtual const char* name() const = 0;
  // On failure `why` says what went wrong, for the close reason.
  virtual asio::awaitable<void> async_start(boost::system::error_code& ec, std::string& why) = 0;
  virtual asio::awaitable<std::size_t> async_read_some(asio::mutable_buffer buffer, boost::system::error_code& ec) = 0;
  virtual asio::awaitable<void> async_write(std::span<const std::string> frames, boost::system::error_code& ec) = 0;
  virtual asio::awaitable<void> async_finish() = 0;
  // Bytes this transport holds for its connection besides the connection's read buffer, as
  // counted in max_memory_bytes (memory_budget.h, tandem_memory_transport_buffer_bytes):
  //   tcp   0
  //   tls   tls_buffer_bytes (tls.h): Asio's two record buffers and OpenSSL's BIO pair,
  //         exact, 68 KiB; OpenSSL's own record buffers are released while idle
  //   ws    the 64 KiB chunk ws_read_buffer.h reads into (from the first read on) and
  //         Beast's 1536-byte frame buffer; wss: both lines
  virtual std::size_t buffer_bytes() const = 0;
  // True when a read error means the client hung up (EOF, TLS without close_notify,
  // WebSocket close), not a failure.
  virtual bool is_hang_up(const boost::system::error_code& ec) const = 0;
};

// True when the client has hung up (its FIN or RST came in, or the kernel gave up on it after
// keepalive probes or retransmissions), seen without reading: the bytes in front of a FIN stay
// unread. For a connection that does not read for a while (the memory budget is full, so its
// frame waits: connection.h) and would otherwise notice only at its next read. Any transport:
// it asks the kernel about the socket under TLS or WebSocket too (poll with POLLRDHUP, Linux).
bool peer_hung_up(asio::ip::tcp::socket& socket);

// The transport for a socket accepted on a listener: TLS when `tls` is set, WebSocket when
// `ws` is set (both: wss). Both pointers must outlive the transport.
std::unique_ptr<transport> make_transport(asio::ip::tcp::socket& socket, boost::asio::ssl::context* tls,
                                          const ws_options* ws);

}  // namespace tandem::broker
