// The broker engine: every STOMP session, destination, subscription and transaction of one
// broker, and the messaging semantics (ActiveMQ-compatible) between them.
//
// Threads and ownership: the engine and everything it owns live on ONE thread, the broker's
// engine thread (the thread that runs io_context 0). Every method below must be called on
// that thread, and every `session_sink` call the engine makes happens on it. With `threads`
// > 1 a session's connection runs on another thread (docs/threads.md): the sink's methods are
// then safe to call from the engine's thread while the connection runs elsewhere
// (broker/connection.h says how), and the connection posts its frames, on_writable and
// close_session here, in order. The journal delivers append completions to the same thread
// (journal options `post` = asio::post to the io_context), so the engine needs no mutex. The engine does no socket I/O and owns no timer:
// the server calls `tick()` periodically (expiry, producer send timeouts).
//
// The engine does not know about sockets, TLS or heart-beats on the wire: the connection
// (broker/connection.*) parses bytes with stomp::parser, hands whole frames to `on_frame`, writes
// what the engine `send`s, and runs the heart-beat timers with the values the engine
// negotiated in CONNECTED (reported through `session_sink::set_heartbeat`).
//
// Semantics in short (ActiveMQ over STOMP; broker/engine/README.md says which file holds what):
// - Destinations: /queue/NAME (competing consumers, round robin, per-subscription prefetch =
//   max unacked for client / client-individual, header `activemq.prefetchSize`) and
//   /topic/NAME (fan-out to current subscribers; durable with `client-id` on CONNECT and
//   `activemq.subscriptionName` on SUBSCRIBE; UNSUBSCRIBE with that header removes it).
//   Also ActiveMQ's topic wildcards, composite SENDs, virtual topics and temporary
//   destinations (broker/engine/destinations.h); anything else is an ERROR. SUBSCRIBE
//   `selector` filters (broker/engine/filter.h); `browser:true` browses a queue.
// - `persistent:true` messages are journaled (target = the queue, or one per durable
//   subscription of the topic; a topic without durable subscriptions journals nothing) and
//   are dispatched and RECEIPTed only once durable. Everything else lives in memory.
// - RECEIPTs go out in the order of the frames that asked for them; a frame's receipt is
//   ready once its effect is applied (journaled frames: durable).
// - Redelivery: NACK is a poison ack (the message goes to the DLQ at once, as ActiveMQ); a
//   closed consumer and an aborted transaction put messages back in their original order
//   with `redelivered:true`; a message delivered max_deliveries times that comes back again
//   goes to the DLQ (engine_config.h). After recover() every message
//   recovered from the journal is flagged `redelivered:true` when first delivered (the
//   journal does not record deliveries, and a message may have been delivered before the
//   crash); that first delivery does not count against max_deliveries. One path does all
//   of it: broker/engine/redelivery.cpp.
// - Duplicate detection: a SEND with headers `tandem-producer-id:<string>` and
//   `tandem-producer-seq:<decimal u64>` (both or neither) whose pair is among the last
//   dedup_window seqs of that producer (journaled ones survive a restart through the journal
//   index) is dropped and still RECEIPTed: a producer resending after a failover cannot
//   duplicate what the old master already made durable (broker/engine/dedup.h).
// - Flow control: a SEND that finds its destination, broker memory (non-persistent) or store
//   (persistent) full is held and the connection paused (session_sink::pause_reading) until
//   space frees; after send_timeout (checked in tick) it gets an ERROR.
// - Errors: a refused frame gets an ERROR whose `message` header is a broker::errc text
//   (broker/errc.h) and whose body says what exactly; then the connection closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "broker/destination_listing.h"
#include "broker/engine_config.h"
#include "broker/stomp/frame.h"

namespace tandem::journal {
class message_store;
}

