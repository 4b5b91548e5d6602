// tandem::journal::message_store: what the broker needs from a durable message store, and
// the contract every store keeps. journal::store (store.h, the segmented log in this
// folder) is the first implementation; a PostgreSQL store is planned, whose append is a
// database transaction and whose recovery loads the live index with a SELECT. ActiveMQ's
// PersistenceAdapter is the model: KahaDB and JDBC behind one contract.
//
// A store is created and recovered by its own factory (journal::store::open), with its own
// options; when the factory returns, index() holds what recovery found and the store
// accepts changes. Nothing in this interface names a segment, an lsn or a checkpoint file.
//
// THREADS. A store has one owner thread: the thread that runs the functions the store
// posts (the broker's io thread; journal::options::post). Every member function is called
// on the owner thread, except id() and failed(), which any thread may call. Completions
// run on the owner thread, and the index changes only there, so the broker reads it
// without a lock. A store may run I/O threads of its own (the journal: one writer thread;
// a database store: its connection's thread); they never call into the broker, they post.
// No member blocks on I/O except read() (a body not in memory) and close(); read_async()
// is the non-blocking way to a body that is not in memory (a store with a reader thread of
// its own, like the journal, never blocks the owner thread in it).
//
// ORDERING.
// - Each append's completion runs exactly once. Completions of accepted appends run in
//   append order; an append refused at once (closed, failed, invalid) completes with its
//   error as soon as the owner thread runs it, possibly before earlier appends complete.
// - The index shows removes (message_remove, a batch's removes, destination_delete,
//   durable_subscription_remove) and definitions (destination_create,
//   durable_subscription_create) as soon as append() returns, so a removed message is
//   never handed out again; it shows a message add once the add is durable, before its
//   completion runs. A remove appended while its add is still in flight wins: the add
//   becomes visible without that target, as a replay of "add, then remove" would leave it.
// - A change is atomic across a crash: a batch (a transaction's sends and acks) is
//   recovered whole or not at all.
//
// DURABLE. A completion without error means the change survives a crash of the process,
// and a crash of the machine within the store's sync setting:
// - journal, sync_policy::always: fdatasync returned before the completion (nothing lost);
//   periodic: at most sync_interval lost to a power cut; never: what the OS had not
//   written back (store.h has the details and what is assumed of the disk);
// - a database store: its COMMIT returned (synchronous_commit decides whether that means
//   flushed locally or applied on a standby).
// A completion with an error means "not known to be durable": after a restart the change
// may be there or not. The broker never acknowledges such a change (a producer's resend
// is caught by the dedup window). Recovery gives back every change completed without
// error, and perhaps some that failed or were still in flight.
//
// FAILED. After an I/O error whose outcome is unknown (a failed write or fsync, a commit
// that did not answer) or a lost fence (a newer master exists), the store is failed for
// good: failed() returns the cause, every later append completes at once with an error
// (the journal: errc::journal_failed), nothing is retried (after a failed fsync the page
// cache may have dropped the data; a new master must recover from what is durable). The
// broker then gives up mastership and exits. Fencing is the store's: the journal checks
// the fence callback around every write; a database store would check its epoch row in
// every transaction.
//
// BARRIER. fence_barrier(done) is a change that carries nothing: `done` runs after every
// append accepted before it has completed (ORDERING), with no error only when the store
// confirmed its mastership AFTER those appends were durable and after the barrier was
// queued: the journal runs it through the same step as a group of records (fdatasync per
// the sync setting, then the synchronous confirm callback), batched with whatever else is
// in flight, so barriers queued together share one confirmation; a database store runs a
// transaction that passes its epoch check. Its use: an answer that depends on nothing new
// being written (a resend answered from the store's duplicate window) must not go out from
// a master that a newer epoch has replaced (issue 12: once a newer epoch exists, nothing
// of an older one is reported). An error means a newer master may exist (the store is
// failed, the broker steps down) or the store is closed: report nothing.
//
// CLOSE. close() completes or fails every accepted append, stops the store's threads and
// returns the first error seen; later appends fail with errc::closed. The destructor
// closes. Call it on the owner thread, never from inside a completion.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>
#include <variant>

#include "journal/identity.h"
#include "journal/live_index.h"
#include "journal/message.h"
#include "journal/records.h"

