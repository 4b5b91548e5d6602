// The writer thread: it takes every queued entry, writes the records of a group with one
// gathered write and one fdatasync (group commit), rolls segments, writes checkpoint files
// and deletes segments, then posts the finished entries to the owner thread
// (append.cpp). It never touches the index.
#include <pthread.h>

#include <algorithm>

#include <fmt/format.h>

#include "journal/detail/checkpoint.h"
#include "journal/detail/store_impl.h"
#include "journal/errc.h"

namespace tandem::journal {

using detail::hdr;
using detail::since;
using detail::slow_fsync_threshold;

void store::impl::record_fsync(clock::duration took) {
  double seconds = std::chrono::duration<double>(took).count();
  std::size_t bucket = 0;
  while (bucket < io_stats::fsync_bucket_seconds.size() && seconds > io_stats::fsync_bucket_seconds[bucket]) ++bucket;
  stats.fsync_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  stats.fsyncs.fetch_add(1, std::memory_order_relaxed);
  stats.fsync_nanoseconds.fetch_add(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()),
      std::memory_order_relaxed);
}

std::error_code store::impl::timed_sync(fs::file& f) {
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
std::error_code store::impl::roll(bool skip_existing) {
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
void store::impl::write_group(std::vector<std::unique_ptr<entry>>& group) {
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
    }
    // Last, with the group durable (policy always) and nothing of it completed yet: a
    // synchronous look at the store, never a cached answer (options::confirm).
    if (auto ec = check_confirm()) {
      fail(ec, seg_file->path(), "mastership confirmation after fdatasync failed");
      return ec;
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

// What was written to the head segment becomes durable before `what` (a checkpoint, a
// deletion) may rely on it. Fails the store when the sync fails.
std::error_code store::impl::sync_head(std::string_view what) {
  if (failed_flag) return errc::journal_failed;
  if (!dirty || !seg_file) return {};
  if (auto ec = timed_sync(*seg_file)) {
    fail(ec, seg_file->path(), fmt::format("fdatasync before {} failed", what));
    return ec;
  }
  return {};
}

std::error_code store::impl::confirm_barrier() {
  if (failed_flag) return errc::journal_failed;
  if (auto ec = check_confirm()) {
    fail(ec, seg_file ? seg_file->path() : jdir, "mastership confirmation for a barrier failed");
    return ec;
  }
  return {};
}

// Checkpoint files off the append path. A checkpoint file is a few MB per 100,000 pending
// messages: written, synced, renamed and its directory synced, that took the writer 10-40 ms
// on ext4 and 100-200 ms on CephFS, and every append queued meanwhile waited for it (the
// RECEIPT tail at each checkpoint, and a new master's first RECEIPT after its takeover
// checkpoint). What must come before the file stays here on the writer thread, in queue
// order: the head's fdatasync (the image reflects records up to its lsn, which must be
// durable first) and the fence check (a deposed master must not leave a checkpoint that a
// new master's recovery would prefer). The file itself is written on checkpoint_thread
// while the writer goes on with groups. Nothing else depends on it until finish_checkpoint
// runs back on the writer thread: the owner's GC sees a checkpoint only through `kept`,
// which gains it there, so no segment it replays from can be deleted before it exists. The
// window between the fence check and the rename is the one a synchronous write had.
void store::impl::start_checkpoint(std::unique_ptr<entry> e, std::vector<std::unique_ptr<entry>>& done) {
  if (checkpoint_thread.joinable()) finish_checkpoint(done);  // one file at a time (close's own)
  if ((e->ec = sync_head("checkpoint"))) {
    done.push_back(std::move(e));
    return;
  }
  if (auto ec = check_fence()) {
    fail(ec, jdir, "fence check before checkpoint failed");
    e->ec = ec;
    done.push_back(std::move(e));
    return;
  }
  checkpoint_job = std::move(e);
  checkpoint_thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "journal-ckpt");
    write_checkpoint_file();
  });
}

// checkpoint_thread: touches only checkpoint_job (its own until it reports done) and the
// file system.
void store::impl::write_checkpoint_file() {
  auto& e = *checkpoint_job;
  const auto t0 = clock::now();
  detail::seal_checkpoint(e.buf);  // the checksum pass runs here, off the owner thread
  e.ec = fs::write_file_atomically(fs, detail::checkpoint_path(jdir, e.checkpoint_lsn), e.buf);
  e.checkpoint_write = since(t0);
  {
    std::lock_guard lk(queue_mu);
    checkpoint_file_done = true;
  }
  queue_cv.notify_one();
}

