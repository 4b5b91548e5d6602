// The store: recovery (open), the group-commit writer thread, the index updates on the
// owner thread, the body cache, checkpoints, GC and compaction.
//
// Divisions of this file:
//   1. entries: what append() hands the writer thread
//   2. impl: state, split by owner (state_mu_ side) and writer (writer-only fields)
//   3. the writer thread: group commit, roll, checkpoint files, segment deletion
//   4. completions on the owner thread
//   5. recovery
//   6. public API: append, read, checkpoint, compact_step, close
//
// Lock order: state_mu_ may be held while taking queue_mu_ (append under state), never the
// other way round. The writer thread takes state_mu_ only briefly to publish a new segment;
// it never holds queue_mu_ while writing.
#include "journal/store.h"

#ifdef TANDEM_UNSAFE_FAULTS  // deliberate defects for tandem-drill's self-test (tools/drill/unsafe_faults.cpp)
extern "C" bool tandem_unsafe_fault(const char* name);
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "journal/detail/checkpoint.h"
#include "journal/detail/journal_walk.h"
#include "journal/detail/message_view.h"
#include "journal/errc.h"
#include "journal/format.h"

namespace tandem::journal {

std::string_view to_string(event_kind k) noexcept {
  switch (k) {
    case event_kind::torn_tail_truncated: return "torn_tail_truncated";
    case event_kind::corruption_skipped: return "corruption_skipped";
    case event_kind::corruption_found: return "corruption_found";
    case event_kind::fenced_records: return "fenced_records";
    case event_kind::checkpoint_loaded: return "checkpoint_loaded";
    case event_kind::checkpoint_fallback: return "checkpoint_fallback";
    case event_kind::checkpoint_written: return "checkpoint_written";
    case event_kind::slow_fsync: return "slow_fsync";
    case event_kind::segment_created: return "segment_created";
    case event_kind::segment_deleted: return "segment_deleted";
    case event_kind::compaction_done: return "compaction_done";
    case event_kind::temp_file_removed: return "temp_file_removed";
    case event_kind::journal_failed: return "journal_failed";
  }
  return "unknown";
}

namespace {

using clock = std::chrono::steady_clock;
using detail::position;
constexpr std::size_t hdr = format::record_header_bytes;
constexpr auto slow_fsync_threshold = std::chrono::seconds(1);

// ---------------------------------------------------------------------------------------
// 1. entries
// ---------------------------------------------------------------------------------------

// What the owner thread applies to the index once a message_add is durable.
struct add_info {
  std::uint64_t msg_seq = 0;
  std::uint32_t item = 0;  // position in its batch (0 outside a batch): orders it with removes
  std::vector<std::string> targets;
  std::string producer_id;
  std::uint64_t producer_seq = 0;
  std::int64_t expires_ms = 0;
  std::uint8_t priority = 0;
};

enum class entry_kind { record, checkpoint, delete_segment, internal_record };

// What a record defines, so its location can be noted once it is durable.
enum class definition_kind { none, destination, subscription };

// Who appends a record: the broker, compaction (a copy of something already in the log),
// or the store itself (index_state).
enum class append_kind { user, compaction_copy, internal };

struct entry {
  entry_kind kind = entry_kind::record;
  std::vector<std::byte> buf;  // record: header(32) + payload + zero pad
  std::uint32_t payload_bytes = 0;
  record_type type{};
  completion done;
  // Applied on the owner thread when durable.
  std::vector<add_info> adds;
  bool relocation = false;  // compaction copy: only move locations of still-live entries
  std::uint64_t append_no = 0;  // owner-side order of appends (see impl::dropped)
  definition_kind defines = definition_kind::none;
  std::string definition_key;  // destination name or subscription_target key
  // Checkpoint.
  std::uint64_t checkpoint_lsn = 0;
  std::uint64_t checkpoint_replay_segment = 0;
  // Delete.
  std::uint64_t segment = 0;
  // Filled by the writer.
  location where;
  std::uint64_t lsn = 0;
  std::error_code ec;
};

add_info info_of(message_add& m) {
  add_info a;
  a.msg_seq = m.msg_seq;
  a.targets = m.targets;
  a.producer_id = m.producer_id;
  a.producer_seq = m.producer_seq;
  a.expires_ms = m.expires_ms;
  a.priority = m.priority;
  return a;
}

std::chrono::milliseconds since(clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// 2. impl
// ---------------------------------------------------------------------------------------
struct store::impl : std::enable_shared_from_this<impl> {
  impl(fs::file_system& f, std::filesystem::path d, options o)
      : fs(f), dir(std::move(d)), jdir(dir / format::journal_dir_name), opts(std::move(o)),
        idx(opts.producer_window) {}

  fs::file_system& fs;
  const std::filesystem::path dir;
  const std::filesystem::path jdir;
  options opts;
  store_id id;
  recovery_report report;

  void emit(const event& e) const {
    if (opts.report) opts.report(e);
  }

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
  bool closed = false;
  // Adds become visible when durable, but a destination_delete / subscription remove
  // drops its target at append time. An add appended before the drop and completed after
  // it must not re-create the target (replay would not: the log has add, then delete).
  // target -> append_no of the drop; forgotten once every append before it completed.
  std::uint64_t append_counter = 0;
  std::uint64_t in_flight = 0;
  std::unordered_map<std::string, std::uint64_t> dropped;
  // The same race for a single message: a message_remove (or a batch's remove) appended
  // while the message's add is still in flight finds nothing in the index, and the add,
  // completing later, would put the message back although the log says add, then remove.
  // A checkpoint taken after that would hold the message and cover the remove's lsn, so
  // even recovery would bring it back. Such a remove is remembered here until every
  // append before it has completed (completions run in append order), and a completing
  // add skips each target a later remove named. Removes of messages that never existed
  // land here too; they are forgotten just as fast.
  struct early_remove {
    std::uint64_t append_no;
    std::uint32_t item;  // position in its batch
    std::string target;
  };
  std::unordered_map<std::uint64_t, std::vector<early_remove>> early_removes;  // by msg_seq
  std::deque<std::pair<std::uint64_t, std::uint64_t>> early_remove_order;    // (append_no, msg_seq)
  // Compaction of one segment at a time: msg_seq -> targets that pointed into it, and the
  // definitions located in it.
  std::uint64_t compact_segment = 0;
  std::map<std::uint64_t, std::vector<std::string>> compact_pending;
  std::vector<std::pair<definition_kind, std::string>> compact_definitions;
  std::uint64_t compact_copied = 0;
  std::uint64_t compact_bytes = 0;
  std::uint64_t copies_in_flight = 0;        // compaction copies appended, not completed
  bool auto_compacting = false;              // the store's own steps continue as copies complete
  std::set<std::uint64_t> uncompactable;     // a live message there could not be read
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
    std::shared_ptr<const message_add> msg;
    std::size_t bytes;
  };
  std::list<cached> lru;
  std::unordered_map<std::uint64_t, std::list<cached>::iterator> cache;
  std::size_t cache_bytes = 0;
  std::map<std::uint64_t, std::unique_ptr<fs::file>> read_files;

  // ---- queue ----
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::vector<std::unique_ptr<entry>> queue;
  bool stopping = false;

  // ---- failure (any thread) ----
  std::atomic<bool> failed_flag{false};
  mutable std::mutex fail_mu;
  std::error_code failed_ec;

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
  std::atomic<std::uint64_t> head_segment{0};
  std::thread writer;

  std::error_code close_error;

  void post(std::function<void()> f) {
    if (opts.post)
      opts.post(std::move(f));
    else
      f();
  }

  std::error_code failed() const {
    std::lock_guard lk(fail_mu);
    return failed_ec;
  }

  void fail(std::error_code ec, const std::filesystem::path& file, std::string_view what) {
    {
      std::lock_guard lk(fail_mu);
      if (failed_ec) return;
      failed_ec = ec;
    }
    failed_flag = true;
    event e{event_kind::journal_failed, file};
    e.reason = fmt::format("{}: {}; the journal accepts no further appends", what, ec.message());
    emit(e);
  }

  std::error_code check_fence() {
#ifdef TANDEM_UNSAFE_FAULTS  // defect skip_fence: the writer never asks the fence
    if (tandem_unsafe_fault("skip_fence")) return {};
#endif
    if (!opts.fence) return {};
    return opts.fence();
  }

  // ---------------------------------------------------------------------------------------
  // 3. the writer thread
  // ---------------------------------------------------------------------------------------

  io_stats stats;

  void record_fsync(clock::duration took) {
    double seconds = std::chrono::duration<double>(took).count();
    std::size_t bucket = 0;
    while (bucket < io_stats::fsync_bucket_seconds.size() && seconds > io_stats::fsync_bucket_seconds[bucket]) ++bucket;
    stats.fsync_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
    stats.fsyncs.fetch_add(1, std::memory_order_relaxed);
    stats.fsync_nanoseconds.fetch_add(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()),
        std::memory_order_relaxed);
  }