namespace tandem::broker {

namespace prometheus {
class writer;
struct sliced_families;
}

class credential_checker;
class memory_budget;  // broker/memory_budget.h
using session_id = std::uint64_t;

// What a connection offers to the engine. Owned by the connection; it must stay valid until
// the connection calls engine::close_session for it. Called on the engine's thread; an
// implementation whose connection runs on another thread makes each call safe from there
// (queued_bytes() may lag the writer by a write; the others take effect on the connection's
// thread shortly after, in call order).
class session_sink {
 public:
  virtual ~session_sink() = default;
  // Queue an encoded frame (CONNECTED, MESSAGE, RECEIPT, ERROR) for writing, in order.
  virtual void send(std::string encoded_frame) = 0;
  // Write what is queued, then close the connection (after ERROR, or DISCONNECT's RECEIPT).
  virtual void close_after_flush() = 0;
  // Flow control: stop / resume reading this client's socket (producer blocked on a limit).
  virtual void pause_reading() = 0;
  virtual void resume_reading() = 0;
  // Bytes queued for writing and not yet written: the engine stops dispatching to a session
  // whose backlog is above its limit and resumes on `engine::on_writable`.
  virtual std::size_t queued_bytes() const = 0;
  // Negotiated heart-beat periods for this session (0 = none): the connection sends EOLs every
  // `send_every` and closes the session when nothing arrives for `expect_every` plus grace.
  virtual void set_heartbeat(std::chrono::milliseconds send_every, std::chrono::milliseconds expect_every) = 0;
  // The parser's protocol version after CONNECT negotiation ("1.0", "1.1", "1.2").
  virtual void set_version(std::string_view version) = 0;
};

// What a new master announces on the topic ActiveMQ.Advisory.Tandem.MasterChange
// (broker/engine/advisory.cpp, docs/compatibility.md "Advisory topics").
struct master_change {
  std::string broker;           // this broker's broker_name
  std::string previous_broker;  // the lock holder it waited for; "" when it waited for none
  std::uint64_t epoch = 0;
  std::uint64_t previous_epoch = 0;  // the holder record's epoch; 0 when unknown
  std::int64_t took_ms = 0;     // from lock acquired to serving (recovery included)
  std::int64_t at_ms = 0;       // when it started serving, ms since the Unix epoch
};

struct session_info {
  std::string remote_endpoint;  // "127.0.0.1:54012"
  bool tls = false;
  std::string transport = "tcp";  // transport::name(): "tcp", "tls", "ws", "wss"
};

class engine {
 public:
  // `store` may be null: a memory-only broker (persistent messages are then refused with an
  // ERROR, never silently kept in memory). The store must outlive the engine.
  engine(const engine_config& config, journal::message_store* store);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Rebuild queues, durable subscriptions and pending messages from the recovered journal
  // index. Called once, before the listener opens.
  void recover();

  session_id open_session(session_sink& sink, const session_info& info);
  // A complete frame from the client. The engine answers through the session's sink.
  void on_frame(session_id id, stomp::frame&& frame);
  // The session's outgoing backlog fell below the limit: dispatch may resume.
  void on_writable(session_id id);
  // The connection is gone (socket closed, heart-beat timeout, error): roll back its open
  // transactions, return its unacked messages to the front of their queues (redelivered).
  void close_session(session_id id);

  // Periodic work: expiry, producer send timeouts. `now` is steady time.
  void tick(std::chrono::steady_clock::time_point now);

  // Stop accepting work before the process gives up the store: fail new sends, stop
  // dispatching. Used on SIGTERM and on loss of mastership.
  void shutdown();
  // The store's file system is full (broker/disk_space_guard.h): persistent SENDs get ERROR
  // "disk full" with `why` as its body, until called with nullopt. Deliveries, ACKs and
  // everything else go on: they are what frees the space.
  void set_disk_full(std::optional<std::string> why);
  // Publishes the master-change advisory and keeps it: every later subscriber of its topic
  // gets the last one at once (subscribers connect after a failover, never before it).
  void announce_master(const master_change& change);

  // The wall clock (ms since the Unix epoch) used for `expires`; tests move time with it.
  // Default: std::chrono::system_clock.
  void set_wall_clock(std::function<std::int64_t()> now_ms);

  // Logins (broker/engine/credentials.h): the checker to use (shared with the admin port, so
  // one throttle covers both), and where its slow password check runs: `offload(slow, done)`
  // must run `slow` on another thread and then `done(result)` on this thread. Without a call
  // the engine checks against config.users inline (tests); without `offload` too.
  using offload_fn = std::function<void(std::function<bool()> slow, std::function<void(bool)> done)>;
  void set_login_service(std::shared_ptr<credential_checker> checker, offload_fn offload);

  // Admin: drops every pending message (not those in flight) of /queue/NAME, or of every
  // subscription (durable or not) of /topic/NAME. Journaled messages leave with one batch of
  // removes; `done(error, purged)` runs on this thread once that batch is durable (at once
  // when nothing was journaled). False, and `done` never called, when no such destination.
  bool purge(std::string_view destination, std::function<void(std::error_code, std::uint64_t)> done);

