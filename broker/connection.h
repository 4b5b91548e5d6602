// One STOMP client connection: a socket, its transport (broker/transport.h: TCP, TLS or
// WebSocket), a reader coroutine, a writer coroutine and a watchdog coroutine (heart-beats and the CONNECT deadline), in the shape of Asio's
// chat_server example (asio-1-18-0, cpp17/coroutines_ts/chat_server.cpp).
//
//   reader    socket -> stomp::parser -> engine::on_frame. Stops feeding while paused
//             (engine flow control), after close_after_flush, and on a parse error, which
//             it answers with an ERROR frame (`message` header = the parser's reason, body
//             quoting the offending bytes) before closing. Other clients are unaffected.
//             Reports its partial frame to the broker's memory budget (broker/memory_budget.h)
//             and, while the budget is full, stops reading in the middle of a frame (TCP
//             back-pressure) and reads between frames in small chunks only (ACKs go on).
//             Reports its transport's buffers (TLS, WebSocket: transport::buffer_bytes) too.
//   writer    outgoing queue -> socket, gathering every queued frame into one write. Sleeps on
//             a timer that never expires; send() and close_after_flush() cancel it to wake it.
//             Calls engine::on_writable when a backlog that crossed the session's limit drains.
//   watchdog  one timer: closes a client that has not CONNECTed within connect_timeout, sends
//             an EOL when nothing was written for `send_every`, closes a client silent for
//             `expect_every * heartbeat_grace`. While the reader waits (for the memory budget,
//             or paused while the engine holds a SEND for space) it asks the kernel every 500 ms whether the client hung up (peer_hung_up: a FIN
//             behind the unread bytes, an RST, keepalive's verdict on a vanished host, which
//             it hastens while the wait lasts) and then closes at once, as for any hang-up.
//
// Threads and ownership: a connection lives on the broker's executor (the io thread, or the
// one broker strand when threads > 1), like the engine; every method, and every
// session_sink call the engine makes, runs there. The server's connection set and the three
// coroutines hold shared_ptrs; the object dies when the last of them lets go. engine::
// close_session is called exactly once, posted from stop(), and the sink stays valid until
// then (the posted call holds a shared_ptr), which is the engine.h contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/asio.h"
#include "broker/engine.h"
#include "broker/memory_budget.h"
#include "broker/stomp/parser.h"

namespace boost::asio::ssl {
class context;
}

namespace tandem::broker {

class transport;    // broker/transport.h
struct ws_options;  // broker/ws_transport.h

struct connection_options {
  std::chrono::milliseconds connect_timeout{10000};
  // Bounds after CONNECT, whatever the heart-beats (issue 17, finding 3); 0 = off.
  //   idle_timeout   nothing read and nothing written for this long: closed
  //   frame_timeout  a frame begun and not finished for this long (slowloris): closed
  //   write_timeout  one write to the socket not done for this long (the client stopped
  //                  reading): closed, so the engine redelivers its unacked messages
  //   tcp_keepalive  SO_KEEPALIVE idle time; the kernel then probes every 10 s, 6 times, so a
  //                  vanished host is noticed within tcp_keepalive + 60 s
  std::chrono::milliseconds idle_timeout{300000};
  std::chrono::milliseconds frame_timeout{60000};
  std::chrono::milliseconds write_timeout{60000};
  std::chrono::seconds tcp_keepalive{60};
  double heartbeat_grace = 1.5;
  // A reader that waits this long for the memory budget in the middle of a frame gets an
  // ERROR naming max_memory_bytes and is closed (the engine's send_timeout_ms).
  std::chrono::milliseconds send_timeout{30000};
  std::size_t max_session_backlog_bytes = 4u << 20;
  stomp::limits parser_limits{};
  // Set: the connection speaks TLS (broker/tls.h): the reader does the server handshake
  // first, under the CONNECT deadline. The context must outlive the connection.
  boost::asio::ssl::context* tls_context = nullptr;
  // Set: the connection speaks STOMP over WebSocket (broker/ws_transport.h; over TLS too when
  // tls_context is set): the reader does the upgrade first, under the CONNECT deadline.
  const ws_options* ws = nullptr;
};

class connection : public session_sink, public std::enable_shared_from_this<connection> {
 public:
  using executor_type = asio::any_io_executor;
  // Called once when the connection has fully stopped (the server forgets it).
  using on_stopped = std::function<void(connection&)>;