  std::error_code timed_sync(fs::file& f) {
    auto t0 = clock::now();
    auto ec = f.sync();
    auto took = since(t0);
    record_fsync(clock::now() - t0);
    if (took >= slow_fsync_threshold) {
      event e{event_kind::slow_fsync, f.path()};
      e.duration = took;
      emit(e);
    }
    last_sync = clock::now();
    last_sync_took = last_sync - t0;
    if (!ec) dirty = false;
    return ec;
  }

  // Creates the next segment (skipping seqs that exist only when `skip_existing`, i.e. at
  // open: a running master that finds its next seq taken has been deposed).
  std::error_code roll(bool skip_existing) {
    std::uint64_t seq = seg_seq + 1;
    std::unique_ptr<fs::file> f;
    std::filesystem::path path;
    for (;;) {
      path = detail::segment_path(jdir, seq);
      auto r = fs.open(path, fs::open_mode::create_exclusive);
      if (r) {
        f = std::move(r.value());
        break;
      }
      if (r.error() == std::errc::file_exists) {
        if (skip_existing) {
          ++seq;
          continue;
        }
        fail(make_error_code(errc::fenced), path,
             "next segment already exists (another master rolled it)");
        return errc::fenced;
      }
      fail(r.error(), path, "cannot create segment");
      return r.error();
    }
    auto undo = [&](std::error_code ec, std::string_view what) {
      f.reset();
      (void)fs.remove(path);  // best effort: recovery also deletes a header-less last segment
      fail(ec, path, what);
      return ec;
    };
    if (auto ec = f->allocate(0, opts.segment_bytes)) return undo(ec, "cannot preallocate segment (disk full?)");
    std::array<std::byte, format::segment_header_bytes> h;
    encode_segment_header({format::segment_format_version, id, seq, opts.epoch, opts.segment_bytes}, h);
    if (auto ec = f->write_at(std::span<const std::byte>(h), 0)) return undo(ec, "cannot write segment header");
    if (auto ec = timed_sync(*f)) return undo(ec, "cannot sync new segment");
    if (auto ec = fs.sync_dir(jdir)) return undo(ec, "cannot sync journal directory");
    seg_file = std::move(f);
    seg_seq = seq;
    seg_off = format::segment_header_bytes;
    head_segment = seq;
    {
      std::lock_guard lk(state_mu);
      segments.insert(seq);
    }
    emit({event_kind::segment_created, path});
    return {};
  }

  // Writes `group` (record entries) with one gathered write per segment touched and one
  // fdatasync (policy always), assigning lsns and locations. Sets entry.ec on failure.
  void write_group(std::vector<std::unique_ptr<entry>>& group) {
    std::vector<std::span<const std::byte>> bufs;
    std::size_t first = 0;  // first entry not yet written
    // force_sync (before a roll): make the whole segment durable, even when this group
    // wrote nothing to it yet: with periodic and never, earlier groups may still be
    // unsynced, and a segment must be durable before the next one gets a record.
    auto flush = [&](std::size_t end, bool force_sync) -> std::error_code {
      if (first == end) {
        if (!force_sync || !dirty || !seg_file) return {};
        if (auto ec = timed_sync(*seg_file)) {
          fail(ec, seg_file->path(), "fdatasync before a segment roll failed");
          return ec;
        }
        return {};
      }
      bufs.clear();
      std::uint64_t at = group[first]->where.offset;
      for (std::size_t i = first; i < end; ++i) bufs.emplace_back(group[i]->buf);
      if (auto ec = check_fence()) {
        fail(ec, seg_file->path(), "fence check before write failed");
        return ec;
      }
      if (auto ec = seg_file->write_at(std::span<const std::span<const std::byte>>(bufs), at)) {
        fail(ec, seg_file->path(), fmt::format("write at offset {} failed", at));
        return ec;
      }
      dirty = true;
      stats.groups.fetch_add(1, std::memory_order_relaxed);
      stats.group_records.fetch_add(end - first, std::memory_order_relaxed);
      if (force_sync || opts.sync == sync_policy::always) {
#ifdef TANDEM_UNSAFE_FAULTS  // defect receipt_before_fsync: complete the group without its fdatasync
        if (!force_sync && tandem_unsafe_fault("receipt_before_fsync")) {
          first = end;
          return {};
        }
#endif
        if (auto ec = timed_sync(*seg_file)) {
          fail(ec, seg_file->path(), "fdatasync failed");
          return ec;
        }
        if (auto ec = check_fence()) {
          fail(ec, seg_file->path(), "fence check after fdatasync failed");
          return ec;
        }
      }
      first = end;
      return {};
    };
    auto fail_from = [&](std::size_t from, std::error_code ec) {
      for (std::size_t i = from; i < group.size(); ++i) group[i]->ec = ec;
    };
    if (failed_flag) {
      fail_from(0, errc::journal_failed);
      return;
    }
    // group_start (format.h section 4): the segment holds nothing unsynced before this
    // record. Recovery relies on it to tell a torn tail from damaged synced data, so it is
    // set from the real state (dirty), not from the policy.
    bool group_start = !dirty;
    for (std::size_t i = 0; i < group.size(); ++i) {
      auto& e = *group[i];
      if (seg_off + e.buf.size() > opts.segment_bytes) {
        // Everything before a roll must be durable before the segment is left behind.
        if (auto ec = flush(i, true)) {
          fail_from(first, ec);
          return;
        }
        if (auto ec = roll(false)) {
          fail_from(i, ec);
          return;
        }
        group_start = true;  // a fresh segment whose header is synced
      }
      e.lsn = next_lsn++;
      e.where = {seg_seq, static_cast<std::uint32_t>(seg_off), static_cast<std::uint32_t>(e.buf.size())};
      encode_record_header(e.type, e.lsn, opts.epoch,
                           std::span<const std::byte>(e.buf).subspan(hdr, e.payload_bytes),
                           std::span<std::byte, hdr>(e.buf.data(), hdr),
                           group_start ? format::record_flag_group_start : std::uint8_t{0});
      group_start = false;
      seg_off += e.buf.size();
    }
    if (auto ec = flush(group.size(), false)) fail_from(first, ec);
  }

