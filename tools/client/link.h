// client::link: the byte stream under one client::connection incarnation: a TCP socket, and
// for a ws:// broker a WebSocket over it (Beast; subprotocols v12/v11/v10.stomp offered, one
// STOMP frame per message written, as browsers' clients do, a batch of them in one send():
// broker/ws_write_gather.h). The connection parses STOMP
// from whatever read_some returns, so message boundaries do not matter when reading.
//
// Threads and ownership: as connection.h: one executor; held by shared_ptr by the connection
// and its coroutines. Closing the socket ends every pending operation.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "broker/asio.h"
#include "tools/client/broker_list.h"

namespace tandem::client {

class link {
 public:
  link(asio::any_io_executor executor, bool websocket);
  ~link();

  asio::ip::tcp::socket& socket() { return socket_; }
  bool is_open() const { return socket_.is_open(); }
  void close();

  // After the TCP connect: the WebSocket upgrade (nothing for TCP).
  asio::awaitable<void> async_start(const broker_address& address, boost::system::error_code& ec);
  asio::awaitable<std::size_t> async_read_some(asio::mutable_buffer buffer, boost::system::error_code& ec);
  // `bytes` holds whole frames, `frame_sizes` their lengths in order (each a WebSocket
  // message; ignored for TCP, where it is one write).
  asio::awaitable<std::size_t> async_write(std::string_view bytes, std::span<const std::size_t> frame_sizes,
                                           boost::system::error_code& ec);
  bool websocket() const { return ws_ != nullptr; }

 private:
  struct ws_stream;
  asio::awaitable<void> send_gathered(boost::system::error_code& ec);
  asio::ip::tcp::socket socket_;
  std::unique_ptr<ws_stream> ws_;
};

}  // namespace tandem::client
