// The journal store's private state, shared by the files that implement it (a file per
// role, as etcd's server/storage/wal/):
//
//   journal/store.cpp           public API, life cycle (close) and the failed state
//   detail/append.cpp           append() and the completions on the owner thread
//   detail/writer.cpp           the writer thread: group commit, roll, checkpoint files,
//                               segment deletion
//   detail/body_cache.cpp       read(): the LRU of decoded messages
//   detail/body_reader.cpp      the reader thread: read_async()
//   detail/compaction.cpp       GC of the log's prefix, index_state, compaction
//   detail/recovery.cpp         open(): recovery, repair of the tail, the first segment
//
// Threads (store.h has the contract): the owner thread runs append, read, compaction and
// every completion, under state_mu; the reader thread preads and decodes what the owner
// asked for (read_jobs, under read_mu) with segment files of its own and posts the result;
// the writer thread owns the "writer thread only"
// fields and reaches the owner side only through queue_mu's queue, a brief state_mu to
// publish a new segment, and the completions it posts.
//
// Lock order: state_mu may be held while taking queue_mu (append under state) or read_mu
// (a read job queued), never the other way round. The writer thread takes state_mu only briefly to publish a new segment;
// it never holds queue_mu while writing.
#pragma once

#ifdef TANDEM_UNSAFE_FAULTS  // deliberate defects for tandem-drill's self-test (tools/drill/unsafe_faults.cpp)
extern "C" bool tandem_unsafe_fault(const char* name);
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "journal/apply.h"
#include "journal/detail/journal_walk.h"
#include "journal/detail/late_adds.h"
#include "journal/detail/seq_hash_map.h"
#include "journal/format.h"
#include "journal/store.h"

namespace tandem::journal::detail {

using clock = std::chrono::steady_clock;
inline constexpr std::size_t hdr = format::record_header_bytes;
inline constexpr auto slow_fsync_threshold = std::chrono::seconds(1);

inline std::chrono::milliseconds since(clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
}

// What append() hands the writer thread.
// barrier: no bytes; completes with the group it joins (message_store.h, BARRIER).
enum class entry_kind { record, checkpoint, delete_segment, internal_record, barrier };

// What a compacted segment defines: its destinations' and subscriptions' create records.
enum class definition_kind { destination, subscription };

// Who appends a record: the broker, compaction (a copy of something already in the log),
// or the store itself (index_state).
enum class append_kind { user, compaction_copy, internal };

struct entry {
  entry_kind kind = entry_kind::record;
  std::vector<std::byte> buf;  // record: header(32) + payload + zero pad
  std::uint32_t payload_bytes = 0;
  record_type type{};
  completion done;
  bool relocation = false;  // a compaction copy (counted in copies_in_flight)
  std::uint64_t append_no = 0;  // owner-side order of appends (see impl::late)
  // Checkpoint.
  std::uint64_t checkpoint_lsn = 0;
  std::uint64_t checkpoint_replay_segment = 0;
  std::chrono::microseconds checkpoint_encode{0};  // the owner thread's walk of the index
  std::chrono::milliseconds checkpoint_write{0};   // seal, write, sync and rename of the file
  // Delete.
  std::uint64_t segment = 0;
  // Filled by the writer.
  location where;
  std::uint64_t lsn = 0;
  std::error_code ec;
};

// One record to read on the reader thread: the message msg_seq at `where`.
struct read_item {
  std::uint64_t msg_seq = 0;
  location where;
};

// What the reader thread reads for the owner: `items` (the first is the one asked for, the
// rest read-ahead), then `done` runs on the owner thread with one result per item.
struct read_job {
  std::vector<read_item> items;
  std::uint64_t first_segment = 0;  // segments below it are deleted: close their files
  std::function<void(std::vector<result<std::shared_ptr<const message>>>)> done;
};

// Reads and decodes the message msg_seq from the record at `where` of the open segment
// `f`. No state: any thread.
result<std::shared_ptr<const message>> read_message_at(fs::file& f, const location& where, std::uint64_t msg_seq);

}  // namespace tandem::journal::detail