  void write_checkpoint(entry& e) {
    if (failed_flag) {
      e.ec = errc::journal_failed;
      return;
    }
    // The checkpoint reflects removes appended up to now: they must be durable first.
    if (dirty && seg_file) {
      if (auto ec = timed_sync(*seg_file)) {
        fail(ec, seg_file->path(), "fdatasync before checkpoint failed");
        e.ec = ec;
        return;
      }
    }
    // A deposed master must not leave a checkpoint behind: the new master's recovery
    // would prefer it if its lsn were higher.
    if (auto ec = check_fence()) {
      fail(ec, jdir, "fence check before checkpoint failed");
      e.ec = ec;
      return;
    }
    auto t0 = clock::now();
    auto path = detail::checkpoint_path(jdir, e.checkpoint_lsn);
    detail::seal_checkpoint(e.buf);  // the checksum pass runs here, off the owner thread
    if (auto ec = fs::write_file_atomically(fs, path, e.buf)) {
      // A failed checkpoint loses nothing (the log still has every record), so it does not
      // fail the journal; the previous checkpoint stays in place.
      event ev{event_kind::checkpoint_fallback, path};
      ev.reason = "cannot write checkpoint: " + ec.message();
      emit(ev);
      e.ec = ec;
      return;
    }
    event ev{event_kind::checkpoint_written, path};
    ev.first_lsn = e.checkpoint_lsn;
    ev.bytes = e.buf.size();
    ev.duration = since(t0);
    emit(ev);
    if (writer_checkpoints.empty() || writer_checkpoints.back() != e.checkpoint_lsn)
      writer_checkpoints.push_back(e.checkpoint_lsn);
    writer_checkpoint_replay[e.checkpoint_lsn] = e.checkpoint_replay_segment;
    while (writer_checkpoints.size() > 2) {
      auto old = writer_checkpoints.front();
      writer_checkpoints.erase(writer_checkpoints.begin());
      writer_checkpoint_replay.erase(old);
      (void)fs.remove(detail::checkpoint_path(jdir, old));
    }
    (void)fs.sync_dir(jdir);
    // The checkpoint record itself: informational, written like any record.
    std::vector<std::unique_ptr<entry>> one;
    one.push_back(make_record_entry(checkpoint_record{e.checkpoint_lsn, path.filename().string()}));
    one.back()->kind = entry_kind::internal_record;
    write_group(one);
  }

  // Deletes the oldest segment (the owner only ever queues the log's first segment, see
  // compact_step). Two things must be durable first, or a power cut could leave a log that
  // replays to a different state:
  // - every record queued before the delete (compaction copies, index_state) — with
  //   sync_policy periodic/never their completions ran before any fdatasync — so the head
  //   is synced here;
  // - the unlink itself before the next segment's: if unlinks of [1], [2] could reach the
  //   disk as "[2] gone, [1] still there", replay would apply [1]'s adds without [2]'s
  //   removes. Hence a directory fsync after each, and on any failure the journal fails
  //   (no later segment may be deleted while an older one might survive).
  void delete_segment(entry& e) {
    auto path = detail::segment_path(jdir, e.segment);
    if (failed_flag) {
      e.ec = errc::journal_failed;
      return;
    }
    if (dirty && seg_file) {
      if (auto ec = timed_sync(*seg_file)) {
        fail(ec, seg_file->path(), "fdatasync before deleting a segment failed");
        e.ec = ec;
        return;
      }
    }
    if (auto ec = fs.remove(path); ec && ec != std::errc::no_such_file_or_directory) {
      fail(ec, path, "cannot delete segment");
      e.ec = ec;
      return;
    }
    if (auto ec = fs.sync_dir(jdir)) {
      fail(ec, jdir, "cannot sync journal directory after deleting a segment");
      e.ec = ec;
      return;
    }
    event ev{event_kind::segment_deleted, path};
    ev.reason = "first segment of the log, nothing live in it, before the checkpoints' replay position";
    emit(ev);
  }

  // Group commit linger (options.group_linger). With many appenders in a closed loop
  // (each appends again from its completion), the owner thread re-appends one by one after
  // a group completes, and the writer used to wake at the first append and commit a small
  // group, then a large one: groups alternated and averaged ~60% of the appenders. When the
  // previous group was larger than what is queued now, the writer waits until as many
  // records are queued again, at most group_linger and at most half the last fdatasync:
  // waiting must stay cheap next to the sync it saves (on a disk whose fdatasync takes
  // 50 us the writer waits at most 25 us). It never waits when the previous group was a
  // single record, so a lone appender pays nothing.
  void run_writer() {
    std::vector<std::unique_ptr<entry>> batch;
    std::size_t previous_group = 0;
    for (;;) {
      bool stop = false;
      {
        std::unique_lock lk(queue_mu);
        auto ready = [&] { return !queue.empty() || stopping; };
        if (opts.sync == sync_policy::periodic && dirty) {
          queue_cv.wait_until(lk, last_sync + opts.sync_interval, ready);
        } else {
          queue_cv.wait(lk, ready);
        }
        const auto linger = std::min<clock::duration>(opts.group_linger, last_sync_took / 2);
        if (opts.sync == sync_policy::always && linger.count() > 0 && previous_group > 1 && !stopping &&
            !queue.empty() && queue.size() < previous_group) {
          stats.lingers.fetch_add(1, std::memory_order_relaxed);
          queue_cv.wait_until(lk, clock::now() + linger, [&] { return queue.size() >= previous_group || stopping; });
        }
        batch.swap(queue);
        stop = stopping && batch.empty();
      }
      previous_group = static_cast<std::size_t>(
          std::count_if(batch.begin(), batch.end(), [](const auto& e) { return e->kind == entry_kind::record; }));
      if (opts.sync == sync_policy::periodic && dirty && !failed_flag &&
          clock::now() >= last_sync + opts.sync_interval) {
        if (auto ec = timed_sync(*seg_file)) fail(ec, seg_file->path(), "periodic fdatasync failed");
      }
      if (stop) break;
      process(batch);
      batch.clear();
    }
    if (dirty && seg_file && !failed_flag) {
      if (auto ec = timed_sync(*seg_file)) fail(ec, seg_file->path(), "fdatasync at close failed");
    }
    seg_file.reset();
  }

  void process(std::vector<std::unique_ptr<entry>>& batch) {
    std::vector<std::unique_ptr<entry>> done;
    std::vector<std::unique_ptr<entry>> group;
    auto flush_group = [&] {
      if (group.empty()) return;
      write_group(group);
      for (auto& e : group) done.push_back(std::move(e));
      group.clear();
    };
    for (auto& e : batch) {
      if (e->kind == entry_kind::record) {
        group.push_back(std::move(e));
        continue;
      }
      flush_group();
      if (e->kind == entry_kind::checkpoint) write_checkpoint(*e);
      if (e->kind == entry_kind::delete_segment) delete_segment(*e);
      done.push_back(std::move(e));
    }
    flush_group();
    if (done.empty()) return;
    std::map<std::uint64_t, std::uint64_t> kept = writer_checkpoint_replay;
    // std::function needs a copyable callable: the entries ride in a shared_ptr.
    auto finished = std::make_shared<std::vector<std::unique_ptr<entry>>>(std::move(done));
    post([self = shared_from_this(), finished, kept = std::move(kept)] { self->complete(*finished, kept); });
  }

  // ---------------------------------------------------------------------------------------
  // 4. completions on the owner thread
  // ---------------------------------------------------------------------------------------

