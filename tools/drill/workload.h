// workload: the drill's producers and consumers, and the history they record.
//
// Producer i (0 <= i < producers) sends persistent messages seq = 1, 2, ... to its own queue
// /queue/drill.<run>.p<i>, each with a RECEIPT, its own window of outstanding SENDs and a
// share of --rate. Each SEND carries the duplicate-detection headers the broker implements
// (`tandem-producer-id`, `tandem-producer-seq`, see broker/engine/dedup.h) and the drill's own
// `drill-p` / `drill-seq`, and a body from make_body (history.h).
// Consumers subscribe with ack=client-individual and ACK every message; consumer j takes the
// queues i with i % consumers == j (or, with more consumers than producers, queue j %
// producers). The backlog is one more stream, index `producers`, sent to
// /queue/drill.<run>.backlog and consumed only at the end: `pending` messages before the
// failovers (--pending, every takeover recovers them), then `parked_rate` messages per second
// all along (--parked-rate): messages that stay in the store across faults, the ones a
// takeover or a power loss must keep and that no consumer picks up on the old master before
// it dies. The monitor's probe writes (monitor.h) are stream `producers + 1`, on
// /queue/drill.<run>.probe, also consumed at the end (start_end_consumers).
//
// --workload (policy_workload.h) turns on a delivery policy: message groups, scheduled
// SENDs or NACKs under a redelivery policy, with the checks that go with it.
//
// Every RECEIPT is kept with its timing and the connection it came on (acks()), for the
// writers check (writers.h).
//
// Resends and order. A SEND whose RECEIPT is lost (the master died) is resent with the same
// seq before any newer seq, so a producer's stream keeps its order across failovers. That
// needs care with the client's API: async_send suspends while a reconnect is in progress, and
// a SEND suspended that way would go out on the new connection *ahead* of the resends. So a
// producer calls async_send only when the connection is up and its own window has room,
// conditions under which async_send queues at once (the client's receipt window and byte
// limit are set far above ours). Every other wait is on the producer's own wake-up timer.
//
// Timing a failover: arm(since) before killing the master; the first RECEIPT that arrives on
// a producer connection established after `since` is the first message accepted by the new
// master (the old one's sockets died with it). arm_any(since) for a pause (SIGSTOP): the
// first RECEIPT read after `since`, on any connection.
//
// Threads: the workload owns one io thread; every client connection, the history and the
// producer/consumer state live on it. Public methods may be called from any one other
// thread (the controller); they post to the io thread and, where they return something,
// wait for it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "broker/asio.h"
#include "tools/client/broker_list.h"
#include "tools/drill/history.h"
#include "tools/drill/policy_workload.h"

namespace tandem::client {
class connection;
struct message;
}

namespace tandem::drill {

using clock_type = std::chrono::steady_clock;

struct workload_options {
  client::broker_list brokers;
  unsigned producers = 4;
  unsigned consumers = 4;
  std::size_t message_bytes = 1024;
  unsigned window = 32;            // outstanding SENDs per producer
  double rate = 2000;              // messages per second over all producers; 0 = unlimited
  std::uint32_t prefetch = 200;    // activemq.prefetchSize of each subscription
  std::string run_id = "drill";    // names queues and producer ids
  workload_kind kind = workload_kind::plain;
  std::uint64_t pending = 0;       // backlog messages (preload())
  double parked_rate = 0;          // then backlog messages per second during the traffic
  unsigned backlog_window = 512;
  std::size_t probe_bytes = 64;    // body size of the probe's writes
  std::chrono::milliseconds connect_timeout{2000};
  // STOMP heart-beats each way (0: none). Without them a client whose master is cut off by a
  // partition (no RST, no FIN) waits for its receipts for ever (cluster drill, partition).
  std::chrono::milliseconds heartbeat{0};
};

struct workload_counters {
  std::uint64_t send_attempts = 0;
  std::uint64_t receipted = 0;
  std::uint64_t delivered = 0;             // distinct
  std::uint64_t undelivered = 0;           // receipted, not yet delivered (live queues)
  std::uint64_t backlog_receipted = 0;
  std::uint64_t backlog_undelivered = 0;
  std::uint64_t probe_undelivered = 0;     // receipted probe writes not delivered yet
  std::uint64_t reconnects = 0;
  std::uint64_t receipts_lost = 0;         // resends caused by lost receipts or ERRORs
  std::uint64_t producers_outstanding = 0; // SENDs in flight or waiting to be resent
  std::uint64_t closed_for_good = 0;       // connections the client gave up on
  std::uint64_t nacks = 0;                 // NACKs sent (--workload redelivery)
};

struct accept_event {
  clock_type::time_point at;               // the RECEIPT was read
  std::string broker;                      // "host:port" of the connection it came on
  std::optional<clock_type::time_point> reconnected_at;  // first reconnect after `since`
};

// A RECEIPT the drill read for one persistent SEND (writers.h turns these into verdicts).
struct ack_record {
  clock_type::time_point sent;          // the SEND was queued
  clock_type::time_point received;      // the RECEIPT was read
  std::uint16_t port = 0;               // client port of the broker the connection was on
  clock_type::time_point connected_at;  // when that connection was made
  std::uint32_t stream = 0;
  std::uint64_t seq = 0;
};

// A persistent SEND written by the monitor's probe (monitor.h).
struct probe_write {
  std::uint64_t seq = 0;
  clock_type::time_point sent;
  std::optional<clock_type::time_point> receipted;
};

// Which connections drop_connections() cuts.
struct connection_selection {
  bool consumers = false;
  bool even_producers = false;
  bool odd_producers = false;
  bool parked = false;  // the backlog producer
};

class workload {
 public:
  explicit workload(workload_options options);
  ~workload();
  workload(const workload&) = delete;
  workload& operator=(const workload&) = delete;