void store::impl::finish_checkpoint(std::vector<std::unique_ptr<entry>>& done) {
  checkpoint_thread.join();
  {
    std::lock_guard lk(queue_mu);
    checkpoint_file_done = false;
  }
  auto e = std::move(checkpoint_job);
  const auto path = detail::checkpoint_path(jdir, e->checkpoint_lsn);
  if (e->ec) {
    // A failed checkpoint loses nothing (the log still has every record), so it does not
    // fail the journal; the previous checkpoint stays in place.
    event ev{event_kind::checkpoint_fallback, path};
    ev.reason = "cannot write checkpoint: " + e->ec.message();
    emit(ev);
    done.push_back(std::move(e));
    return;
  }
  event ev{event_kind::checkpoint_written, path};
  ev.first_lsn = e->checkpoint_lsn;
  ev.bytes = e->buf.size();
  ev.duration = e->checkpoint_write;
  ev.owner_duration = e->checkpoint_encode;
  emit(ev);
  if (writer_checkpoints.empty() || writer_checkpoints.back() != e->checkpoint_lsn)
    writer_checkpoints.push_back(e->checkpoint_lsn);
  writer_checkpoint_replay[e->checkpoint_lsn] = e->checkpoint_replay_segment;
  while (writer_checkpoints.size() > 2) {
    auto old = writer_checkpoints.front();
    writer_checkpoints.erase(writer_checkpoints.begin());
    writer_checkpoint_replay.erase(old);
    (void)fs.remove(detail::checkpoint_path(jdir, old));
  }
  (void)fs.sync_dir(jdir);
  // The checkpoint record itself: informational, written like any record.
  std::vector<std::unique_ptr<entry>> one;
  one.push_back(make_record_entry(checkpoint_record{e->checkpoint_lsn, path.filename().string()}));
  one.back()->kind = entry_kind::internal_record;
  write_group(one);
  done.push_back(std::move(e));
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
void store::impl::delete_segment(entry& e) {
  auto path = detail::segment_path(jdir, e.segment);
  if ((e.ec = sync_head("deleting a segment"))) return;
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
void store::impl::run_writer() {
  std::vector<std::unique_ptr<entry>> batch;
  std::size_t previous_group = 0;
  for (;;) {
    bool stop = false;
    bool checkpoint_finished = false;
    {
      std::unique_lock lk(queue_mu);
      auto ready = [&] { return !queue.empty() || stopping || checkpoint_file_done; };
      writer_wakes_at = 1;
      if (opts.sync == sync_policy::periodic && dirty) {
        queue_cv.wait_until(lk, last_sync + opts.sync_interval, ready);
      } else {
        queue_cv.wait(lk, ready);
      }
      const auto linger = std::min<clock::duration>(opts.group_linger, last_sync_took / 2);
      if (opts.sync == sync_policy::always && linger.count() > 0 && previous_group > 1 && !stopping &&
          !queue.empty() && queue.size() < previous_group) {
        stats.lingers.fetch_add(1, std::memory_order_relaxed);
        writer_wakes_at = previous_group;
        queue_cv.wait_until(lk, clock::now() + linger, [&] { return queue.size() >= previous_group || stopping; });
        writer_wakes_at = 1;
      }
      batch.swap(queue);
      stop = stopping && batch.empty();
      checkpoint_finished = checkpoint_file_done;
    }
    previous_group = static_cast<std::size_t>(
        std::count_if(batch.begin(), batch.end(), [](const auto& e) { return e->kind == entry_kind::record; }));
    if (opts.sync == sync_policy::periodic && dirty && !failed_flag &&
        clock::now() >= last_sync + opts.sync_interval) {
      if (auto ec = timed_sync(*seg_file)) fail(ec, seg_file->path(), "periodic fdatasync failed");
    }
    if (stop) break;
    process(batch, checkpoint_finished);
    batch.clear();
  }
  // close() queued its final checkpoint before stopping: its file may still be in writing.
  if (checkpoint_thread.joinable()) {
    std::vector<std::unique_ptr<entry>> empty;
    process(empty, true);
  }
  if (dirty && seg_file && !failed_flag) {
    if (auto ec = timed_sync(*seg_file)) fail(ec, seg_file->path(), "fdatasync at close failed");
  }
  seg_file.reset();
}

void store::impl::process(std::vector<std::unique_ptr<entry>>& batch, bool checkpoint_finished) {
  std::vector<std::unique_ptr<entry>> done;
  std::vector<std::unique_ptr<entry>> group;
  if (checkpoint_finished) finish_checkpoint(done);
  // Barriers ride with the group they were queued among and complete after it: its last
  // record completing without error means the group's final flush passed check_confirm
  // after everything before the barriers was written (and synced, policy always).
  std::vector<std::unique_ptr<entry>> barriers;
  auto flush_group = [&] {
    if (!group.empty()) {
      write_group(group);
      for (auto& b : barriers) b->ec = group.back()->ec;
    } else if (!barriers.empty()) {
      const auto ec = confirm_barrier();
      for (auto& b : barriers) b->ec = ec;
    }
    for (auto& e : group) done.push_back(std::move(e));
    for (auto& b : barriers) done.push_back(std::move(b));
    group.clear();
    barriers.clear();
  };
  for (auto& e : batch) {
    if (e->kind == entry_kind::record) {
      group.push_back(std::move(e));
      continue;
    }
    if (e->kind == entry_kind::barrier) {
      barriers.push_back(std::move(e));
      continue;
    }
    flush_group();
    if (e->kind == entry_kind::checkpoint) {
      start_checkpoint(std::move(e), done);
      continue;
    }
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

}  // namespace tandem::journal