  // Every update here mirrors what replaying the record does (section 5's replay()), so
  // the index a checkpoint captures equals the one a full replay rebuilds.
  void apply_durable(entry& e) {
    for (auto& a : e.adds) {
      message_ref ref{e.where, a.expires_ms, a.priority};
      if (e.relocation) {
        // Replay skips a copy's producer seq too (the copy flag): a copy is not a send.
        for (const auto& t : a.targets) idx.relocate(t, a.msg_seq, ref.where);
        continue;
      }
      if (!dropped.empty() || !early_removes.empty()) {
        const auto early = early_removes.find(a.msg_seq);
        std::erase_if(a.targets, [&](const std::string& t) {
          if (auto it = dropped.find(t); it != dropped.end() && it->second > e.append_no) return true;
          if (early == early_removes.end()) return false;
          return std::any_of(early->second.begin(), early->second.end(), [&](const early_remove& r) {
            return r.target == t && std::pair(r.append_no, r.item) > std::pair(e.append_no, a.item);
          });
        });
        if (a.targets.empty()) {
          // Replay adds, then the later delete drops: the seq and the send still count.
          idx.note_msg_seq(a.msg_seq);
          idx.record_producer(a.producer_id, a.producer_seq);
          continue;
        }
      }
      idx.add(a.msg_seq, std::span<const std::string>(a.targets), ref, a.producer_id, a.producer_seq);
    }
    // A create (or its copy) durable: the definition now lives here, unless a delete
    // appended after it already removed it.
    if (e.defines == definition_kind::destination) idx.locate_destination(e.definition_key, e.where);
    if (e.defines == definition_kind::subscription) idx.locate_subscription(e.definition_key, e.where);
    if (e.type == record_type::index_state)
      state_first_segment = state_first_segment == 0 ? e.where.segment : std::min(state_first_segment, e.where.segment);
    idx.set_last_lsn(e.lsn);
    durable_lsn = e.lsn;
    durable_end = {e.where.segment, std::uint64_t{e.where.offset} + e.where.size};
    bytes_since_checkpoint += e.buf.size();
  }

  void complete(std::vector<std::unique_ptr<entry>>& done, const std::map<std::uint64_t, std::uint64_t>& kept) {
    bool want_checkpoint = false;
    bool checkpoint_finished = false;
    bool state_completed = false;  // GC was waiting for it
    bool copies_done = false;      // the last compaction copies in flight are durable
    bool continue_compaction = false;
    {
      std::lock_guard lk(state_mu);
      checkpoints = kept;
      for (auto& e : done) {
        if (e->kind == entry_kind::record && in_flight > 0) --in_flight;
        if (e->kind == entry_kind::checkpoint) {
          checkpoint_in_flight = false;
          checkpoint_finished = !e->ec;
          // Back to the owner for the next checkpoint (capacity kept, contents dropped).
          checkpoint_buffer = std::move(e->buf);
          checkpoint_buffer.clear();
          continue;
        }
        if (e->kind == entry_kind::delete_segment && e->ec) {
          // The file may still be there: it stays the log's first segment (the store is
          // failed, so nothing after it is deleted either).
          segments.insert(e->segment);
          continue;
        }
        if (e->kind != entry_kind::record) continue;
        if (!e->ec) apply_durable(*e);
        forget_completed(e->append_no);
        while (!pending_producers.empty() && pending_producers.front().append_no <= e->append_no)
          pending_producers.pop_front();
        if (e->relocation && copies_in_flight > 0 && --copies_in_flight == 0) copies_done = true;
        if (e->type == record_type::index_state && state_parts_in_flight > 0 && --state_parts_in_flight == 0) {
          if (!e->ec) state_segment = state_first_segment;
          state_first_segment = 0;
          state_completed = !e->ec;
        }
      }
      want_checkpoint = !closed && !checkpoint_in_flight && bytes_since_checkpoint >= opts.checkpoint_every_bytes;
      continue_compaction = copies_done && auto_compacting;
    }
    for (auto& e : done) {
      if (e->done) e->done(e->ec, e->ec ? 0 : e->lsn);
    }
    if (want_checkpoint) request_checkpoint({});
    if (checkpoint_finished || state_completed || continue_compaction) {
      const bool more = compact_step(opts.auto_compact_bytes);
      std::lock_guard lk(state_mu);
      auto_compacting = more && opts.auto_compact_bytes != 0;
    }
  }

  // Every append up to `append_no` has completed (completions run in append order): no
  // add still in flight precedes a drop or early remove up to there. Requires state_mu.
  void forget_completed(std::uint64_t append_no) {
    if (!dropped.empty()) std::erase_if(dropped, [&](const auto& d) { return d.second <= append_no; });
    while (!early_remove_order.empty() && early_remove_order.front().first <= append_no) {
      const auto seq = early_remove_order.front().second;
      early_remove_order.pop_front();
      auto it = early_removes.find(seq);
      if (it == early_removes.end()) continue;
      std::erase_if(it->second, [&](const early_remove& r) { return r.append_no <= append_no; });
      if (it->second.empty()) early_removes.erase(it);
    }
  }

  // ---------------------------------------------------------------------------------------
  // 6. append, read, checkpoint, compaction (owner thread)
  // ---------------------------------------------------------------------------------------

  std::unique_ptr<entry> make_record_entry(const record& r, bool compaction_copy = false) {
    auto e = std::make_unique<entry>();
    e->type = type_of(r);
    std::size_t guess = 128;
    if (const auto* m = std::get_if<message_add>(&r)) guess += m->body.size() + m->headers.size() * 32;
    e->buf.reserve(hdr + guess);
    e->buf.resize(hdr);
    if (const auto* m = std::get_if<message_add>(&r); m && compaction_copy)
      e->ec = encode_compaction_copy(*m, e->buf);
    else
      e->ec = encode_payload(r, e->buf);
    e->payload_bytes = static_cast<std::uint32_t>(e->buf.size() - hdr);
    e->buf.resize(format::record_bytes(e->payload_bytes));
    if (!e->ec && e->buf.size() > opts.segment_bytes - format::segment_header_bytes) e->ec = errc::record_too_large;
    return e;
  }

  void push(std::unique_ptr<entry> e) {
    {
      std::lock_guard lk(queue_mu);
      queue.push_back(std::move(e));
    }
    queue_cv.notify_one();
  }

  void reject(completion done, std::error_code ec) {
    if (!done) return;
    post([done = std::move(done), ec] { done(ec, 0); });
  }

  // Numbers a record entry and queues it. Requires state_mu held.
  void enqueue_locked(std::unique_ptr<entry> e) {
    e->append_no = ++append_counter;
    ++in_flight;
    push(std::move(e));
  }

  // Requires state_mu held.
  void append_locked(record r, completion done, append_kind kind) {
    if (closed) return reject(std::move(done), errc::closed);
    if (failed_flag) return reject(std::move(done), errc::journal_failed);
    const bool copy = kind == append_kind::compaction_copy;
    auto e = make_record_entry(r, copy);
    if (e->ec) return reject(std::move(done), e->ec);
    e->done = std::move(done);
    e->relocation = copy;
    if (copy) ++copies_in_flight;
    const std::uint64_t append_no = append_counter + 1;  // enqueue_locked assigns it
    auto drop = [&](std::string key) {
      if (in_flight > 0) dropped[std::move(key)] = append_no;
    };
    auto note_send = [&](const message_add& m) {
      if (!copy && !m.producer_id.empty() && idx.producer_window() != 0)
        pending_producers.push_back({append_no, m.producer_id, m.producer_seq});
    };
    // Removes take effect now; one that finds nothing may be for an add still in flight.
    auto remove = [&](const std::string& target, std::uint64_t msg_seq, std::uint32_t item) {
      if (idx.remove(target, msg_seq) || in_flight == 0) return;
      early_removes[msg_seq].push_back({append_no, item, target});
      early_remove_order.emplace_back(append_no, msg_seq);
    };
    // Removes take effect now, adds when durable (see store.h).
    std::visit(
        [&](auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, message_add>) {
            e->adds.push_back(info_of(v));
            note_send(v);
          } else if constexpr (std::is_same_v<T, message_remove>) {
            remove(v.target, v.msg_seq, 0);
          } else if constexpr (std::is_same_v<T, batch>) {
            for (std::uint32_t i = 0; i < v.items.size(); ++i) {
              auto& item = v.items[i];
              if (auto* m = std::get_if<message_add>(&item)) {
                e->adds.push_back(info_of(*m));
                e->adds.back().item = i;
                note_send(*m);
              } else {
                auto& rm = std::get<message_remove>(item);
                remove(rm.target, rm.msg_seq, i);
              }
            }
          } else if constexpr (std::is_same_v<T, destination_create>) {
            idx.create_destination(v.name);
            e->defines = definition_kind::destination;
            e->definition_key = v.name;
          } else if constexpr (std::is_same_v<T, destination_delete>) {
            idx.delete_destination(v.name);
            drop(v.name);
          } else if constexpr (std::is_same_v<T, durable_subscription_create>) {
            idx.create_subscription(v);
            e->defines = definition_kind::subscription;
            e->definition_key = subscription_target(v.client_id, v.subscription_name);
          } else if constexpr (std::is_same_v<T, durable_subscription_remove>) {
            idx.remove_subscription(v.client_id, v.subscription_name);
            drop(subscription_target(v.client_id, v.subscription_name));
          }
        },
        r);
    enqueue_locked(std::move(e));
  }