namespace tandem::journal {

struct store::impl : std::enable_shared_from_this<impl> {
  using clock = detail::clock;
  using entry = detail::entry;
  using entry_kind = detail::entry_kind;
  using definition_kind = detail::definition_kind;
  using append_kind = detail::append_kind;
  using position = detail::position;

  impl(fs::file_system& f, std::filesystem::path d, options o)
      : fs(f), dir(std::move(d)), jdir(dir / format::journal_dir_name), opts(std::move(o)),
        idx(opts.producer_window, opts.max_producers) {}

  fs::file_system& fs;
  const std::filesystem::path dir;
  const std::filesystem::path jdir;
  options opts;
  store_id id;
  recovery_report report;

  // ---- owner side, guarded by state_mu ----
  mutable std::mutex state_mu;
  journal::index idx;
  position durable_end;          // end of the last completed record
  std::uint64_t durable_lsn = 0;
  std::uint64_t max_epoch = 0;   // fencing state carried into checkpoints
  position cut;
  std::set<std::uint64_t> segments;  // segment files present (writer inserts on roll)
  std::map<std::uint64_t, std::uint64_t> checkpoints;  // kept: lsn -> replay segment
  std::uint64_t last_checkpoint_lsn = 0;
  bool checkpoint_in_flight = false;
  std::uint64_t bytes_since_checkpoint = 0;
  // What the next open would replay after the newest checkpoint (close_checkpoint_min_*):
  // unlike bytes_since_checkpoint it starts with what open replayed.
  std::uint64_t replay_records_since_checkpoint = 0;
  std::uint64_t replay_bytes_since_checkpoint = 0;
  // Compaction copies made durable since the last checkpoint was requested: what the
  // copies' checkpoint during a long compaction counts (copy_checkpoint_records_locked).
  std::uint64_t copies_since_checkpoint = 0;
  bool closed = false;
  // Removes and drops appended while earlier adds are in flight (late_adds.h). Drops are
  // noted only while some append is in flight: otherwise no add can complete after them.
  std::uint64_t append_counter = 0;
  std::uint64_t in_flight = 0;
  detail::late_adds late;
  // Compaction of one segment at a time: msg_seq -> targets that pointed into it, and the
  // definitions located in it.
  std::uint64_t compact_segment = 0;
  std::map<std::uint64_t, std::vector<std::string>> compact_pending;
  std::vector<std::pair<definition_kind, std::string>> compact_definitions;
  std::uint64_t compact_copied = 0;
  std::uint64_t compact_bytes = 0;
  std::uint64_t copies_in_flight = 0;        // compaction copies appended, not completed
  bool auto_compacting = false;              // the store's own steps continue as copies complete
  // The store's own next step waits for the checkpoint in writing (complete(): a long
  // compaction rests while its copies' checkpoint is written).
  bool compaction_resting = false;
  std::set<std::uint64_t> uncompactable;     // a live message there could not be read
  // compaction_reads_on_reader_thread: bodies read for the current step (by msg_seq) and
  // failed reads; while a read is out, compact_step waits for it.
  std::map<std::uint64_t, result<std::shared_ptr<const message>>> compact_read;
  bool compact_reading = false;
  // index_state (format.h section 5): GC deletes only segments below state_segment, the
  // segment of the newest durable index_state set (0: none since open). A set is one or
  // more records appended back to back; it counts once all of them are durable.
  std::uint64_t state_segment = 0;
  std::uint64_t state_parts_in_flight = 0;
  std::uint64_t state_first_segment = 0;
  // Producer seqs of adds appended but not durable yet, in append order: an index_state
  // appended now must hold the windows as they will be once these complete.
  struct pending_producer_seq {
    std::uint64_t append_no;
    std::string producer_id;
    std::uint64_t producer_seq;
  };
  std::deque<pending_producer_seq> pending_producers;
  // The checkpoint image buffer, handed to the writer and back, so encoding a big index
  // reuses warm memory instead of faulting in tens of MB on the owner thread.
  std::vector<std::byte> checkpoint_buffer;
  // Body cache: LRU of decoded messages by msg_seq.
  struct cached {
    std::uint64_t msg_seq;
    std::shared_ptr<const message> msg;
    std::size_t bytes;
  };
  std::list<cached> lru;
  detail::seq_hash_map<std::list<cached>::iterator> cache;  // never rehashes whole (seq_hash_map.h)
  std::size_t cache_bytes = 0;
  std::map<std::uint64_t, std::unique_ptr<fs::file>> read_files;
  // Messages a read_async job is reading now (asked or read ahead), with the read_asyncs that
  // asked for one of them meanwhile (target, completion): they get that job's answer instead
  // of a read of their own, so a record is read once however many ask (a timer expiry with a
  // hundred due schedule entries used to queue a hundred jobs of 65 overlapping reads).
  std::unordered_map<std::uint64_t, std::vector<std::pair<std::string, read_completion>>> reads_in_flight;

