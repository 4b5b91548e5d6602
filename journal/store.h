// tandem::journal::store: the journal, the message store of one broker process
// (message_store.h has the contract every store keeps: threads, ordering, what "durable"
// means, the failed state; this header adds what is the journal's own).
//
// Life cycle: the broker acquires the lockmgr lock, bumps the epoch, then calls
// store::open(dir, options) which recovers (checkpoint + replay), starts a fresh segment
// stamped with options.epoch, writes and syncs an epoch_start record, starts the writer
// thread and returns. The store is created only by create_store() (identity.h). Where the
// code is: journal/README.md.
//
// Threads and ownership:
// - One writer thread per store, owned by it, does every segment write, fsync, roll,
//   and segment deletion, and the steps of a checkpoint that are ordered with appends (the
//   head's fdatasync, the fence check, later the checkpoint record). It never touches the
//   index. The checkpoint file itself (write, fsync, rename, directory fsync) is written
//   on a short-lived thread the writer starts and joins, so appends go on meanwhile; the
//   checkpoint counts (kept, GC, its record) only once that file is written.
// - The "owner thread" is whatever runs the functions handed to options.post. The broker
//   passes a post that does asio::post(io_context, f), so completions, index updates and
//   user callbacks all run on the io thread and the index needs no mutex. The default post
//   runs f inline on the writer thread (tools, tests); then call append/read/index only
//   from one thread at a time (the store also serialises its own index updates with an
//   internal mutex, so appends from a test thread racing completions are safe).
// - One reader thread per store, owned by it, does the preads of read_async(): it opens
//   segment files and decodes records, and touches no other state.
// - append(), read(), read_async(), index(), allocate_msg_seq(), compact_step() must be called from the
//   owner thread (or, with the default post, from one thread at a time).
// - close() / the destructor: call from the owner thread, not from inside a callback.
//   Pending appends are written and completed before close returns; with a posting `post`
//   the completions are posted and run later if the owner's loop still runs.
//
// Durability per sync policy (the loss window is what a power cut may lose after the
// callback reported success):
// - sync_policy::always (default): one fdatasync per group commit; callbacks run only after
//   it returned. Loss window: none.
// - sync_policy::periodic: callbacks run after the write() (data in the page cache); the
//   writer fdatasyncs at least every `sync_interval`. Loss window: sync_interval (plus the
//   fsync's own duration). A process crash (not power/OS) loses nothing.
// - sync_policy::never: never fdatasync except on segment roll, checkpoint and close.
//   Loss window: whatever the OS had not written back (Linux: dirty_expire, ~30 s).
// After a power failure, open() truncates what was written after the last completed
// fdatasync if any of it is damaged, valid records among it included (a torn tail,
// journal/format.h section 7): that is nothing acknowledged with `always`, and at most the
// loss window with the others. A power failure never makes open() refuse the store.
//
// What these promises assume of the disk (journal/format.h section 9): fdatasync returns
// only when the data is durable, and a write interrupted by a power failure damages only
// the bytes written ("powersafe overwrite": sector writes complete or leave the old
// contents). Group commits share sectors with acknowledged records, so a disk without
// that property (some consumer flash without power-loss protection) can destroy
// acknowledged records at a power failure; such storage is not supported.
//
// Failure: a failed write or fdatasync, or a fence callback returning an error, fails
// every append of that group with the error and puts the store in the failed state: every
// later append fails at once with errc::journal_failed. No retry: after a failed fsync the
// kernel may have dropped the dirty pages (LevelDB, PostgreSQL "fsyncgate").
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "journal/fs/file_system.h"
#include "journal/identity.h"
#include "journal/index.h"
#include "journal/message_store.h"
#include "journal/records.h"
#include "journal/standby.h"