  void request_checkpoint(completion done) {
    std::unique_lock lk(state_mu);
    if (closed || failed_flag) {
      lk.unlock();
      return reject(std::move(done), closed ? make_error_code(errc::closed) : make_error_code(errc::journal_failed));
    }
    if (in_flight == 0 && durable_lsn == last_checkpoint_lsn && !checkpoints.empty()) {
      lk.unlock();
      if (done) post([done = std::move(done)] { done({}, 0); });
      return;
    }
    auto e = std::make_unique<entry>();
    e->kind = entry_kind::checkpoint;
    e->done = std::move(done);
    detail::checkpoint_meta meta;
    meta.id = id;
    meta.lsn = durable_lsn;
    meta.replay = durable_end;
    meta.next_msg_seq = idx.next_msg_seq();
    meta.max_epoch = max_epoch;
    meta.cut = cut;
    e->checkpoint_lsn = durable_lsn;
    e->checkpoint_replay_segment = durable_end.segment;
    // Only the walk over the index runs here (the owner thread); the checksum pass and the
    // write run on the writer thread, into a buffer reused from the previous checkpoint.
    detail::encode_checkpoint_unsealed(meta, idx, checkpoint_buffer);
    e->buf = std::move(checkpoint_buffer);
    checkpoint_buffer = {};
    checkpoint_in_flight = true;
    bytes_since_checkpoint = 0;
    last_checkpoint_lsn = durable_lsn;
    push(std::move(e));
  }

  // Requires state_mu held.
  result<std::shared_ptr<const message_add>> read_locked(const location& where, std::uint64_t msg_seq) {
    if (auto it = cache.find(msg_seq); it != cache.end()) {
      lru.splice(lru.begin(), lru, it->second);
      return it->second->msg;
    }
    auto fit = read_files.find(where.segment);
    if (fit == read_files.end()) {
      if (read_files.size() >= 16) read_files.erase(read_files.begin());
      auto f = fs.open(detail::segment_path(jdir, where.segment), fs::open_mode::read_only);
      if (!f) return f.error();
      fit = read_files.emplace(where.segment, std::move(f.value())).first;
    }
    if (where.size < hdr) return make_error_code(errc::corrupt_file);
    std::vector<std::byte> buf(where.size);
    auto n = fit->second->read_at(buf, where.offset);
    if (!n) return n.error();
    if (n.value() != buf.size()) return make_error_code(errc::corrupt_file);
    auto h = parse_record_header(std::span<const std::byte, hdr>(buf.data(), hdr));
    if (hdr + h.length > buf.size()) return make_error_code(errc::corrupt_file);
    auto payload = std::span<const std::byte>(buf).subspan(hdr, h.length);
    if (!verify_record(std::span<const std::byte, hdr>(buf.data(), hdr), payload).empty())
      return make_error_code(errc::corrupt_file);
    auto rec = decode_payload(h.type, payload);
    if (!rec) return rec.error();
    std::shared_ptr<const message_add> msg;
    if (auto* m = std::get_if<message_add>(&rec.value())) {
      if (m->msg_seq == msg_seq) msg = std::make_shared<const message_add>(std::move(*m));
    } else if (auto* b = std::get_if<batch>(&rec.value())) {
      for (auto& item : b->items)
        if (auto* m = std::get_if<message_add>(&item); m && m->msg_seq == msg_seq)
          msg = std::make_shared<const message_add>(std::move(*m));
    }
    if (!msg) return make_error_code(errc::not_found);
    std::size_t bytes = msg->body.size() + 128;
    for (const auto& [k, v] : msg->headers) bytes += k.size() + v.size() + 64;
    if (bytes <= opts.body_cache_bytes) {
      lru.push_front({msg_seq, msg, bytes});
      cache[msg_seq] = lru.begin();
      cache_bytes += bytes;
      while (cache_bytes > opts.body_cache_bytes) {
        cache_bytes -= lru.back().bytes;
        cache.erase(lru.back().msg_seq);
        lru.pop_back();
      }
    }
    return msg;
  }

  // ---- GC and compaction (the rule is in store.h; why prefix-only is written there) ----

  // Deletes the longest deletable prefix of the log. Requires state_mu held. Returns true
  // when deletion waits for an index_state set that is in flight (compact_step again once
  // it completed).
  bool collect_prefix_locked(std::uint64_t head) {
    // Recovery must be able to start from either kept checkpoint (the older one is the
    // fallback when the newest is damaged), so nothing at or after its replay segment goes.
    std::uint64_t gc_limit = 0;
    if (!checkpoints.empty()) {
      gc_limit = UINT64_MAX;
      for (auto& [lsn, seg] : checkpoints) gc_limit = std::min(gc_limit, seg);
    }
    while (!segments.empty()) {
      const std::uint64_t seq = *segments.begin();
      // Stop at the first segment that must stay: everything after it stays too, so the
      // log on disk is always a suffix of the log ever written.
      if (seq >= gc_limit || seq >= head || seq == compact_segment || idx.segments().contains(seq)) break;
      if (seq >= state_segment) {
        // Its records may hold the only trace of a producer seq or of the highest msg_seq:
        // an index_state written after it must be durable first.
        if (state_parts_in_flight == 0) append_index_state_locked();
        return state_parts_in_flight != 0;
      }
      auto e = std::make_unique<entry>();
      e->kind = entry_kind::delete_segment;
      e->segment = seq;
      read_files.erase(seq);
      segments.erase(segments.begin());
      push(std::move(e));
    }
    return false;
  }

  // Appends one index_state set: next_msg_seq and every producer's window as they will be
  // once the appends already queued complete (the set is written after them). The windows
  // are split over records of at most part_limit payload bytes; a window that alone is too
  // long continues with `extend`. Any producer id fits: it fitted in a message_add, whose
  // payload is larger than an index_state holding that id and one seq. Requires state_mu.
  void append_index_state_locked() {
    if (closed || failed_flag) return;
    auto windows = idx.producer_windows();
    for (const auto& p : pending_producers)
      windows[p.producer_id].push(p.producer_seq, idx.producer_window());
    std::vector<const std::pair<const std::string, seq_window>*> sorted;
    sorted.reserve(windows.size());
    for (const auto& w : windows) sorted.push_back(&w);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
    const std::uint64_t part_limit = std::min<std::uint64_t>(
        1 << 20, opts.segment_bytes - format::segment_header_bytes - format::record_header_bytes);
    constexpr std::uint64_t part_fixed = 12;   // u64 next_msg_seq, u32 count
    constexpr std::uint64_t window_fixed = 9;  // u32 id length, u8 extend, u32 count
    std::vector<std::unique_ptr<entry>> parts;
    index_state part{idx.next_msg_seq(), {}};
    std::uint64_t part_bytes = part_fixed;
    auto seal = [&] {
      parts.push_back(make_record_entry(part));
      part.windows.clear();
      part_bytes = part_fixed;
    };
    for (const auto* w : sorted) {
      const std::string& id = w->first;
      auto next = w->second.seqs().begin();
      bool extend = false;
      do {
        if (part_bytes + window_fixed + id.size() + 8 > part_limit) {
          if (part.windows.empty()) {  // cannot happen (see above); never loop on it
            fail(make_error_code(errc::record_too_large), jdir, "a producer id too long for an index_state record");
            return;
          }
          seal();
        }
        const std::uint64_t room = (part_limit - part_bytes - window_fixed - id.size()) / 8;
        const auto n = std::min<std::uint64_t>(room, static_cast<std::uint64_t>(w->second.seqs().end() - next));
        part.windows.push_back({id, extend, std::vector<std::uint64_t>(next, next + static_cast<std::ptrdiff_t>(n))});
        part_bytes += window_fixed + id.size() + 8 * n;
        next += static_cast<std::ptrdiff_t>(n);
        extend = true;
      } while (next != w->second.seqs().end());
    }
    seal();
    for (const auto& e : parts) {
      if (e->ec) {
        fail(e->ec, jdir, "cannot encode an index_state record");
        return;
      }
    }
    state_parts_in_flight = parts.size();
    state_first_segment = 0;
    for (auto& e : parts) enqueue_locked(std::move(e));
  }