namespace tandem::journal {

// What the broker asks a store to make durable. The records a store writes for itself
// (the journal's epoch_start, checkpoint and index_state) are not changes.
using change = std::variant<message_add, message_remove, batch, destination_create, destination_delete,
                            durable_subscription_create, durable_subscription_remove>;

// Runs once per append on the owner thread: (error, position). `position` grows with every
// durable change (the journal: the record's lsn; a database: its commit sequence); 0 on
// error. Most callers need only the error.
using completion = std::function<void(std::error_code, std::uint64_t position)>;

// Runs once per read_async on the owner thread: the message or the error read() would give.
using read_completion = std::function<void(result<std::shared_ptr<const message>>)>;

class message_store {
 public:
  virtual ~message_store() = default;

  // ---- changes ----
  // Queues `c` and returns at once; `done` (may be empty) runs when it is durable or
  // failed (see ORDERING and DURABLE). Errors: errc::closed, errc::journal_failed (failed
  // state), errc::invalid_argument (an empty target list), errc::record_too_large, and
  // the store's I/O errors.
  virtual void append(change c, completion done) = 0;

  // Runs `done` (may be empty) once every append before it completed and mastership was
  // confirmed after them (see BARRIER). Errors: errc::closed, errc::journal_failed, the
  // fence's error (lockmgr: lost_mastership), the store's I/O errors. `position` is 0.
  virtual void fence_barrier(completion done) = 0;

  // ---- reads ----
  // The live index, from open() on (see live_index.h).
  virtual const live_index& index() const = 0;
  // The message msg_seq as stored for `target`. May block on I/O when it is not cached.
  // Errors: errc::not_found (not live on `target`), errc::corrupt_file, I/O errors.
  virtual result<std::shared_ptr<const message>> read(std::string_view target, std::uint64_t msg_seq) = 0;
  // The message when the store holds it in memory now, nullptr otherwise. Never does I/O.
  virtual std::shared_ptr<const message> cached(std::string_view /*target*/, std::uint64_t /*msg_seq*/) {
    return nullptr;
  }
  // Offers the store the decoded form of a message it is appending (the owner has it in
  // memory anyway), so that a read soon after, once it is durable, costs no I/O: the journal
  // files it in its body cache as a read would. `msg` must be the message exactly as in
  // the append (msg_seq), targets aside. A store without a cache ignores it.
  virtual void remember(std::uint64_t /*msg_seq*/, std::shared_ptr<const message> /*msg*/) {}
  // True when read_async reads on a thread of the store's and files what it read in a cache
  // that cached() answers from: reading ahead of need (a schedule entry due soon) then
  // costs the owner thread nothing. The default read_async reads inline.
  virtual bool reads_into_cache() const { return false; }
  // read() without blocking the owner thread: `done` runs exactly once, on the owner thread,
  // with what read() would have answered (errc::closed once the store closed). The store may
  // read ahead: later messages of `target` then answer cached(). This default reads inline
  // and calls `done` before it returns (a store without a reader thread).
  virtual void read_async(std::string_view target, std::uint64_t msg_seq, read_completion done) {
    done(read(target, msg_seq));
  }
  // A resend of a message already durable (dedup by producer id and seq).
  bool is_duplicate(std::string_view producer_id, std::uint64_t producer_seq) const {
    return index().is_duplicate(producer_id, producer_seq);
  }
  // Bytes the live messages take in the store (flow control).
  std::uint64_t live_bytes() const { return index().live_bytes(); }

  // A fresh msg_seq: store-wide unique and increasing, never reused, also across restarts
  // once a change carrying it is durable.
  virtual std::uint64_t allocate_msg_seq() = 0;

  // ---- maintenance (owner thread, bounded work per call) ----
  // Makes recovery from the present state cheap (the journal: writes an index
  // checkpoint; a database: nothing to do, completes at once). `done` as for append.
  virtual void checkpoint(completion done) = 0;
  // One step of reclaiming space, copying or reading at most about `max_bytes` (the
  // journal: GC and compaction; a database: deleting acknowledged rows in batches).
  // Returns true while more work remains; the broker calls it from an idle timer.
  virtual bool compact_step(std::uint64_t max_bytes) = 0;

  // ---- state ----
  // The store's 128-bit identity, fixed at creation (identity.h); any thread.
  virtual const store_id& id() const = 0;
  // The cause of the failed state, or {}; any thread.
  virtual std::error_code failed() const = 0;
  virtual std::error_code close() = 0;
};

}  // namespace tandem::journal