  // ---- queue ----
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::vector<std::unique_ptr<entry>> queue;
  bool stopping = false;
  // The queue length at which the waiting writer acts (1 when it waits for work, the last
  // group's size while it lingers): push() wakes it only then, so 64 appenders re-appending
  // during a linger cost one wake-up of the writer thread, not 64 (issue 19).
  std::size_t writer_wakes_at = 1;

  // ---- failure (any thread) ----
  std::atomic<bool> failed_flag{false};
  mutable std::mutex fail_mu;
  std::error_code failed_ec;

  // ---- reader thread (detail/body_reader.cpp) ----
  std::mutex read_mu;
  std::condition_variable read_cv;
  std::deque<detail::read_job> read_jobs;
  bool read_stopping = false;
  std::map<std::uint64_t, std::unique_ptr<fs::file>> reader_files;  // reader thread only
  std::thread reader;

  // ---- writer thread only ----
  std::unique_ptr<fs::file> seg_file;
  std::uint64_t seg_seq = 0;
  std::uint64_t seg_off = 0;
  std::uint64_t next_lsn = 1;
  bool dirty = false;
  clock::time_point last_sync = clock::now();
  clock::duration last_sync_took{};  // bounds the group linger (run_writer)
  std::vector<std::uint64_t> writer_checkpoints;  // lsns of checkpoint files, ascending
  std::map<std::uint64_t, std::uint64_t> writer_checkpoint_replay;
  // The checkpoint file being written on checkpoint_thread (writer.cpp, "checkpoint files
  // off the append path"): started and joined by the writer thread, which owns both.
  std::unique_ptr<entry> checkpoint_job;
  std::thread checkpoint_thread;
  bool checkpoint_file_done = false;  // under queue_mu: checkpoint_thread finished its file
  std::atomic<std::uint64_t> head_segment{0};
  std::thread writer;
  io_stats stats;

  std::error_code close_error;

  // ---- any thread (store.cpp) ----
  void emit(const event& e) const {
    if (opts.report) opts.report(e);
  }
  void post(std::function<void()> f) {
    if (opts.post)
      opts.post(std::move(f));
    else
      f();
  }
  std::error_code check_fence() {
#ifdef TANDEM_UNSAFE_FAULTS  // defect skip_fence: the writer never asks the fence
    if (tandem_unsafe_fault("skip_fence")) return {};
#endif
    if (!opts.fence) return {};
    return opts.fence();
  }
  std::error_code check_confirm() {
#ifdef TANDEM_UNSAFE_FAULTS
    if (tandem_unsafe_fault("skip_fence")) return {};
#endif
    if (opts.confirm) return opts.confirm();
    return check_fence();
  }
  std::error_code failed() const;
  // Puts the store in the failed state (first error wins) and reports journal_failed.
  void fail(std::error_code ec, const std::filesystem::path& file, std::string_view what);
  std::error_code close();

