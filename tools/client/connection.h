// client::connection: one STOMP 1.0-1.2 client connection over Asio, with ActiveMQ-style
// failover. The one client of tandem-bench, tandem-drill and tandemctl.
//
// What it does: connects to the first reachable broker of a broker_list (broker_list.h),
// negotiates version and heart-beats, writes frames in batches (everything queued while a write
// is in flight goes out in the next single write), matches RECEIPTs to the frames that asked
// for one, and hands MESSAGE / ERROR frames to callbacks. With failover it reconnects after a
// loss (next broker in the list, exponential backoff), re-subscribes every live subscription,
// reports each outstanding receipt as lost (errc::receipt_lost: the caller decides whether to
// resend) and tells the caller through on_reconnect, so the drill can time a takeover.
//
// Threads and ownership: everything runs on the executor given to `create`, which must be
// single-threaded (an io_context run by one thread, or a strand). Every method must be called
// on it, and every callback is invoked on it. One thread can drive thousands of connections.
// The object is held by shared_ptr: its coroutines keep it alive until the socket is closed
// and they have returned, so dropping the caller's pointer without close() leaks a live
// connection; call close() or async_disconnect() first.
//
// What a reconnect does NOT restore: open transactions (the broker rolled them back; further
// COMMITs are refused with errc::not_connected until the caller begins anew), unacked messages
// (the broker redelivers them, with redelivered:true), and frames queued without a receipt but
// not yet written (gone, as with any STOMP client: ask for a receipt when it matters).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/outcome/std_result.hpp>

#include "broker/asio.h"
#include "broker/stomp/frame.h"
#include "broker/stomp/parser.h"
#include "tools/client/broker_list.h"
#include "tools/client/link.h"

namespace tandem::client {

template <class T>
using result = boost::outcome_v2::std_result<T>;

enum class ack_mode { auto_ack, client, client_individual };
// "auto", "client", "client-individual": the STOMP header values.
std::string_view ack_mode_name(ack_mode m) noexcept;
std::optional<ack_mode> ack_mode_from_name(std::string_view name) noexcept;

struct connect_options {
  broker_list brokers;
  std::string login;      // "login" header; empty: omitted (anonymous)
  std::string passcode;   // "passcode" header; empty: omitted
  std::string client_id;  // "client-id" (ActiveMQ: needed for durable topic subscriptions)
  std::string virtual_host;  // "host" header; empty: the host part of the broker's address
  // Heart-beats we offer (cx: we can send this often) and ask for (cy). 0 = none.
  std::chrono::milliseconds heartbeat_send{0};
  std::chrono::milliseconds heartbeat_expect{0};
  // A silent broker is declared dead after expect period * this factor.
  double heartbeat_grace = 2.0;
  // Per attempt: TCP connect plus CONNECTED.
  std::chrono::milliseconds connect_timeout{5000};
  // async_send suspends while this many receipts are outstanding (pipelining window).
  std::size_t receipt_window = 1024;
  // async_send suspends while this many encoded bytes wait for the socket.
  std::size_t max_buffered_bytes = std::size_t{4} << 20;
  stomp::limits limits;
};

// A RECEIPT, or the reason it will never come.
struct receipt_event {
  std::uint64_t id = 0;   // as returned by the call that asked for it
  std::error_code error;  // empty: RECEIPT arrived; errc::receipt_lost; errc::broker_error
  std::chrono::steady_clock::time_point sent_at;  // when the frame was queued
};

struct reconnect_event {
  std::size_t broker_index = 0;  // into connect_options::brokers.brokers
  broker_address broker;
  std::error_code cause;  // why the previous connection ended
  std::chrono::steady_clock::time_point lost_at;
  std::chrono::steady_clock::time_point connected_at;  // CONNECTED received
  unsigned attempts = 0;            // connect attempts this outage, the successful one included
  std::size_t receipts_lost = 0;    // reported as errc::receipt_lost just before
  std::size_t resubscribed = 0;
};

// A delivered MESSAGE and the connection incarnation it came on (ACKs are only meaningful on
// that one).
struct message {
  stomp::frame frame;
  std::uint64_t generation = 0;
};

struct subscription {
  std::string destination;
  std::string id;  // empty: assigned ("1", "2", ...) and written back by subscribe()
  ack_mode ack = ack_mode::auto_ack;
  std::optional<std::uint32_t> prefetch;  // activemq.prefetchSize
  std::string selector;                   // empty: none
  std::vector<stomp::header> extra_headers;
};

struct handlers {
  // A MESSAGE. The callee may keep or move the frame; ack/nack it through the connection.
  std::function<void(message&&)> on_message;
  // A RECEIPT, or its loss (connection lost, or an ERROR carrying its receipt-id).
  std::function<void(const receipt_event&)> on_receipt;
  // An ERROR frame from the broker (it usually closes the connection next).
  std::function<void(const stomp::frame&)> on_error;
  // A connection ended. `final` is true when no reconnect follows (no failover, close(),
  // attempts exhausted, CONNECT refused); the connection is then closed for good.
  std::function<void(std::error_code cause, bool final)> on_connection_lost;
  // A reconnect succeeded (never called for the first connect).
  std::function<void(const reconnect_event&)> on_reconnect;
};

class connection : public std::enable_shared_from_this<connection> {
 public:
  enum class state { idle, connecting, connected, reconnecting, closed };