  // Connects every producer and consumer (consumers subscribe); blocks until done.
  std::error_code connect();
  // Starts the backlog producer (pending messages, full speed). Returns at once; watch
  // counters().backlog_receipted.
  void start_preload();
  // Starts the live producers.
  void start_traffic();

  void arm(clock_type::time_point since);      // failover: first accept on a new connection
  void arm_any(clock_type::time_point since);  // pause: first accept at all
  std::optional<accept_event> accepted() const;

  workload_counters counters() const;

  // No new seqs from now on; producers still resend what was lost and wait for receipts.
  void stop_producers();
  // Closes the selected connections as a network failure would: each reconnects (to the
  // first broker that answers) and resends what was not receipted, as clients do.
  // Returns how many were connected (and so dropped).
  unsigned drop_connections(connection_selection which);
  // True once every connection the last drop_connections() cut has reconnected and is
  // connected now. Per connection, not a count: one client reconnecting twice (its first
  // reconnect landed on a broker that then went away) must not stand in for another.
  bool dropped_all_back();
  // At the end: the probe's writes join the history, and consumers drain the backlog and
  // the probe queue (`probe_destination`).
  void start_end_consumers(const std::vector<probe_write>& probe_writes, const std::string& probe_destination);
  std::uint32_t backlog_stream() const { return options_.producers; }
  std::uint32_t probe_stream() const { return options_.producers + 1; }
  // Every RECEIPT read so far (call after finish()).
  std::vector<ack_record> acks();
  // Closes every connection (DISCONNECT with receipt) and returns the verdict. Once.
  verdict finish();
  // The first broker ERROR messages seen (at most 20), for the report.
  std::vector<std::string> broker_errors() const;

 private:
  struct producer;
  struct consumer;

  asio::awaitable<void> run_producer(std::shared_ptr<producer> p);
  asio::awaitable<void> wait(producer& p, clock_type::time_point deadline);
  void signal(producer& p);
  std::shared_ptr<producer> make_producer(std::uint32_t index, std::string destination, std::uint64_t limit,
                                          unsigned window, double rate);
  std::shared_ptr<consumer> make_consumer(std::uint32_t index, std::vector<std::string> destinations);
  void on_message(consumer& c, client::message&& m);
  void note_accept(producer& p);
  void update_counters();
  void note_error(std::string text);
  // Runs `f` on the io thread and waits for it.
  template <class F>
  auto call(F&& f);

  workload_options options_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;

  // io thread only.
  history history_;
  std::vector<std::shared_ptr<producer>> producers_;
  std::shared_ptr<producer> backlog_producer_;
  std::vector<std::shared_ptr<consumer>> consumers_;
  std::shared_ptr<consumer> backlog_consumer_;
  std::shared_ptr<consumer> probe_consumer_;
  std::vector<ack_record> acks_;
  std::set<std::pair<std::uint32_t, std::uint64_t>> nacked_;  // (p, seq) NACKed at least once
  struct dropped_connection {
    client::connection* conn;
    const std::uint64_t* reconnects;  // the producer's or consumer's own counter
    std::uint64_t reconnects_at_drop;
  };
  std::vector<dropped_connection> dropped_;  // by the last drop_connections()
  bool finished_ = false;

  // Shared with the controller.
  mutable std::mutex mutex_;
  workload_counters counters_;
  bool armed_ = false;
  bool armed_any_ = false;
  clock_type::time_point armed_since_;
  std::optional<accept_event> accepted_;
  std::optional<clock_type::time_point> reconnected_after_arm_;
  std::vector<std::string> errors_;
};

}  // namespace tandem::drill