  // Scheduled delivery (AMQ_SCHEDULED_*, broker/engine/schedule.h). The server keeps ONE
  // timer armed for next_wake_ms() (wall clock, ms since the Unix epoch; nullopt: none
  // pending) and calls fire_schedules() when it expires; `changed` runs on this thread
  // whenever the earliest time may have moved, so the server re-arms. next_schedule_ms()
  // is the earliest entry's due time; next_wake_ms() is that or, when the entries due
  // soon were not asked from the store yet, a little before it (scheduled.cpp, prefetch).
  std::optional<std::int64_t> next_schedule_ms();
  std::optional<std::int64_t> next_wake_ms();
  void fire_schedules();
  void set_schedule_listener(std::function<void()> changed);
  // Admin: pending schedule entries ordered by next firing, a page of them (JSON: total,
  // offset, limit, items), and cancelling one job by id or, with "", all of them.
  // scheduled_json calls `done` with the page on this thread once the entries not in memory
  // are read (on the store's reader thread, body_read.cpp; at once when all are in memory);
  // never if the engine goes first (a failover), so the caller keeps a deadline.
  // `done(error, cancelled)` runs once the removal is durable; returns how many were
  // cancelled (0: no such job, and `done` still runs).
  void scheduled_json(std::size_t offset, std::size_t limit, std::function<void(nlohmann::json)> done);
  std::uint64_t cancel_scheduled(std::string_view job_id, std::function<void(std::error_code, std::uint64_t)> done);
  // Admin browse (GET /api/destinations/NAME/browse, broker/admin_http.h): up to `limit`
  // messages pending on /queue/NAME whose msg_seq is above `after`, in queue order, as
  // {"destination", "messages": [{"seq", "message_id", "persistent", "priority", "expires_ms",
  // "headers": [[name, value]...], "body_bytes", "body_preview", "body_truncated"}], "more",
  // "next"} with the first `preview_bytes` of each body (invalid UTF-8 written as \xNN).
  // Nothing is consumed or counted. Which messages is decided now; the bodies not in memory
  // are read on the store's reader thread (body_read.cpp), and `done` runs on this thread
  // when they are in: a message that left meanwhile, expired or is unreadable is left out,
  // so a slice may hold fewer than `limit`; ask again with `after` = "next" (the last seq
  // looked at) while "more". Keep `limit` small (admin_http asks browse_slice at a time) so
  // the reader's queue stays short for dispatch. False, and `done` never called, when there
  // is no such queue; `done` is never called either if the engine goes first (a failover).
  bool browse_json(std::string_view queue, std::uint64_t after, std::size_t limit, std::size_t preview_bytes,
                   std::function<void(nlohmann::json)> done);

  // Admin API snapshots.
  nlohmann::json destinations_json() const;  // every destination_json: queues, then topics, by name
  // GET /api/destinations and Jolokia a slice at a time (broker/destination_listing.h): the
  // figures of up to `max` destinations after `at` (queues, then topics, each in name order),
  // only those whose printable name holds `lower_filter` (ASCII case ignored; "" every one);
  // `at` moves on to the last one looked at and is `done` after the last topic. Between two
  // calls destinations may come and go: the walk goes on after the last name. Cheap per
  // destination: no JSON.
  destination_slice destination_figures_after(destination_cursor& at, std::size_t max, std::string_view lower_filter) const;
  // One row of /api/destinations: queue `name` (or topic, with its subscriptions), looked up
  // by its stored name; null when there is none (it was removed).
  nlohmann::json destination_json(std::string_view name, bool topic) const;
  nlohmann::json connections_json() const;  // every connection_json, in session order
  // GET /api/connections a page at a time (admin_http.h builds it in slices): up to `max`
  // sessions with an id above `after`, in id order, as (id, figure `sort`: frames_in,
  // messages_in, messages_out, backlog_bytes or subscriptions, else 0), only those whose
  // remote, login or client id holds `filter` (ASCII case ignored; "" every one). `last` is
  // the last id looked at, `looked_at` how many; `done` when no session follows. Cheap per
  // session: no JSON, no allocation.
  struct connection_keys_slice {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> matched;
    std::size_t looked_at = 0;
    std::uint64_t last = 0;
    bool done = false;
  };
  connection_keys_slice connection_keys(std::uint64_t after, std::size_t max, std::string_view filter,
                                        std::string_view sort) const;
  // One row of /api/connections; null when there is no such session (it closed).
  nlohmann::json connection_json(std::uint64_t session) const;
  void append_metrics(prometheus::writer& out) const;
  void append_metrics(std::string& prometheus_text) const;  // through a writer of its own
  // GET /metrics in slices (admin_http.h), so 50,000 destinations do not hold the io thread
  // for seconds: append_destination_metrics renders the families with a sample per
  // destination (queues, durable subscriptions, then topics) for up to `max` destinations
  // after where `scrape` stopped, in name order, and returns true once all are in. Between
  // two calls the destinations may change: the next slice starts after the last name
  // rendered, so one created meanwhile before it is missed and one dropped is simply not
  // found. append_metrics(out, scrape) then writes those families and the broker-wide ones,
  // rendering first what the slices left (a scrape begun before this process was master);
  // the result is what append_metrics(out) writes in one go.
  bool append_destination_metrics(prometheus::sliced_families& scrape, std::size_t max) const;
  void append_metrics(prometheus::writer& out, prometheus::sliced_families& scrape) const;
  // Pending bodies being read off the io thread for dispatch (engine/fetch.cpp); a hung
  // mount shows here first. Also tandem_store_reads_in_flight.
  std::size_t store_reads_in_flight() const;

  // The one budget of max_memory_bytes over messages held in memory and every connection's
  // partial frame and write queue (broker/memory_budget.h). Connections report their buffers
  // to it and wait on it; the engine parks SENDs held in memory while it is full.
  memory_budget& memory();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tandem::broker
