// The STOMP listeners: the plain acceptor (cfg.listen) and, when configured, the TLS one
// (cfg.tls_listen, broker/tls.h) and the WebSocket ones (cfg.ws_listen, cfg.wss_listen,
// broker/ws_transport.h); the set of live connections of all; and the engine's tick
// timer (Asio's http server example: `server` + `connection_manager` in one small class).
//
// Threads and ownership: the server runs on the executor given to the constructor, the
// engine's (the io thread, context 0). Connections run on the executors of
// `connection_executors`, handed out round robin (threads > 1, docs/threads.md; empty: all on
// the engine's executor, as with threads: 1); the server's set of them is touched only on
// the engine's executor (connection.h: on_stopped runs there). The server owns the
// connections (shared ownership with their coroutines and posted calls); the engine must
// outlive the server's last connection, which is why shutdown is `stop_accepting();
// engine.shutdown(); stop_connections();`, then when_connections_closed before the store
// closes, and the io_contexts stop before the engine dies.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "broker/asio.h"
#include "broker/config.h"
#include "broker/connection.h"
#include "broker/engine.h"
#include "broker/schedule_timer.h"
#include "broker/ws_transport.h"

namespace tandem::broker {

class server {
 public:
  server(asio::any_io_executor executor, engine& eng, const config& cfg,
         std::vector<asio::any_io_executor> connection_executors = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens on cfg.listen; returns the bound endpoint (port 0 picks a free one).
  // Errors (address in use, permission) are returned, not thrown.
  boost::system::error_code open(asio::ip::tcp::endpoint& bound);
  // Binds and listens on cfg.tls_listen with `context` (make_tls_context). Call after open(),
  // before start(). Connections accepted there do the TLS handshake before CONNECT.
  boost::system::error_code open_tls(std::shared_ptr<boost::asio::ssl::context> context, asio::ip::tcp::endpoint& bound);
  // Binds cfg.ws_listen (STOMP over WebSocket) / cfg.wss_listen (over TLS, with `context`).
  // Call after open(), before start().
  // Origins accepted on ws_listen / wss_listen besides ws_allowed_origins: the admin port's
  // own (the console's send panel is a page served by the admin port). Before open_ws.
  void allow_origins(const std::vector<std::string>& origins);
  boost::system::error_code open_ws(asio::ip::tcp::endpoint& bound);
  boost::system::error_code open_wss(std::shared_ptr<boost::asio::ssl::context> context, asio::ip::tcp::endpoint& bound);
  // Starts accepting and the engine tick timer (~100 ms).
  void start();
  // Closes the acceptors (no new clients); live connections continue.
  void stop_accepting();
  // Closes every live connection at once (engine::close_session for each; posted to the
  // connections on other threads, whose close_session then comes back posted).
  void stop_connections(std::string_view reason);
  // Runs `done` (on the engine's executor) once no connection is left, i.e. every
  // close_session has run: at once when none is. Used by a graceful stop before the store
  // closes. One waiter at a time.
  void when_connections_closed(std::function<void()> done);

  std::size_t connection_count() const { return connections_.size(); }
  std::uint64_t accepted_total() const { return accepted_total_; }
  std::uint64_t refused_total() const { return refused_total_; }

 private:
  asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, const connection_options& options);
  asio::awaitable<void> tick_loop();
  asio::awaitable<void> refuse(asio::ip::tcp::socket socket, const connection_options& options);
  asio::any_io_executor next_connection_executor();
  void forget(connection& gone);

  asio::any_io_executor executor_;
  std::vector<asio::any_io_executor> connection_executors_;
  std::size_t next_executor_ = 0;
  std::function<void()> on_all_closed_;
  engine& engine_;
  const config& config_;
  connection_options options_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::acceptor tls_acceptor_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // outlives every TLS connection
  connection_options tls_options_;
  asio::ip::tcp::acceptor ws_acceptor_;
  asio::ip::tcp::acceptor wss_acceptor_;
  ws_options ws_options_;  // outlives every WebSocket connection
  connection_options ws_connection_options_;
  connection_options wss_connection_options_;
  asio::steady_timer tick_timer_;
  schedule_timer schedule_timer_;  // AMQ_SCHEDULED_* firings
  bool stopping_ = false;
  std::unordered_map<connection*, std::shared_ptr<connection>> connections_;
  std::uint64_t accepted_total_ = 0;
  std::uint64_t refused_total_ = 0;
};

}  // namespace tandem::broker