namespace tandem::journal {

enum class sync_policy { always, periodic, never };

enum class recovery_mode {
  // Truncate a torn tail of the last segment; refuse any other damage
  // (errc::mid_log_corruption). The broker's default.
  tolerate_torn_tail,
  // Skip every damaged range and report exactly what was skipped (bytes, file, offset).
  // Messages in the skipped ranges are lost; an operator action.
  salvage,
};

// Where and what a damaged range is.
struct damage {
  std::filesystem::path file;
  std::uint64_t offset = 0;  // first damaged byte
  std::uint64_t lsn = 0;     // lsn expected there (previous valid lsn + 1)
  std::string reason;        // "checksum mismatch", "record runs past end of file", ...
  std::uint64_t bytes = 0;   // bytes of the damaged range (to the next valid record or end)
};

// Structured events for the process's log (libraries do not log).
enum class event_kind {
  torn_tail_truncated,   // file, offset, bytes, reason
  corruption_skipped,    // salvage mode: file, offset, bytes, lsn, reason
  corruption_found,      // refusing: file, offset, bytes, lsn, reason
  fenced_records,        // file (first), offset (first), count, first_lsn..last_lsn, bytes
  checkpoint_loaded,     // file, first_lsn = covered lsn, duration
  checkpoint_fallback,   // file that was rejected, reason
  checkpoint_written,    // file, first_lsn = covered lsn, bytes, duration
  slow_fsync,            // file, duration (> 1 s)
  segment_created,       // file
  segment_deleted,       // file, reason (always the log's first segment, see compact_step)
  compaction_done,       // file (the compacted segment), count = records copied, bytes
  temp_file_removed,     // file
  journal_failed,        // file, reason (the error), the store is now failed
  // Recovery rewrote and fdatasync'd the part of the log it replayed that is not known to
  // be durable (after the last group_start): file, offset, bytes, duration. A master whose
  // fsync failed leaves records the page cache still serves; nothing is built on them
  // until they are on disk (issue 12, bug 6).
  tail_made_durable,
  // Records that an earlier master replayed and built on (its epoch_start names them as
  // its history) are gone: never durable, and removed by a power loss (a store written by
  // a build without tail_made_durable). file, offset, bytes = the missing range;
  // first_lsn..last_lsn, count; reason. Nothing in it was acknowledged under
  // sync_policy::always (format.h section 7).
  unsynced_records_lost,
};
std::string_view to_string(event_kind k) noexcept;

struct event {
  event_kind kind{};
  std::filesystem::path file;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::uint64_t count = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
  std::chrono::milliseconds duration{0};
  // checkpoint_written: how long the owner thread spent walking the index into the image
  // (it serves nothing else meanwhile); duration is the writer's part.
  std::chrono::microseconds owner_duration{0};
  std::string reason;
};

// Called on the writer thread (runtime events) or the thread calling open (recovery).
// Must be thread-safe and must not call back into the store.
using reporter = std::function<void(const event&)>;

struct options {
  fs::file_system* fs = nullptr;              // nullptr = fs::posix_file_system()
  std::optional<store_id> expected_store_id;  // open refuses another id (errc::wrong_store)
  std::uint64_t epoch = 0;                    // this master's epoch (from lockmgr); must be
                                              // >= every epoch in the journal
  std::string broker_name;                    // written into epoch_start
  std::uint64_t segment_bytes = format::default_segment_bytes;
  sync_policy sync = sync_policy::always;
  std::chrono::milliseconds sync_interval{100};  // for sync_policy::periodic
  // sync_policy::always: when fewer records are queued than the previous group held, the
  // writer waits at most this long (and at most half its last fdatasync) for as many
  // before it writes; never after a group of one, so a lone appender never waits. Fuller
  // groups when many appenders take turns; 0 = write whatever is queued at once.
  std::chrono::microseconds group_linger{200};
  recovery_mode recovery = recovery_mode::tolerate_torn_tail;
  std::uint64_t checkpoint_every_bytes = 64ull << 20;  // appended bytes between checkpoints
  // close() writes its final checkpoint only when the log that the next open would replay
  // after the newest checkpoint holds at least this many records OR this many bytes; 0 and
  // 0 (the default) = always. A short tail replays in milliseconds, and the checkpoint's
  // syncs (checkpoint file, directory, checkpoint record) are on a planned handover's
  // critical path; the bound keeps every later open's replay short (docs/failover.md
  // "Planned handover"). The count includes what this store's own open replayed.
  std::uint64_t close_checkpoint_min_records = 0;
  std::uint64_t close_checkpoint_min_bytes = 0;
  // The epoch of the master that released the store cleanly just before this open
  // (lockmgr: acquisition::previous when previous_released_cleanly), 0 = none or unknown.
  // When it is the newest epoch in the log, that master's successful close synced all it
  // wrote, so open skips the re-sync of the recovered tail (issue 12, bug 6); for any other
  // value the tail is re-synced. Give 0 unless the release is known clean: the skip is only
  // as safe as that knowledge (docs/failover.md "Planned handover").
  std::uint64_t clean_release_epoch = 0;
  std::size_t body_cache_bytes = 64ull << 20;          // LRU of decoded messages
  std::size_t producer_window = 1024;                  // dedup: last N seqs per producer
  // dedup: at most N producers keep a window; one more drops the least recently recorded
  // to (its resends are then new messages). 0 = no bound. live_index::max_producers.
  std::size_t max_producers = 0;
  // Compaction picks the oldest sealed segment whose live bytes are below this fraction
  // of the segment size (see compact_step).
  double compact_below_live_fraction = 0.5;
  // The store compacts on its own: after each checkpoint it runs compact_step with this
  // budget, and again each time the copies of the previous step are durable, until there
  // is nothing left to do. 0 = only GC on its own; compaction only when compact_step is
  // called. Each step runs on the owner thread and may pread up to this many bytes (bodies
  // not in the cache: the one blocking read left on the owner thread, see compact_step).
  std::uint64_t auto_compact_bytes = 1ull << 20;
  // The store's own compaction checkpoints its copies (0 = never): when it stops and the
  // log since the newest checkpoint holds at least this many records; and while it goes on,
  // after every max(this, live messages / 32) copies (records: a takeover's replay costs
  // per record), once they are durable, its steps resting until that checkpoint is written
  // (detail/compaction.cpp, copy_checkpoint_records_locked, says why live / 32). Compaction
  // copies whole segments' live messages right after a checkpoint, several segments in a
  // row when the disk bound picks them, so without it a takeover soon after or in the
  // middle replays every copy (seen on CephFS: 30,000-49,000 records, 0.5-0.8 s of a
  // 100,000-pending takeover); with it, about this many. compact_step() called by hand is
  // not bounded so (nothing would take the checkpoint between its calls).
  std::uint64_t compaction_checkpoint_min_records = 0;
  // Where compaction reads the bodies it copies that are not in the cache. false: in
  // compact_step, on the owner thread (a tool, a test that steps compaction by hand and
  // expects the copies appended when it returns). true: on the reader thread, like
  // read_async(); compact_step returns at once and the copies are appended from the read's
  // completion (posted to the owner), which then takes the next step itself. A broker sets
  // it: its owner thread is the io thread, which a hung NFS or CephFS mount must never
  // block (issue 17, finding 8).
  bool compaction_reads_on_reader_thread = false;
  // Runs completions and index updates on the owner thread. Default: inline.
  std::function<void(std::function<void()>)> post;
  // Called by the writer thread before each write and after each fsync; non-zero fails the
  // group (never acknowledged) and the store (e.g. lockmgr says we are deposed). Must be
  // cheap (an atomic read) and thread-safe. open() also calls it once, on its own thread,
  // after recovery's reading and before its first write (which then does not happen on an
  // error: open returns it).
  std::function<std::error_code()> fence;
  // Called by the writer thread after each group is written (and, policy always, fdatasync'd)
  // and before any of it completes; non-zero fails the group and the store like `fence`.
  // Unlike `fence` it must answer from the store itself, synchronously (lockmgr's confirm():
  // a stat and a small read), so that no append completes once a newer master's epoch
  // exists. Unset = `fence`.
  std::function<std::error_code()> confirm;
  reporter report;
  // A slave's preload of the newest checkpoint (journal/standby.h: checkpoint_preloader::
  // take()). Open uses it in place of reading and decoding that file, and of reading the
  // fallback whole, when the files are still the ones preloaded (a fingerprint read each);
  // otherwise it reads them as without it. Open moves the index out of it.
  std::shared_ptr<detail::preloaded_checkpoint> preloaded;
  // Recovery drops this host's cached pages of the last segment before reading it
  // (fs::file::drop_cached_pages says why): for a store another host may have written
  // (network, cluster and FUSE file systems). On a local one the cache is the file, and
  // the drop only costs a re-read from the disk (~4 ms for a 5 MB tail on ext4).
  bool last_segment_past_cache = true;
};

struct recovery_report {
  bool from_checkpoint = false;
  std::filesystem::path checkpoint_file;  // when from_checkpoint
  std::uint64_t records_replayed = 0;
  // Bytes of sealed segments the replay took from a slave's preload (options::preloaded,
  // journal/standby.h) instead of reading the files.
  std::uint64_t preloaded_segment_bytes = 0;
  std::uint64_t live_messages = 0;  // (target, message) pairs
  std::uint64_t live_bytes = 0;
  std::uint64_t segments = 0;       // segment files present after recovery
  std::uint64_t last_lsn = 0;       // last valid lsn recovered
  std::chrono::milliseconds duration{0};
  std::optional<damage> torn_tail;        // truncated
  // The recovered tail was not re-synced because options::clean_release_epoch named the
  // newest epoch in the log (false: re-synced, or nothing after the last sync point).
  bool tail_trusted_after_clean_release = false;
  std::vector<damage> skipped;            // salvage mode
  std::optional<damage> refused;          // set when open failed with mid_log_corruption
  std::uint64_t fenced_records = 0;
  std::uint64_t fenced_first_lsn = 0;
  std::uint64_t fenced_last_lsn = 0;
  std::uint64_t fenced_bytes = 0;
  // Ranges of records lost after a later master built on them (event unsynced_records_lost);
  // damage::lsn is the first lost lsn.
  std::vector<damage> unsynced_lost;
};

// Writer-thread counters for the broker's /metrics (added by the broker for its fsync
// latency histogram). Relaxed atomics: the writer thread adds, any thread reads.
struct io_stats {
  // Upper bounds of the fsync latency buckets in seconds (Prometheus "le"); the last
  // counter of fsync_buckets is +Inf. Each fsync is counted in ONE bucket (not cumulative).
  static constexpr std::array<double, 12> fsync_bucket_seconds{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                               0.05,   0.1,   0.2,   0.5,   1.0,  5.0};
  std::atomic<std::uint64_t> appends{0};            // append() calls accepted
  std::atomic<std::uint64_t> fsyncs{0};             // fdatasync calls (segment, periodic, close)
  std::atomic<std::uint64_t> fsync_nanoseconds{0};  // their summed duration
  // Gathered writes of records (one per group commit, two when a group rolls a segment)
  // and the records in them: group_records / groups is the mean group size.
  std::atomic<std::uint64_t> groups{0};
  std::atomic<std::uint64_t> group_records{0};
  std::atomic<std::uint64_t> lingers{0};  // times the writer waited for a group to fill
  // Checkpoints requested, and the owner thread's time walking the index into their images:
  // the one part of a checkpoint that holds the owner thread, growing with the live entries.
  std::atomic<std::uint64_t> checkpoint_encodes{0};
  std::atomic<std::uint64_t> checkpoint_encode_nanoseconds{0};
  std::atomic<std::uint64_t> checkpoint_encode_max_nanoseconds{0};
  std::array<std::atomic<std::uint64_t>, fsync_bucket_seconds.size() + 1> fsync_buckets{};
};

class store final : public message_store {
 public:
  // Recovers DIR (see the header comment) and returns a ready store. `report` is filled in
  // both cases (on mid_log_corruption, report.refused says where). Errors: errc::not_a_store,
  // wrong_store, unsupported_version, mid_log_corruption, fenced (a journal epoch above
  // options.epoch), OS errors naming nothing (the reporter got the file).
  static result<std::unique_ptr<store>> open(const std::filesystem::path& dir, options opts,
                                             recovery_report& report);

