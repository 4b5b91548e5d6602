// One broker-wide budget over the bytes held for clients (issue 17, "one global memory budget
// over all sessions' buffers and messages"): `max_memory_bytes` bounds their sum.
//
//   messages      bytes of messages held in memory (non-persistent, transactions, topic copies):
//                 the engine's own count, read through the function given at construction
//   read buffers  each connection's socket read buffer: 4 KiB, 64 KiB while its client
//                 streams frames (read_buffer.h; connection.cpp reports it before each read)
//   transport buffers what a TLS or WebSocket connection's transport holds besides (transport.h
//                 buffer_bytes: Asio's and OpenSSL's TLS record buffers, WebSocket's 64 KiB
//                 read chunk); reported after the handshake and after every read
//   partial frames the bytes a connection's parser holds of a frame it has begun and not
//                 finished (connection.cpp reports them after every read)
//   write queues  encoded frames queued to a client and not yet written (connection::send
//                 adds, the writer subtracts)
//   baseline      with max_memory_counts_baseline, the process's own resident memory when it
//                 started serving (executable, libraries, the store's index, the allocator's
//                 arenas: VmRSS then), so that it counts against the budget too
//                 (reserve_baseline; broker_process::on_master). RSS is still not bounded:
//                 what nothing here counts comes on top (docs/operations.md)
//
// What happens when it is full (docs/configuration.md, "Limits"): the engine parks SENDs whose
// message would be held in memory (engine/send.cpp, check_space), and a connection that is in
// the middle of a frame stops reading its socket (TCP back-pressure: the producer's send
// blocks, like ActiveMQ's producerFlowControl) and waits here until bytes are freed. Between
// frames a connection still reads, in small chunks, so ACKs, DISCONNECTs and heart-beats keep
// consumers draining; dispatch and writes are never held back by the budget, so what frees
// memory always runs. A connection that waits longer than send_timeout_ms gets an ERROR.
//
// Pure accounting: no Asio, no threads. It lives on the broker's executor like the engine
// that owns it (engine::memory()); every call must be made there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

namespace tandem::broker {

class memory_budget {
 public:
  using waiter_id = std::uint64_t;

  memory_budget(std::uint64_t limit, std::function<std::uint64_t()> message_bytes);
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  std::uint64_t limit() const { return limit_; }
  std::uint64_t message_bytes() const { return message_bytes_(); }
  std::uint64_t read_buffer_bytes() const { return buffer_bytes_; }
  std::uint64_t partial_frame_bytes() const { return read_bytes_; }
  std::uint64_t write_queue_bytes() const { return write_bytes_; }
  std::uint64_t transport_buffer_bytes() const { return transport_bytes_; }
  // Read buffers, transport buffers, partial frames and write queues together: what the
  // connections hold.
  std::uint64_t connection_bytes() const { return buffer_bytes_ + transport_bytes_ + read_bytes_ + write_bytes_; }
  std::uint64_t baseline_bytes() const { return baseline_; }
  std::uint64_t used() const { return baseline_ + message_bytes() + connection_bytes(); }
  bool full() const { return used() >= limit_; }

  // A connection's partial frame went from `before` to `after` bytes. Returns `after`, so a
  // caller keeps its own figure in one statement: held = budget.reading(held, parser_bytes).
  std::uint64_t reading(std::uint64_t before, std::uint64_t after);
  // A connection's read buffer went from `before` to `after` bytes (0 when it closes); the
  // same shape as reading().
  std::uint64_t buffering(std::uint64_t before, std::uint64_t after);
  // The buffers a connection's transport holds besides its read buffer (TLS, WebSocket:
  // transport::buffer_bytes) went from `before` to `after` bytes; the same shape again.
  std::uint64_t transport_buffering(std::uint64_t before, std::uint64_t after);
  // Counts `bytes` (the process's RSS when it starts serving) in used() from now on.
  void reserve_baseline(std::uint64_t bytes) { baseline_ = bytes; }
  // Bytes queued to a client / written (or dropped with a closed connection).
  void queued(std::uint64_t bytes) { write_bytes_ += bytes; }
  void written(std::uint64_t bytes);

  // Registers `wake`, called once, from wake_if_room(), when the budget is no longer full.
  // The waiter is forgotten when called; cancel() forgets it earlier (a closed connection).
  waiter_id wait(std::function<void()> wake);
  void cancel(waiter_id id) { waiters_.erase(id); }
  std::size_t waiting() const { return waiters_.size(); }
  // Wakes every waiter, oldest first, if the budget has room. Each woken connection reads one
  // chunk and waits again if that filled the budget. Called after every release here and by
  // the engine after each flush (an ACK or a dispatch may have freed messages).
  void wake_if_room();

  // How often a connection had to wait (for /metrics).
  std::uint64_t waits_total() const { return waits_total_; }

 private:
  std::uint64_t limit_;
  std::function<std::uint64_t()> message_bytes_;
  std::uint64_t read_bytes_ = 0;  // partial frames
  std::uint64_t buffer_bytes_ = 0;
  std::uint64_t transport_bytes_ = 0;
  std::uint64_t write_bytes_ = 0;
  std::uint64_t baseline_ = 0;
  std::map<waiter_id, std::function<void()>> waiters_;  // ordered: oldest first
  waiter_id next_waiter_ = 1;
  std::uint64_t waits_total_ = 0;
  bool waking_ = false;
};

}  // namespace tandem::broker
