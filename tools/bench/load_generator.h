// The load generator behind tandem-bench: P producer and C consumer connections (client::
// connection) driven by T io threads, and what they measured.
//
// Timing: every SEND carries the steady-clock time it was queued in the header
// `tandem-bench-ts` (nanoseconds), so a delivery's latency is send -> MESSAGE in this process.
// Receipt latency is from queueing the frame to its RECEIPT. Both are measured from when the
// client queues the frame, after any wait for the receipt window or the rate limiter: with
// --rate the generator never builds a backlog of its own unless the broker is slower than the
// rate, and then the send rate in the report says so.
//
// Phases: consumers connect and subscribe (each SUBSCRIBE with a receipt, so the broker has
// them before the first SEND), producers connect, then the clock starts and producers send.
// The last message of each producer always asks for a receipt, so "sending finished" means the
// broker took every message, not that the socket buffer accepted them. Consumers stop when
// they have every message sent (a topic: every message times each subscriber), or after
// --idle seconds without a delivery once producers are done (messages missing, or --drain).
//
// Threads: run() starts `threads` io threads and returns after joining them; each connection
// belongs to one of them and its stats are merged at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench/latency_histogram.h"
#include "tools/client/connection.h"

namespace tandem::bench {

struct bench_options {
  std::string url = "tcp://127.0.0.1:61613";
  std::string login;
  std::string passcode;
  unsigned producers = 1;
  unsigned consumers = 1;
  std::size_t size = 1024;         // body bytes
  std::uint64_t count = 10000;     // messages in total over all producers (unless duration)
  double duration_s = 0;           // > 0: producers send for this long; count is ignored
  bool persistent = false;
  unsigned receipt_every = 0;      // 0: only the last message of each producer
  std::size_t window = 1000;       // outstanding receipts per producer connection
  std::string destination = "/queue/bench";
  bool topic = false;              // derived: the destination is a /topic/
  client::ack_mode ack = client::ack_mode::auto_ack;
  unsigned ack_batch = 1;          // ack mode client: one cumulative ACK per this many messages
  std::uint32_t prefetch = 0;      // activemq.prefetchSize; 0: header omitted (broker default)
  double rate = 0;                 // messages per second over all producers; 0: as fast as possible
  bool drain = false;              // consumers only, until idle
  bool preload = false;            // producers only (count messages), then exit
  double idle_s = 2.0;             // consumers give up after this long without a delivery
  unsigned threads = 1;
  std::chrono::milliseconds heartbeat{0};
  // Keep every RECEIPT's two instants (bench_result::receipt_samples), for a tail that the
  // histogram cannot explain: lined up with a `perf record -k CLOCK_MONOTONIC` trace of the
  // broker, each slow sample shows what the broker's threads were doing meanwhile.
  bool keep_receipt_samples = false;
};

// One RECEIPT: when its frame was queued and when the RECEIPT was handled, on the steady
// clock (CLOCK_MONOTONIC, nanoseconds), and the producer connection (0..P-1) it came on.
struct receipt_sample {
  std::int64_t sent_ns = 0;
  std::int64_t received_ns = 0;
  unsigned producer = 0;
};

struct reconnect_record {
  double at_s = 0;          // since the start of sending
  double downtime_ms = 0;   // loss detected -> CONNECTED on the new broker
  std::string broker;
  std::string cause;
  std::size_t receipts_lost = 0;
  // Producers only: CONNECTED -> the first RECEIPT for a SEND queued on the new connection,
  // i.e. the new broker accepted (for a persistent SEND: stored) a message. Negative when no
  // such RECEIPT came (a consumer, or a producer that sent nothing receipted afterwards).
  double first_accept_ms = -1;
  // The same instants on the steady clock (CLOCK_MONOTONIC, nanoseconds), so a script that
  // read CLOCK_MONOTONIC when it killed a broker (Python: time.monotonic_ns()) can compute
  // kill -> first accepted message. first_accept_ns is 0 when there was none.
  std::int64_t lost_ns = 0;
  std::int64_t connected_ns = 0;
  std::int64_t first_accept_ns = 0;
};

struct bench_result {
  // Sending.
  std::uint64_t sent = 0;
  std::uint64_t sent_bytes = 0;
  double send_seconds = 0;        // start -> last producer's last RECEIPT
  std::uint64_t receipts = 0;
  std::uint64_t receipts_lost = 0;
  latency_histogram receipt_latency;
  std::vector<receipt_sample> receipt_samples;  // only with keep_receipt_samples, by received_ns
  // Delivery.
  std::uint64_t delivered = 0;
  std::uint64_t delivered_bytes = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t expected = 0;     // 0 when unknown (--drain)
  double delivery_seconds = 0;    // start -> last delivery
  latency_histogram delivery_latency;
  // Trouble.
  std::uint64_t error_frames = 0;
  std::vector<std::string> errors;  // first few, for the report
  std::vector<reconnect_record> reconnects;
  bool failed = false;              // a connection could not be made or closed for good early
  // The generator's own cost, to show the client was not the bottleneck.
  double cpu_user_s = 0;
  double cpu_system_s = 0;
  double wall_s = 0;
};

// Runs one benchmark. Connection failures are reported in the result (failed, errors), never
// thrown; throws only std::bad_alloc and std::system_error from thread creation.
bench_result run(const bench_options& options, const client::broker_list& brokers);

}  // namespace tandem::bench
