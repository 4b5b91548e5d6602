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
// Pure accounting: no Asio, no threads of its own. It belongs to the engine's thread like the
// engine that owns it (engine::memory()). With `threads: 1` every call is made there and the
// counters are plain. With `threads` > 1 (docs/threads.md) connections run on other threads
// and call it from there: the server calls share_across_threads() once, on the engine's
// thread, before the first such connection exists; from then on every call is safe from any
// thread: the counters are atomics, the waiters sit under a mutex, and a connection elsewhere
// sees the engine's message bytes as they were at the engine's last flush or check
// (message_bytes() on the engine's thread refreshes that copy). A waiter's `wake` then runs
// on whichever thread freed the room: it must only post to its connection's executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace tandem::broker {

class memory_budget {
 public:
  using waiter_id = std::uint64_t;

  memory_budget(std::uint64_t limit, std::function<std::uint64_t()> message_bytes);
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  // Connections call from other threads from now on (see the top of this file). Call once,
  // on the owner's (the engine's) thread.
  void share_across_threads();
  bool shared() const { return shared_; }

  std::uint64_t limit() const { return limit_; }
  std::uint64_t message_bytes() const;
  std::uint64_t read_buffer_bytes() const { return buffer_bytes_.load(std::memory_order_relaxed); }
  std::uint64_t partial_frame_bytes() const { return read_bytes_.load(std::memory_order_relaxed); }
  std::uint64_t write_queue_bytes() const { return write_bytes_.load(std::memory_order_relaxed); }
  std::uint64_t transport_buffer_bytes() const { return transport_bytes_.load(std::memory_order_relaxed); }
  // Read buffers, transport buffers, partial frames and write queues together: what the
  // connections hold.
  std::uint64_t connection_bytes() const {
    return read_buffer_bytes() + transport_buffer_bytes() + partial_frame_bytes() + write_queue_bytes();
  }
  std::uint64_t baseline_bytes() const { return baseline_.load(std::memory_order_relaxed); }
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
  void reserve_baseline(std::uint64_t bytes) { baseline_.store(bytes, std::memory_order_relaxed); }
  // Bytes queued to a client / written (or dropped with a closed connection).
  void queued(std::uint64_t bytes) { add(write_bytes_, 0, bytes); }
  void written(std::uint64_t bytes);

  // Registers `wake`, called once, from wake_if_room(), when the budget is no longer full.
  // The waiter is forgotten when called; cancel() forgets it earlier (a closed connection).
  waiter_id wait(std::function<void()> wake);
  void cancel(waiter_id id);
  std::size_t waiting() const;
  // Wakes every waiter, oldest first, if the budget has room. Each woken connection reads one
  // chunk and waits again if that filled the budget. Called after every release here and by
  // the engine after each flush (an ACK or a dispatch may have freed messages).
  void wake_if_room();

  // How often a connection had to wait (for /metrics).
  std::uint64_t waits_total() const { return waits_total_.load(std::memory_order_relaxed); }

 private:
  // counter -= before; counter += after. Not shared: a plain load and store (no locked
  // instruction on the threads: 1 hot path); shared: one atomic add of the difference.
  void add(std::atomic<std::uint64_t>& counter, std::uint64_t before, std::uint64_t after);
  bool on_owner_thread() const { return !shared_ || std::this_thread::get_id() == owner_; }
  std::unique_lock<std::mutex> lock_waiters() const {
    return shared_ ? std::unique_lock<std::mutex>(waiters_mutex_) : std::unique_lock<std::mutex>();
  }

  std::uint64_t limit_;
  std::function<std::uint64_t()> message_bytes_;  // called on the owner's thread only
  bool shared_ = false;
  std::thread::id owner_;
  // Shared, each counter on a cache line of its own: readers on one thread and writes on
  // another must not also fight over their neighbours' line.
  alignas(64) mutable std::atomic<std::uint64_t> message_seen_{0};  // shared: message_bytes_() at the owner's last look
  alignas(64) std::atomic<std::uint64_t> read_bytes_{0};  // partial frames
  alignas(64) std::atomic<std::uint64_t> buffer_bytes_{0};
  alignas(64) std::atomic<std::uint64_t> transport_bytes_{0};
  alignas(64) std::atomic<std::uint64_t> write_bytes_{0};
  std::atomic<std::uint64_t> baseline_{0};
  mutable std::mutex waiters_mutex_;  // shared: guards waiters_ and next_waiter_
  std::map<waiter_id, std::function<void()>> waiters_;  // ordered: oldest first
  std::atomic<std::size_t> waiter_count_{0};  // waiters_.size(), read without the mutex
  waiter_id next_waiter_ = 1;
  std::atomic<std::uint64_t> waits_total_{0};
  bool waking_ = false;  // not shared only
};

}  // namespace tandem::broker