  // ---- writer thread (detail/writer.cpp) ----
  void record_fsync(clock::duration took);
  std::error_code timed_sync(fs::file& f);
  std::error_code roll(bool skip_existing);
  std::error_code sync_head(std::string_view what);
  void write_group(std::vector<std::unique_ptr<entry>>& group);
  // A checkpoint entry: what must precede its file on the writer thread, then the file on
  // checkpoint_thread (write_checkpoint_file); finish_checkpoint back on the writer thread.
  void start_checkpoint(std::unique_ptr<entry> e, std::vector<std::unique_ptr<entry>>& done);
  void write_checkpoint_file();
  void finish_checkpoint(std::vector<std::unique_ptr<entry>>& done);
  // A barrier with no record in its group: the confirm step alone.
  std::error_code confirm_barrier();
  void delete_segment(entry& e);
  void run_writer();
  // checkpoint_finished: checkpoint_thread reported its file done (queue_mu's flag).
  void process(std::vector<std::unique_ptr<entry>>& batch, bool checkpoint_finished);

  // ---- owner thread: append and completion (detail/append.cpp) ----
  class append_observer;
  void apply_durable(entry& e);
  void complete(std::vector<std::unique_ptr<entry>>& done, const std::map<std::uint64_t, std::uint64_t>& kept);
  std::unique_ptr<entry> make_record_entry(const record& r, bool compaction_copy = false);
  void push(std::unique_ptr<entry> e);
  void reject(completion done, std::error_code ec);
  void enqueue_locked(std::unique_ptr<entry> e);
  void append_locked(record r, completion done, append_kind kind);
  void request_checkpoint(completion done);
  void after_compaction_step(bool more);  // compaction.cpp
  void checkpoint_copies_if_long();       // compaction.cpp
  void request_barrier(completion done);
  bool close_wants_checkpoint();  // takes state_mu

  // ---- open (detail/recovery.cpp) ----
  // A fresh segment for this epoch, begun with epoch_start and synced; `walked` says
  // where the recovered log ends.
  std::error_code start_epoch(const detail::walk_result& walked);

  // ---- owner thread: reads (detail/body_cache.cpp) ----
  result<std::shared_ptr<const message>> read_locked(const location& where, std::uint64_t msg_seq);
  std::shared_ptr<const message> cached_locked(std::uint64_t msg_seq);
  void cache_insert_locked(std::uint64_t msg_seq, const std::shared_ptr<const message>& msg);

  // ---- reader thread and its jobs (detail/body_reader.cpp) ----
  // Queues a job (owner thread, state_mu held); after close its `done` gets errc::closed.
  void queue_read_locked(detail::read_job job);
  void read_async(std::string target, std::uint64_t msg_seq, read_completion done);
  void run_reader();
  void stop_reader();

  // ---- owner thread: GC and compaction (detail/compaction.cpp) ----
  bool collect_prefix_locked(std::uint64_t head);
  void append_index_state_locked();
  std::uint64_t pick_compaction_locked(std::uint64_t head) const;
  // own: a step of the store's own compaction (options::auto_compact_bytes), which stops
  // at the copies' checkpoint bound; compact_step() of the API is not bounded so.
  bool compact_step(std::uint64_t max_bytes, bool own = false);
  void compact_read_async_locked(std::vector<detail::read_item> items, std::uint64_t max_bytes, bool own);
  // How many copies the store's own compaction may leave after the newest checkpoint
  // before it checkpoints them (0 = never). Requires state_mu.
  std::uint64_t copy_checkpoint_records_locked() const;
  void unreadable_in_compaction_locked(const location& where, std::error_code ec);
};

}  // namespace tandem::journal