  connection(asio::ip::tcp::socket socket, engine& eng, const connection_options& options,
             on_stopped stopped);
  ~connection() override;

  // Opens the engine session and spawns the coroutines. Call once.
  void start();
  // Closes the socket at once (queued frames are dropped) and ends the session. Idempotent.
  void stop(std::string_view reason);

  session_id id() const { return id_; }
  const std::string& remote() const { return remote_; }
  bool stopped() const { return stopped_; }

  // session_sink
  void send(std::string encoded_frame) override;
  void close_after_flush() override;
  void pause_reading() override;
  void resume_reading() override;
  std::size_t queued_bytes() const override { return queued_bytes_; }
  void set_heartbeat(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every) override;
  void set_version(std::string_view version) override;

 private:
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  asio::awaitable<void> watchdog();
  // The reader, in the middle of a frame, while the memory budget is full: waits until it has
  // room, the connection closes, or the watchdog gives up after send_timeout.
  asio::awaitable<void> wait_for_memory();
  bool waiting_for_memory() const { return memory_wait_since_ != std::chrono::steady_clock::time_point::max(); }
  void refuse_for_memory();
  void loosen_keepalive();  // back to tcp_keepalive_s once nothing waits any more
  // Tells the budget what the transport's own buffers hold now (transport.h buffer_bytes).
  void count_transport_buffers();
  // Answer a parse error: ERROR frame quoting the bad bytes, then close after the flush.
  void reject(const stomp::parse_error& error);
  // Runs a coroutine body; an escaping exception is logged and closes this connection
  // (an exception leaving a `detached` coroutine would otherwise be lost).
  void spawn(const char* name, asio::awaitable<void> (connection::*body)());

  asio::ip::tcp::socket socket_;
  std::unique_ptr<transport> transport_;  // every read and write goes through it
  engine& engine_;
  connection_options options_;
  on_stopped on_stopped_;
  std::string remote_;
  session_id id_ = 0;
  bool session_open_ = false;

  stomp::parser parser_;
  memory_budget& budget_;          // the engine's; it outlives the connection
  std::uint64_t budget_read_ = 0;    // partial-frame bytes reported to budget_
  std::uint64_t budget_buffer_ = 0;  // read-buffer bytes reported to budget_
  std::uint64_t budget_transport_ = 0;  // transport-buffer bytes (TLS, WebSocket) reported to budget_
  memory_budget::waiter_id memory_waiter_ = 0;  // 0: not registered
  std::chrono::steady_clock::time_point memory_wait_since_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point paused_since_ = std::chrono::steady_clock::time_point::max();
  bool keepalive_tightened_ = false;  // probing a waiting client sooner (connection.cpp says why)
  bool connected_ = false;   // the engine accepted CONNECT (it called set_version)
  bool paused_ = false;      // engine flow control
  bool closing_ = false;     // close_after_flush: no more reading, write what is queued
  bool stopped_ = false;
  std::string stop_reason_;

  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;   // queued + being written
  bool above_limit_ = false;       // backlog crossed max_session_backlog_bytes since on_writable

  asio::steady_timer write_signal_;   // never expires; cancelled to wake the writer
  asio::steady_timer resume_signal_;  // never expires; cancelled to wake a paused reader
  asio::steady_timer watchdog_timer_;

  std::string past_deadline(std::chrono::steady_clock::time_point now, std::chrono::steady_clock::time_point& next) const;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_read_;
  std::chrono::steady_clock::time_point last_write_;
  // Set while a frame is begun and not finished / a socket write is in progress; max = none.
  std::chrono::steady_clock::time_point frame_started_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point write_started_ = std::chrono::steady_clock::time_point::max();
  std::chrono::milliseconds hb_send_{0};
  std::chrono::milliseconds hb_expect_{0};

  std::uint64_t frames_in_ = 0;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
};

}  // namespace tandem::broker