  // The segment to compact next, 0 for none. Requires state_mu held. Oldest first, because
  // only the log's first segment can be deleted: a sparse segment behind a full one frees
  // nothing until everything before it is gone.
  std::uint64_t pick_compaction_locked(std::uint64_t head) const {
    if (segments.empty()) return 0;
    const auto& seg_stats = idx.segments();
    const std::uint64_t seg = opts.segment_bytes;
    const std::uint64_t disk = segments.size() * seg;
    const std::uint64_t live = idx.live_bytes() + idx.definition_bytes();
    // Over the disk bound and the first segment holds live data: it blocks every deletion,
    // so it is copied forward however full it is.
    const std::uint64_t first = *segments.begin();
    if (first < head && disk > 2 * live + 2 * seg && seg_stats.contains(first) && !uncompactable.contains(first))
      return first;
    const double limit = opts.compact_below_live_fraction * static_cast<double>(seg);
    for (std::uint64_t seq : segments) {
      if (seq >= head) break;
      auto it = seg_stats.find(seq);
      if (it == seg_stats.end() || uncompactable.contains(seq)) continue;
      if (static_cast<double>(it->second.live_bytes) < limit) return seq;
    }
    return 0;
  }

  bool compact_step(std::uint64_t max_bytes) {
    std::lock_guard lk(state_mu);
    if (closed || failed_flag) return false;
    const std::uint64_t head = head_segment;
    const bool waiting = collect_prefix_locked(head);
    if (max_bytes == 0) return waiting;
    if (compact_segment == 0) {
      // The previous segment's copies must be durable (and relocated) before the next
      // pick, or the same live entries would be picked and copied twice.
      if (copies_in_flight != 0) return true;
      const std::uint64_t pick = pick_compaction_locked(head);
      if (pick == 0) return waiting;
      compact_segment = pick;
      compact_copied = compact_bytes = 0;
      // One pass over the index per compacted segment; the copies then go in small steps.
      for (const auto& [target, messages] : idx.targets())
        for (const auto& [seq, ref] : messages)
          if (ref.where.segment == pick) compact_pending[seq].push_back(target);
      for (const auto& [name, where] : idx.destination_locations())
        if (where.segment == pick) compact_definitions.emplace_back(definition_kind::destination, name);
      for (const auto& [key, where] : idx.subscription_locations())
        if (where.segment == pick) compact_definitions.emplace_back(definition_kind::subscription, key);
    }
    std::uint64_t copied_bytes = 0;
    // Definitions: a destination or durable subscription must outlive every segment that
    // happened to hold its create record, so the create is written again at the head.
    while (!compact_definitions.empty() && copied_bytes < max_bytes) {
      auto [kind, key] = std::move(compact_definitions.back());
      compact_definitions.pop_back();
      const auto& where_map =
          kind == definition_kind::destination ? idx.destination_locations() : idx.subscription_locations();
      auto it = where_map.find(key);
      if (it == where_map.end() || it->second.segment != compact_segment) continue;  // deleted or moved
      const std::uint64_t size = it->second.size;
      if (kind == definition_kind::destination) {
        append_locked(destination_create{key}, {}, append_kind::compaction_copy);
      } else {
        durable_subscription_create copy{idx.durable_subscriptions().at(key)};
        append_locked(std::move(copy), {}, append_kind::compaction_copy);
      }
      copied_bytes += size;
      compact_bytes += size;
      ++compact_copied;
    }
    while (!compact_pending.empty() && copied_bytes < max_bytes) {
      auto node = compact_pending.extract(compact_pending.begin());
      const std::uint64_t seq = node.key();
      // Only targets still live in the compacted segment: a copy must never re-add a
      // target the message was removed from (replay would resurrect it).
      std::vector<std::string> live;
      std::optional<location> where;
      for (auto& t : node.mapped()) {
        const auto* m = idx.messages(t);
        if (!m) continue;
        auto it = m->find(seq);
        if (it == m->end() || it->second.where.segment != compact_segment) continue;
        where = it->second.where;
        live.push_back(std::move(t));
      }
      if (live.empty()) continue;
      auto msg = read_locked(*where, seq);
      if (!msg) {
        // Unreadable live message: leave the segment in place rather than lose it, and do
        // not pick it again (every pick would fail the same way).
        uncompactable.insert(compact_segment);
        event ev{event_kind::corruption_found, detail::segment_path(jdir, compact_segment)};
        ev.offset = where->offset;
        ev.reason = "compaction cannot read a live message: " + msg.error().message();
        emit(ev);
        continue;
      }
      message_add copy = *msg.value();
      copy.targets = std::move(live);
      copied_bytes += where->size;
      compact_bytes += where->size;
      ++compact_copied;
      append_locked(std::move(copy), {}, append_kind::compaction_copy);
    }
    if (compact_pending.empty() && compact_definitions.empty()) {
      event ev{event_kind::compaction_done, detail::segment_path(jdir, compact_segment)};
      ev.count = compact_copied;
      ev.bytes = compact_bytes;
      emit(ev);
      compact_segment = 0;
    }
    return true;  // more copies, or the compacted segment's deletion once checkpoints pass it
  }

  std::error_code close() {
    {
      std::lock_guard lk(state_mu);
      if (closed) return close_error;
    }
    // The final checkpoint makes the next open fast; the writer drains it before exiting.
    if (!failed_flag) request_checkpoint({});
    {
      std::lock_guard lk(state_mu);
      closed = true;
    }
    {
      std::lock_guard lk(queue_mu);
      stopping = true;
    }
    queue_cv.notify_one();
    if (writer.joinable()) writer.join();
    close_error = failed();
    return close_error;
  }
};