  ~store() override;  // close()
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Queues `c` and returns at once; `done` (may be empty) runs exactly once, via
  // options.post, once the record is durable per the sync policy, or failed. What becomes
  // visible in the index when: message_store.h, ORDERING (a definition's location follows
  // once durable). A record larger than a segment: errc::record_too_large.
  void append(change c, completion done) override;
  // The same with the journal's record type, which the broker builds; the store's own
  // records (epoch_start, checkpoint, index_state) are refused with errc::invalid_argument.
  void append(record r, completion done);
  // Either of the above from one of the record structs (message_add{...}, batch{...}):
  // they convert to both variants.
  template <class T>
    requires std::is_constructible_v<change, T&&> && (!std::is_same_v<std::remove_cvref_t<T>, change>)
  void append(T&& c, completion done) {
    append(change(std::forward<T>(c)), std::move(done));
  }

  // The decoded message msg_seq on `target`, through the LRU body cache. Blocking pread on
  // a cache miss. Errors: errc::not_found, errc::corrupt_file, OS errors.
  result<std::shared_ptr<const message>> read(std::string_view target, std::uint64_t msg_seq) override;
  result<std::shared_ptr<const message>> read(const location& where, std::uint64_t msg_seq);
  // From the body cache only (no I/O); nullptr on a miss.
  std::shared_ptr<const message> cached(std::string_view target, std::uint64_t msg_seq) override;
  // Files `msg` in the body cache (message_store.h); it is found once the index has it.
  void remember(std::uint64_t msg_seq, std::shared_ptr<const message> msg) override;
  bool reads_into_cache() const override { return true; }
  // read() on the store's reader thread (one per store, started by open, joined by close):
  // the owner thread only looks up locations; the pread and the decoding run on the reader,
  // the result is put in the body cache and `done` runs via options.post. One job reads
  // the message and up to read_ahead_count later live messages of `target` that are not
  // cached (at most read_ahead_bytes), so draining a backlog costs one round trip per batch.
  // Errors as read(); errc::closed after close().
  void read_async(std::string_view target, std::uint64_t msg_seq, read_completion done) override;
  static constexpr std::size_t read_ahead_count = 64;
  static constexpr std::uint64_t read_ahead_bytes = 1ull << 20;

