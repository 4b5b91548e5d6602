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
// Threads and ownership: the engine and the server live on the engine's executor (context 0,
// broker/broker_process.h). A connection lives on the executor of its socket, which is the
// same with `threads: 1` and one of N io_contexts round robin with `threads: N`
// (docs/threads.md). Its coroutines and every private member run there.
//   - Same executor ("direct", today's path): the reader calls engine::on_frame, the writer
//     engine::on_writable, stop() engine::close_session, and the engine's session_sink calls
//     run on the same thread. No lock, no post.
//   - Another executor ("across", threads > 1): the reader posts each read's frames as one
//     batch to the engine's executor, in order; the engine's session_sink calls arrive on the
//     engine's thread: send() appends to the outgoing queue under out_mutex_ and posts one
//     wake to the writer when it sleeps; queued_bytes() reads an atomic; the others are posted
//     to this connection's executor. on_writable and close_session are posted to the
//     engine's executor; the members marked "engine side" are touched only there. After a
//     CONNECT the reader parses nothing more until the engine's set_version (or close)
//     arrives, so later frames are parsed in the negotiated version as with one thread. A
//     frame that reaches the engine while it has paused the session waits in held_ (engine
//     side) until resume_reading, so the engine never sees a frame of a paused session.
//     A pause (posted) finds the reader waiting in a read already: that one read completes,
//     so a paused connection takes in at most one more read (4-64 KiB; its frames wait in
//     held_, outside the memory budget) before it stops reading.
// The server's connection set and the three coroutines hold shared_ptrs; so does every posted
// call; the object dies when the last of them lets go. engine::close_session is called
// exactly once, from stop() (direct) or posted from it (across), and the sink stays valid
// until then, which is the engine.h contract; on_stopped runs on the engine's thread after it.
#pragma once

#include <chrono>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
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
  // Called once, on the engine's executor, when the connection has fully stopped (the server
  // forgets it).
  using on_stopped = std::function<void(connection&)>;

  // `socket` belongs to the executor the connection runs on; `engine_executor` is the
  // engine's (the same one with threads: 1).
  connection(asio::ip::tcp::socket socket, engine& eng, asio::any_io_executor engine_executor,
             const connection_options& options, on_stopped stopped);
  ~connection() override;

  // Opens the engine session and spawns the coroutines. Call once, on the engine's executor.
  void start();
  // Closes the socket at once (queued frames are dropped) and ends the session. Idempotent.
  // Call on the connection's executor (executor()).
  void stop(std::string_view reason);

  session_id id() const { return id_; }
  const std::string& remote() const { return remote_; }
  executor_type executor() const { return executor_; }
  // True when the connection runs on another thread than the engine (threads > 1).
  bool across_threads() const { return across_; }
  // Across: wakes the writer if it sleeps (posted here by the engine's send()). Call on the
  // connection's executor.
  void wake_writer() { write_signal_.cancel_one(); }

  // session_sink: called on the engine's executor.
  void send(std::string encoded_frame) override;
  void close_after_flush() override;
  void pause_reading() override;
  void resume_reading() override;
  std::size_t queued_bytes() const override { return queued_bytes_.load(std::memory_order_relaxed); }
  void set_heartbeat(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every) override;
  void set_version(std::string_view version) override;

 private:
  // The session_sink calls' work, on the connection's own executor.
  void close_here();
  void pause_here();
  void resume_here();
  void set_heartbeat_here(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every);
  void set_version_here(std::string_view version);
  // Across: send() from the engine's thread (queue under out_mutex_, wake the writer).
  void send_across(std::string encoded_frame);
  // Across, engine thread: wake this writer when the engine's current turn ends.
  void wake_later(std::shared_ptr<connection> self);
  // Across, engine side: a read's frames, in order; held frames after a resume.
  void deliver(std::vector<stomp::frame> frames);
  void deliver_held();
  // One frame to engine::on_frame; false when the engine threw (the connection is closing).
  bool hand_to_engine(stomp::frame f);
  void close_on_engine();
  void engine_call_failed(const char* call, const std::exception& e);
  // An ERROR frame the connection itself writes (a parse error, memory refused), then close
  // after the flush. Across, it goes through the engine's thread behind `frames` (the frames
  // parsed before it), so it leaves after the answers to them, as with one thread.
  void send_error_and_close(std::string encoded_error, std::string reason, std::vector<stomp::frame> frames = {});
  std::unique_lock<std::mutex> lock_out() {
    return across_ ? std::unique_lock<std::mutex>(out_mutex_) : std::unique_lock<std::mutex>();
  }

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
  // `before`: the frames parsed ahead of the bad bytes and not handed over yet (across).
  void reject(const stomp::parse_error& error, std::vector<stomp::frame> before = {});
  // Runs a coroutine body; an escaping exception is logged and closes this connection
  // (an exception leaving a `detached` coroutine would otherwise be lost).
  void spawn(const char* name, asio::awaitable<void> (connection::*body)());

  asio::ip::tcp::socket socket_;
  executor_type executor_;         // socket_'s: the coroutines and the *_here calls run there
  executor_type engine_executor_;  // the engine's
  bool across_ = false;            // executor_ is not the engine's (threads > 1)
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
  bool error_sent_ = false;  // across: send_error_and_close is on its way (do not refuse twice)
  bool awaiting_connected_ = false;  // across: a CONNECT went to the engine, set_version not back
  std::string stop_reason_;

  // The outgoing queue. Across, queue_, above_limit_, writer_idle_ and out_closed_ are
  // guarded by out_mutex_ (send() runs on the engine's thread); direct, no lock is taken.
  std::mutex out_mutex_;
  std::deque<std::string> queue_;
  std::atomic<std::size_t> queued_bytes_{0};  // queued + being written
  bool above_limit_ = false;       // backlog crossed max_session_backlog_bytes since on_writable
  bool writer_idle_ = false;       // across: the writer sleeps on write_signal_; the next send wakes it
  bool out_closed_ = false;        // across: stop() ran, send() drops

  // Engine side (across only): touched on the engine's executor only.
  bool engine_open_ = false;     // open_session done, close_session not yet
  bool engine_paused_ = false;   // pause_reading called, resume_reading not yet
  bool engine_closing_ = false;  // close_after_flush called: later frames are dropped
  std::deque<stomp::frame> held_;  // frames that arrived while paused, in order

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
