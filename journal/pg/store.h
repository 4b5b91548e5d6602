// tandem::journal::pg::store: a message store in PostgreSQL (message_store.h has the
// contract every store keeps; docs/postgresql.md the design and the operator's side).
//
// Life cycle: the broker wins the lease (lease.h) and gets its epoch, then calls
// store::open(options) which checks the schema (schema.h), checks that the lease still
// carries that epoch, loads the live index with a few SELECTs (no bodies), and starts the
// writer thread. The schema is created only by create_schema (the broker's --create-store).
//
// Threads and ownership:
// - One writer thread per store, with its own connection, does every write. It takes all
//   queued changes (up to max_group), sends them in ONE pipelined implicit transaction:
//   tandem_fence(epoch) first, then the statements of each change in append order, then a
//   Sync (the COMMIT). One round trip and one WAL flush (and, with synchronous replication,
//   one standby acknowledgement) for the whole group: group commit across every session.
//   Completions are posted to the owner thread after the commit returned.
// - The owner thread (options.post) runs append, read, read_async, index, allocate_msg_seq
//   and the completions, as for the journal.
// - One reader thread per store (when options.post is set), with its own connection
//   ("tandemd-reader"), runs the queries of read_async(): a cache miss reads the message
//   and up to read_ahead later messages of the same target in one SELECT, decodes them
//   there and posts them to the owner thread, which files them in the body cache and
//   answers every read_async waiting for one of them. So a slow or locked database stalls
//   the consumers waiting for those bodies, never the owner thread (the broker's io thread:
//   /health, other sessions). read() (blocking; tools and the schedule recovery before the
//   client port opens) keeps a connection of its own on the owner thread
//   ("tandemd-reader-inline"): libpq connections are not shared between threads.
// - Reads check no fence, as the journal's reader does not: a read changes nothing, and
//   what a deposed master might do with a body (deliver it once more before its lease
//   renewal notices and it exits 75) is the at-least-once redelivery a takeover makes
//   anyway; the consumer's ACK is a write, and every write transaction starts with the
//   fence. A row a newer master removed is simply not found; one it added under a msg_seq
//   this index does not hold live is filed in the cache but never asked for.
//
// Bodies: the index holds no body. Recently appended messages are kept in a FIFO cache of
// body_cache_bytes; older ones are read from tandem_message on demand. A backlog of any
// length costs the broker ~100 bytes per live message, as with the journal.
//
// Failure: a statement error or a fence error (SQLSTATE TD001: a newer epoch exists) fails
// that group and the store for good (message_store.h, FAILED); options.on_failed says why,
// once. The broker exits and restarts as a slave; whoever then wins the lease recovers from
// what the database committed.
//
// Reconnection (reconnect_for > 0): when the writer's connection breaks (the primary died
// and a standby was promoted, the backend was terminated, the network cut), the group in
// flight has an UNKNOWN outcome: its COMMIT may have happened with the answer lost. The
// writer then, until reconnect_for runs out:
//   1. connects again through the conninfo (a multi-host URI with
//      target_session_attrs=read-write finds the new primary), prepares its statements;
//   2. ends its old backend if it still lives on that server (same pid AND backend_start),
//      so the old transaction's outcome is settled now;
//   3. reads the lease row: another epoch -> errc::fenced (the store fails, nothing more
//      commits); a next_msg_seq below what this writer had committed -> the server lacks
//      acknowledged transactions (asynchronous replication lost them): the store fails;
//   4. sends the SAME group again in a new transaction, fence first. Every statement of a
//      group is idempotent on the state the group leaves (inserts "on conflict do nothing"
//      in the retry, deletes of keys), and no other transaction can write in between: the
//      fence's row lock makes the retry wait until the old transaction has ended, and only
//      this epoch's single writer passes the fence. So the retry leaves the database as ONE
//      commit of the group would, whether or not the first attempt committed.
// The completions (RECEIPTs) of the group go out only after the retry's COMMIT returned.
// Appends queued meanwhile wait in the queue. If reconnect_for runs out, the group fails
// (no RECEIPT) and the store fails, as without reconnection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "journal/index.h"
#include "journal/message_store.h"

namespace tandem::journal::pg {

struct options {
  std::string conninfo;
  std::uint64_t epoch = 0;  // from the lease; every write transaction proves it
  std::size_t producer_window = 1024;
  // Producers whose dedup window is kept (journal::options::max_producers): past it the
  // least recently stored-to producer's window is dropped from the index and its
  // tandem_producer rows are deleted in the same transaction. 0 = no bound.
  std::size_t max_producers = 0;
  std::size_t body_cache_bytes = 64ull << 20;
  std::size_t max_group = 1024;  // changes per transaction
  std::size_t read_ahead = 256;  // messages fetched per cache miss
  std::chrono::milliseconds io_timeout{5000};
  std::function<void(std::function<void()>)> post;  // default: inline on the writer thread
  std::function<void(const std::string&)> on_failed;  // writer thread, once
  // How long the writer tries to reach a read-write server again after its connection broke
  // with a group in flight (see "Reconnection" above); 0: fail the store at once.
  std::chrono::milliseconds reconnect_for{0};
  // Writer thread: the connection broke (`reconnected` false, why) and, later, the writer
  // committed its group on a new connection (`reconnected` true, to which server, how long).
  std::function<void(bool reconnected, const std::string&)> on_reconnect;
};

struct open_report {
  std::uint64_t live_messages = 0;  // (target, message) pairs
  std::uint64_t live_bytes = 0;
  std::uint64_t destinations = 0;
  std::uint64_t subscriptions = 0;
  std::chrono::milliseconds duration{0};
  std::string server;  // host:port connected to
  std::string detail;  // why open failed, for the operator
};

// Writer counters for /metrics; relaxed atomics.
struct pg_stats {
  std::atomic<std::uint64_t> appends{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> commit_nanoseconds{0};
  std::atomic<std::uint64_t> committed_changes{0};
  std::atomic<std::uint64_t> reconnects{0};  // groups committed again on a new connection
};

class store final : public message_store {
 public:
  // Errors: errc::not_a_store, unsupported_version, fenced (the lease has another epoch),
  // std::errc::io_error (report.detail has libpq's text).
  static result<std::unique_ptr<store>> open(options opts, open_report& report);
  ~store() override;
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  void append(change c, completion done) override;
  const journal::index& index() const override;
  result<std::shared_ptr<const message>> read(std::string_view target, std::uint64_t msg_seq) override;
  std::shared_ptr<const message> cached(std::string_view target, std::uint64_t msg_seq) override;
  // True with an owner executor (options.post) and a body cache: read_async then queries on
  // the reader thread and files what it read ahead in the cache.
  bool reads_into_cache() const override;
  void read_async(std::string_view target, std::uint64_t msg_seq, read_completion done) override;
  std::uint64_t allocate_msg_seq() override;
  // Queued like a change: its group's transaction (epoch check first) commits, then it
  // completes; alone, that transaction holds the epoch check only.
  void fence_barrier(completion done) override;
  void checkpoint(completion done) override;  // nothing to do: completes at once
  bool compact_step(std::uint64_t max_bytes) override;  // the writer prunes as it goes: false
  const store_id& id() const override;
  std::error_code failed() const override;
  std::error_code close() override;
  const pg_stats& stats() const;

 private:
  struct impl;
  explicit store(std::shared_ptr<impl> p);
  std::shared_ptr<impl> impl_;
};

}  // namespace tandem::journal::pg