// ---------------------------------------------------------------------------------------
// 5. recovery
// ---------------------------------------------------------------------------------------
namespace {

void replay(index& idx, record_type type, std::span<const std::byte> payload, const location& where,
            detail::message_view& view, std::error_code& ec) {
  auto add_view = [&](std::span<const std::byte> p) {
    if (!detail::decode_message_view(p, view)) {
      ec = errc::corrupt_file;
      return;
    }
    message_ref ref{where, view.expires_ms, view.priority};
    // A compaction copy moves the message; it is not a send, so its producer seq does not
    // enter the window (which index_state records carry across GC instead).
    if (view.compaction_copy)
      idx.add(view.msg_seq, std::span<const std::string_view>(view.targets), ref, {}, 0);
    else
      idx.add(view.msg_seq, std::span<const std::string_view>(view.targets), ref, view.producer_id,
              view.producer_seq);
  };
  switch (type) {
    case record_type::message_add:
      add_view(payload);
      return;
    case record_type::batch: {
      detail::decoder d(payload);
      std::uint32_t n = d.count(5);
      for (std::uint32_t i = 0; i < n && d.ok() && !ec; ++i) {
        auto t = static_cast<record_type>(d.u8());
        auto len = d.u32();
        auto sub = d.bytes(len);
        if (!d.ok()) break;
        if (t == record_type::message_add) {
          add_view(sub);
        } else if (t == record_type::message_remove) {
          detail::decoder r(sub);
          auto target = r.str_view();
          auto seq = r.u64();
          if (!r.done()) ec = errc::corrupt_file;
          else idx.remove(target, seq);
        } else {
          ec = errc::corrupt_file;
        }
      }
      if (!d.done()) ec = errc::corrupt_file;
      return;
    }
    default:
      break;
  }
  auto rec = decode_payload(type, payload);
  if (!rec) {
    ec = rec.error();
    return;
  }
  std::visit(
      [&](auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, message_remove>) {
          idx.remove(v.target, v.msg_seq);
        } else if constexpr (std::is_same_v<T, destination_create>) {
          idx.create_destination(v.name, where);
        } else if constexpr (std::is_same_v<T, destination_delete>) {
          idx.delete_destination(v.name);
        } else if constexpr (std::is_same_v<T, durable_subscription_create>) {
          idx.create_subscription(v, where);
        } else if constexpr (std::is_same_v<T, durable_subscription_remove>) {
          idx.remove_subscription(v.client_id, v.subscription_name);
        } else if constexpr (std::is_same_v<T, index_state>) {
          if (v.next_msg_seq > idx.next_msg_seq()) idx.set_next_msg_seq(v.next_msg_seq);
          for (const auto& w : v.windows) {
            if (!w.extend) {
              idx.load_producer(w.producer_id, std::deque<std::uint64_t>(w.seqs.begin(), w.seqs.end()));
            } else {
              for (auto seq : w.seqs) idx.record_producer(w.producer_id, seq);
            }
          }
        }
      },
      rec.value());
}

damage to_damage(const detail::walk_item& w) {
  return {w.file, w.offset, w.expected_lsn, w.reason, w.bytes};
}

}  // namespace