  static std::shared_ptr<connection> create(asio::any_io_executor executor, connect_options options, handlers h);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // The first connect: tries the brokers as failover allows (once each without failover).
  // On success the connection runs until close(), async_disconnect() or a final loss.
  asio::awaitable<std::error_code> async_connect();

  // Queues `frame` (any client command, usually SEND) for writing. With want_receipt the
  // client sets the frame's `receipt` header to a fresh id (the frame is modified) and
  // returns the id; else it removes any `receipt` header and returns 0. Suspends while the
  // receipt window is full, too many bytes are buffered, or a reconnect is in progress.
  // Fails with errc::closed once the connection is closed for good.
  asio::awaitable<result<std::uint64_t>> async_send(stomp::frame& frame, bool want_receipt);

  // Suspends until no receipt is outstanding (or the connection closes: errc::closed).
  asio::awaitable<std::error_code> async_flush();

  // Never suspend: the frame is queued at once, whatever the window.
  // subscribe: remembered and re-sent after every reconnect; while reconnecting it is only
  // remembered. Returns the receipt id (0 without).
  result<std::uint64_t> subscribe(subscription& sub, bool want_receipt = false);
  result<std::uint64_t> unsubscribe(std::string_view id, bool want_receipt = false);
  // ACK/NACK a message; errc::not_connected if it came on an earlier incarnation.
  std::error_code ack(const message& m, std::string_view transaction = {});
  std::error_code nack(const message& m, std::string_view transaction = {});
  // ACK asking a RECEIPT: returns its id (reported through on_receipt, or lost with the
  // connection). Tandem answers it once the ACK's remove is durable.
  result<std::uint64_t> ack_with_receipt(const message& m);
  std::error_code begin(std::string_view transaction);
  result<std::uint64_t> commit(std::string_view transaction, bool want_receipt = false);
  result<std::uint64_t> abort(std::string_view transaction, bool want_receipt = false);