  const journal::index& index() const override;
  // Writer counters (see io_stats); safe from any thread.
  const io_stats& stats() const;
  // A fresh msg_seq (store-wide unique, never reused, even across restarts once durable).
  std::uint64_t allocate_msg_seq() override;

  // One small step of GC and compaction. Returns true when more work remains. The store
  // runs it itself after each checkpoint and each index_state set it wrote, with
  // options.auto_compact_bytes (so a broker need not call it); a caller may add steps,
  // e.g. from an idle timer.
  //
  // GC deletes segments only as a PREFIX of the log: the first segment present, and only
  // when (a) nothing live points into it (no live message, no definition of an existing
  // destination or durable subscription), (b) an index_state set written after it is
  // durable, and (c) both kept checkpoints replay from a later segment. Then the segments
  // left are always a suffix of the log, and a full replay (every checkpoint lost) equals
  // the checkpointed index. Why: a record only cancels records before it (a remove its
  // add, a delete its create), so deleting a prefix never keeps a cancelled record
  // without its canceller; deleting a segment in the middle can (format.h section 8).
  //
  // Compaction copies everything still live in one sealed segment to the head, at most
  // `max_bytes` per step (bodies not in the cache are read inline, on the owner thread: not
  // moved to the reader thread yet, because the fault tests drive compaction step by step
  // and count its sync points, which asynchronous copies would make timing-dependent):
  // live messages (as compaction copies, targets cut to those still
  // live there) and the create records of the destinations and subscriptions defined
  // there. It picks the OLDEST sealed segment with live bytes below
  // compact_below_live_fraction of a segment, or, when disk use exceeds twice the live
  // bytes (index::live_bytes() + definition_bytes()) plus two segments, the first segment
  // whatever its fill: it blocks every deletion behind it. Oldest first because only the
  // first segment can ever be deleted. After the copies are durable the segment holds
  // nothing live and GC deletes it once the checkpoints pass it; a crash at any point
  // loses nothing (the original stays until then) and duplicates nothing (a copy replaces
  // the original's location on replay). Bound (steady state, when compact_step is called
  // until it returns false and checkpoints pass the head): disk <= 2 x live + 2 segments.
  // A checkpoint counts once its file is written (on a thread of its own, appends going
  // on meanwhile), so GC behind the store's own checkpoints lags by what is appended
  // during that write too (milliseconds).
  bool compact_step(std::uint64_t max_bytes = 4ull << 20) override;