result<std::unique_ptr<store>> store::open(const std::filesystem::path& dir, options opts,
                                           recovery_report& report) {
  const auto t0 = clock::now();
  report = {};
  fs::file_system& fs = opts.fs ? *opts.fs : fs::posix_file_system();
  if (opts.segment_bytes < format::min_segment_bytes || opts.segment_bytes > format::max_segment_bytes ||
      opts.segment_bytes % format::record_alignment != 0)
    return make_error_code(errc::invalid_argument);
  auto ident = read_identity(fs, dir);
  if (!ident) return ident.error();
  if (opts.expected_store_id && !(*opts.expected_store_id == ident.value().id))
    return make_error_code(errc::wrong_store);

  auto p = std::make_shared<impl>(fs, dir, std::move(opts));
  impl& s = *p;
  s.id = ident.value().id;

  // Inventory of DIR/journal; stale temporaries of interrupted atomic writes go first.
  auto names = fs.list(s.jdir);
  if (!names) return names.error();
  std::vector<std::uint64_t> segs;
  std::vector<std::uint64_t> ckpts;
  for (const auto& name : names.value()) {
    if (name.ends_with(format::temp_suffix)) {
      auto path = s.jdir / name;
      if (auto ec = fs.remove(path)) return ec;
      s.emit({event_kind::temp_file_removed, path});
    } else if (auto seq = detail::parse_segment_name(name)) {
      segs.push_back(*seq);
    } else if (auto lsn = detail::parse_checkpoint_name(name)) {
      ckpts.push_back(*lsn);
    }
  }
  std::sort(segs.begin(), segs.end());
  std::sort(ckpts.begin(), ckpts.end(), std::greater<>());

  auto fences = detail::find_fence_points(fs, s.jdir, segs, s.id);
  if (!fences) return fences.error();
  for (const auto& f : fences.value()) {
    if (f.epoch > s.opts.epoch) return make_error_code(errc::fenced);  // a newer master wrote here
    s.max_epoch = std::max(s.max_epoch, f.epoch);
  }

  // Newest valid checkpoint whose replay segment still exists.
  detail::walk_input in;
  in.fs = &fs;
  in.journal_dir = s.jdir;
  in.segments = segs;
  in.id = s.id;
  in.fences = fences.value();
  for (auto lsn : ckpts) {
    auto path = detail::checkpoint_path(s.jdir, lsn);
    auto image = fs::read_file(fs, path);
    std::string reason;
    if (!image) {
      reason = "cannot read: " + image.error().message();
    } else {
      auto ct0 = clock::now();
      journal::index loaded(s.opts.producer_window);
      auto meta = detail::decode_checkpoint(std::as_bytes(std::span(image.value())), s.id, &loaded, reason);
      const detail::fence_point* newer = nullptr;
      if (meta) {
        for (const auto& f : fences.value())
          if (f.epoch > meta.value().max_epoch && f.cut <= meta.value().replay) newer = &f;
      }
      if (meta && !std::binary_search(segs.begin(), segs.end(), meta.value().replay.segment)) {
        reason = fmt::format("its replay segment {:016x} is missing", meta.value().replay.segment);
      } else if (meta && newer) {
        // Written by a master deposed before this position: it may hold records that a
        // newer master never saw.
        reason = fmt::format("written by epoch {} after epoch {} took over", meta.value().max_epoch, newer->epoch);
      } else if (meta) {
        s.idx = std::move(loaded);
        in.start = meta.value().replay;
        in.last_lsn = meta.value().lsn;
        in.fences.push_back(detail::fence_point{meta.value().max_epoch, meta.value().cut, meta.value().cut});
        s.max_epoch = std::max(s.max_epoch, meta.value().max_epoch);
        s.checkpoints[lsn] = meta.value().replay.segment;
        s.writer_checkpoints.insert(s.writer_checkpoints.begin(), lsn);
        s.writer_checkpoint_replay[lsn] = meta.value().replay.segment;
        report.from_checkpoint = true;
        report.checkpoint_file = path;
        event ev{event_kind::checkpoint_loaded, path};
        ev.first_lsn = lsn;
        ev.duration = since(ct0);
        s.emit(ev);
        break;
      }
    }
    event ev{event_kind::checkpoint_fallback, path};
    ev.reason = reason;
    s.emit(ev);
  }
  // The previous valid checkpoint stays as the fallback (and bounds GC); files older
  // than it are leftovers of a crash between writing a checkpoint and trimming.
  if (report.from_checkpoint) {
    const std::uint64_t loaded = s.writer_checkpoints.front();
    bool have_previous = false;
    for (auto lsn : ckpts) {
      if (lsn >= loaded) continue;
      auto path = detail::checkpoint_path(s.jdir, lsn);
      if (!have_previous) {
        auto image = fs::read_file(fs, path);
        std::string reason;
        if (image) {
          auto meta = detail::decode_checkpoint(std::as_bytes(std::span(image.value())), s.id, nullptr, reason);
          if (meta) {
            have_previous = true;
            s.writer_checkpoints.insert(s.writer_checkpoints.begin(), lsn);
            s.writer_checkpoint_replay[lsn] = meta.value().replay.segment;
            s.checkpoints[lsn] = meta.value().replay.segment;
            continue;
          }
        }
      }
      (void)fs.remove(path);
    }
  }

  // Replay.
  detail::message_view view;
  std::optional<damage> torn;
  std::optional<std::uint64_t> empty_last;
  std::error_code replay_error;
  event fenced_ev{event_kind::fenced_records};
  auto walked = detail::walk(in, [&](const detail::walk_item& w) {
    switch (w.kind) {
      case detail::walk_kind::segment:
        return true;
      case detail::walk_kind::record: {
        location where{w.segment, static_cast<std::uint32_t>(w.offset), static_cast<std::uint32_t>(w.bytes)};
        std::error_code ec;
        replay(s.idx, w.rec.type, w.payload, where, view, ec);
        if (ec) {
          damage d{w.file, w.offset, w.rec.lsn, "checksum verifies but the payload does not parse", w.bytes};
          if (s.opts.recovery != recovery_mode::salvage) {
            report.refused = d;
            replay_error = errc::mid_log_corruption;
            return false;
          }
          report.skipped.push_back(d);
        }
        s.idx.set_last_lsn(w.rec.lsn);
        ++report.records_replayed;
        return true;
      }
      case detail::walk_kind::fenced_record:
        if (report.fenced_records == 0) {
          report.fenced_first_lsn = w.rec.lsn;
          fenced_ev.file = w.file;
          fenced_ev.offset = w.offset;
        }
        ++report.fenced_records;
        report.fenced_last_lsn = w.rec.lsn;
        report.fenced_bytes += w.bytes;
        return true;
      case detail::walk_kind::fenced_damage:
        if (report.fenced_records == 0 && report.fenced_bytes == 0) {
          fenced_ev.file = w.file;
          fenced_ev.offset = w.offset;
        }
        report.fenced_bytes += w.bytes;
        return true;
      case detail::walk_kind::torn_tail:
        torn = to_damage(w);
        return true;
      case detail::walk_kind::empty_last_segment:
        empty_last = w.segment;
        return true;
      case detail::walk_kind::mid_log: {
        auto d = to_damage(w);
        event ev{s.opts.recovery == recovery_mode::salvage ? event_kind::corruption_skipped
                                                            : event_kind::corruption_found,
                 d.file};
        ev.offset = d.offset;
        ev.bytes = d.bytes;
        ev.first_lsn = d.lsn;
        ev.reason = d.reason;
        s.emit(ev);
        if (s.opts.recovery == recovery_mode::salvage) {
          report.skipped.push_back(d);
          return true;
        }
        report.refused = d;
        replay_error = errc::mid_log_corruption;
        return false;
      }
    }
    return true;
  });
  if (!walked) return walked.error();
  if (replay_error) {
    report.duration = since(t0);
    return replay_error;
  }
  if (report.fenced_records != 0 || report.fenced_bytes != 0) {
    fenced_ev.count = report.fenced_records;
    fenced_ev.first_lsn = report.fenced_first_lsn;
    fenced_ev.last_lsn = report.fenced_last_lsn;
    fenced_ev.bytes = report.fenced_bytes;
    fenced_ev.reason = "written by a deposed master after a takeover cut; ignored";
    s.emit(fenced_ev);
  }

  // Repair the tail: zero a torn tail, drop a segment whose header was never written.
  if (torn) {
    auto f = fs.open(torn->file, fs::open_mode::read_write);
    if (!f) return f.error();
    std::vector<std::byte> zeros(std::min<std::uint64_t>(torn->bytes, 1 << 20));
    for (std::uint64_t done = 0; done < torn->bytes;) {
      auto n = std::min<std::uint64_t>(zeros.size(), torn->bytes - done);
      if (auto ec = f.value()->write_at(std::span<const std::byte>(zeros.data(), n), torn->offset + done)) return ec;
      done += n;
    }
    if (auto ec = f.value()->sync()) return ec;
    event ev{event_kind::torn_tail_truncated, torn->file};
    ev.offset = torn->offset;
    ev.bytes = torn->bytes;
    ev.first_lsn = torn->lsn;
    ev.reason = torn->reason;
    s.emit(ev);
    report.torn_tail = torn;
  }
  if (empty_last) {
    auto path = detail::segment_path(s.jdir, *empty_last);
    if (auto ec = fs.remove(path)) return ec;
    if (auto ec = fs.sync_dir(s.jdir)) return ec;
    segs.pop_back();
    event ev{event_kind::segment_deleted, path};
    ev.reason = "last segment's header was never completely written (writer died creating it)";
    s.emit(ev);
  }

  const std::uint64_t last_lsn = walked.value().last_lsn;
  const position end = walked.value().end;
  s.segments.insert(segs.begin(), segs.end());
  s.seg_seq = segs.empty() ? 0 : segs.back();
  s.next_lsn = last_lsn + 1;
  s.idx.set_last_lsn(last_lsn);

  // A fresh segment for the new epoch, starting with epoch_start, synced before return.
  if (auto ec = s.roll(true)) return ec;
  epoch_start es{s.opts.epoch, end.segment, end.offset, last_lsn, s.opts.broker_name};
  std::vector<std::unique_ptr<entry>> first;
  first.push_back(s.make_record_entry(es));
  s.write_group(first);
  if (first[0]->ec) return first[0]->ec;
  if (s.opts.sync != sync_policy::always) {
    if (auto ec = s.timed_sync(*s.seg_file)) return ec;
  }
  s.durable_lsn = first[0]->lsn;
  s.durable_end = {first[0]->where.segment, std::uint64_t{first[0]->where.offset} + first[0]->where.size};
  s.idx.set_last_lsn(s.durable_lsn);
  s.max_epoch = s.opts.epoch;
  s.cut = end;

  // Fault the checkpoint buffer in now, on the thread that opens the store, rather than
  // at the first checkpoint on the owner thread (for a million live messages, ~30 MB of
  // page faults doubled that checkpoint's pause).
  {
    const std::size_t need = detail::checkpoint_size_estimate(s.idx);
    s.checkpoint_buffer.resize(need + need / 4);
    s.checkpoint_buffer.clear();
  }

  report.live_messages = s.idx.live_messages();
  report.live_bytes = s.idx.live_bytes();
  report.segments = s.segments.size();
  report.last_lsn = last_lsn;
  report.duration = since(t0);
  s.report = report;

  s.writer = std::thread([&s] { s.run_writer(); });
  return std::unique_ptr<store>(new store(std::move(p)));
}

// ---------------------------------------------------------------------------------------
// 6. public API
// ---------------------------------------------------------------------------------------

store::store(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

store::~store() { impl_->close(); }

void store::append(record r, completion done) {
  auto t = type_of(r);
  if (t == record_type::epoch_start || t == record_type::checkpoint || t == record_type::index_state)
    return impl_->reject(std::move(done), errc::invalid_argument);
  impl_->stats.appends.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(impl_->state_mu);
  impl_->append_locked(std::move(r), std::move(done), append_kind::user);
}

result<std::shared_ptr<const message_add>> store::read(std::string_view target, std::uint64_t msg_seq) {
  std::lock_guard lk(impl_->state_mu);
  const auto* m = impl_->idx.messages(target);
  if (!m) return make_error_code(errc::not_found);
  auto it = m->find(msg_seq);
  if (it == m->end()) return make_error_code(errc::not_found);
  return impl_->read_locked(it->second.where, msg_seq);
}

result<std::shared_ptr<const message_add>> store::read(const location& where, std::uint64_t msg_seq) {
  std::lock_guard lk(impl_->state_mu);
  return impl_->read_locked(where, msg_seq);
}

const journal::index& store::index() const { return impl_->idx; }

const io_stats& store::stats() const { return impl_->stats; }

std::uint64_t store::allocate_msg_seq() {
  std::lock_guard lk(impl_->state_mu);
  auto n = impl_->idx.next_msg_seq();
  impl_->idx.set_next_msg_seq(n + 1);
  return n;
}

bool store::compact_step(std::uint64_t max_bytes) { return impl_->compact_step(max_bytes); }

void store::checkpoint(completion done) { impl_->request_checkpoint(std::move(done)); }

std::error_code store::failed() const { return impl_->failed(); }

const store_id& store::id() const { return impl_->id; }

const recovery_report& store::recovery() const { return impl_->report; }

std::error_code store::close() { return impl_->close(); }

}  // namespace tandem::journal