  // DISCONNECT with a receipt, wait for it (at most `timeout`), close. No reconnect follows.
  asio::awaitable<std::error_code> async_disconnect(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Closes the socket as a network failure would (errc::connection_dropped): outstanding
  // receipts are reported lost and, with failover, the connection reconnects to the first
  // broker that answers, possibly the same. For drills. Nothing happens unless connected.
  void drop();
  // Closes the socket now; no reconnect follows. Before it returns, the state is closed,
  // every outstanding receipt was reported lost and on_connection_lost(errc::closed, true)
  // was called (so callbacks may run inside close()).
  void close();

  state current_state() const noexcept { return state_; }
  bool is_connected() const noexcept { return state_ == state::connected; }
  stomp::version protocol_version() const noexcept { return version_; }
  // Incremented by every successful CONNECTED (1 after the first connect).
  std::uint64_t generation() const noexcept { return generation_; }
  std::size_t outstanding_receipts() const noexcept { return outstanding_.size(); }
  const broker_address& current_broker() const;
  // The CONNECTED frame of the current (or last) connection: server, session, heart-beat.
  const stomp::frame& connected_frame() const noexcept { return connected_; }
  std::uint64_t bytes_written() const noexcept { return bytes_written_; }
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  // After a loss with errc::protocol_error: what the parser refused.
  const stomp::parse_error& last_parse_error() const noexcept { return last_parse_error_; }
  // An exception thrown by a callback (the connection was closed because of it), or null.
  std::exception_ptr last_exception() const noexcept { return last_exception_; }

 private:
  struct pending_receipt {
    std::uint64_t id;
    std::chrono::steady_clock::time_point sent_at;
  };

  connection(asio::any_io_executor executor, connect_options options, handlers h);

  // One TCP connect + CONNECT/CONNECTED exchange to brokers[index].
  asio::awaitable<std::error_code> connect_once(std::size_t index);
  // Rounds over the broker list with backoff, as broker_list allows; `first` = async_connect.
  asio::awaitable<std::error_code> connect_with_retries(bool first, unsigned& attempts);
  // Runs the live connection (reader), reconnecting after losses; returns when closed for good.
  // Coroutines take a shared_ptr to the connection so it outlives them (the parameter is
  // copied into the coroutine frame).
  asio::awaitable<void> supervise(std::shared_ptr<connection> self);
  asio::awaitable<std::error_code> read_loop(std::shared_ptr<link> socket);
  asio::awaitable<void> write_loop(std::shared_ptr<connection> self);
  asio::awaitable<void> heartbeat_loop(std::shared_ptr<connection> self, std::uint64_t generation);

  void on_frame(stomp::frame&& f);
  void on_receipt_frame(const stomp::frame& f);
  // The socket died (or close()): fail outstanding receipts, drop unsent bytes.
  void on_lost(std::error_code cause);
  void fail_outstanding(std::error_code error);
  // Encodes `f` into out_ with the negotiated version and wakes the writer.
  std::error_code queue(const stomp::frame& f);
  std::uint64_t next_receipt_id(stomp::frame& f);
  void set_receipt_header(stomp::frame& f, std::uint64_t id);
  void send_subscribe(const subscription& sub, std::uint64_t receipt_id);
  std::error_code ack_or_nack(const message& m, std::string_view transaction, bool ack, std::uint64_t receipt_id = 0);
  result<std::uint64_t> end_transaction(std::string_view command, std::string_view transaction, bool want_receipt);
  void wake_waiters();
  void close_socket(std::error_code cause);

  asio::any_io_executor executor_;
  connect_options options_;
  handlers handlers_;
  state state_ = state::idle;
  bool close_requested_ = false;

  std::shared_ptr<link> socket_;
  std::weak_ptr<link> connecting_socket_;  // close() interrupts an attempt
  std::string leftover_;  // bytes read after CONNECTED in the same read, for the read loop
  bool saw_error_frame_ = false;
  stomp::parse_error last_parse_error_;
  std::exception_ptr last_exception_;
  std::size_t broker_index_ = 0;
  stomp::parser parser_;
  stomp::version version_ = stomp::version::v1_0;
  stomp::frame connected_;
  std::uint64_t generation_ = 0;
  std::error_code loss_cause_;  // set by whoever closes the socket on purpose

  // Outgoing bytes: frames are encoded into out_; the writer swaps it with writing_ and
  // writes that in one call, so frames queued during a write leave in one batch and both
  // buffers keep their capacity (no allocation in steady state).
  std::string out_;
  std::string writing_;
  // Over WebSocket: the size of each frame in out_ / writing_ (one message each).
  std::vector<std::size_t> out_frames_;
  std::vector<std::size_t> writing_frames_;
  bool writer_idle_ = true;
  asio::steady_timer backoff_timer_;  // between reconnect rounds; close() cancels it
  asio::steady_timer writer_wakeup_;  // never expires; cancel() wakes the writer
  // Never expires; cancel() wakes every coroutine waiting for a state change (window space,
  // buffer space, reconnect done, receipts drained).
  asio::steady_timer state_changed_;
  std::chrono::steady_clock::time_point last_read_;
  std::chrono::steady_clock::time_point last_write_;
  std::chrono::milliseconds send_every_{0};
  std::chrono::milliseconds expect_every_{0};
  std::shared_ptr<asio::steady_timer> heartbeat_timer_;

  std::uint64_t last_receipt_id_ = 0;
  std::deque<pending_receipt> outstanding_;  // in id order; RECEIPTs normally come in order
  std::uint64_t disconnect_receipt_ = 0;
  bool disconnect_done_ = false;

  std::vector<subscription> subscriptions_;
  std::uint64_t last_subscription_id_ = 0;

  std::uint64_t bytes_written_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::vector<char> read_buffer_;
  stomp::frame scratch_;  // reused for ACK/SUBSCRIBE/CONNECT frames the client builds
};

}  // namespace tandem::client