  // message_store.h, BARRIER. The writer takes a barrier into the group being written
  // (after its records' fdatasync and confirm, the barrier completes with them); a barrier
  // that finds no record to go with runs the confirm alone: with sync_policy::always
  // nothing is left unsynced between groups, and with periodic or never the records
  // before it completed without a sync by that policy, so durable means what it means for
  // them.
  void fence_barrier(completion done) override;

  // Writes a checkpoint of the index now (queued behind pending appends); `done` on owner.
  // The owner thread only walks the index into a buffer kept from the previous checkpoint
  // (~33 bytes per live message); the checksum and the write run on the writer thread.
  void checkpoint(completion done = {}) override;

  // Error of the failed state (journal_failed / the original cause) or {}.
  std::error_code failed() const override;
  const store_id& id() const override;
  const recovery_report& recovery() const;

  // Drains pending appends, writes a final checkpoint (see close_checkpoint_min_*), makes
  // everything written durable, stops the writer thread. Later appends fail with
  // errc::closed. Returns the first error seen during the close, or the error that failed
  // the journal earlier: no error means every write and fdatasync of the log's segments
  // succeeded (a checkpoint file that cannot be written does not fail the store).
  std::error_code close() override;

 private:
  struct impl;
  explicit store(std::shared_ptr<impl> p);
  // Shared with the completions posted to the owner thread, so one that runs after the
  // store object is gone still finds its state.
  std::shared_ptr<impl> impl_;
};

}  // namespace tandem::journal
