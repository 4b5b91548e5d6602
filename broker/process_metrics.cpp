#include "broker/process_metrics.h"

#include <unistd.h>

#include <array>
#include <cstdio>

namespace tandem::broker {
namespace {

double seconds(std::chrono::milliseconds ms) { return static_cast<double>(ms.count()) / 1000.0; }
double seconds_from_ns(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

void render_lock_checks(const process_figures::lock_checks& l, prometheus::writer& out) {
  out.counter("tandem_lock_checks_total", "Mastership checks (lock file, epoch) run while master.", l.checks);
  out.counter("tandem_lock_check_failures_total",
              "Mastership checks that found the lock lost (the process then steps down).", l.failures);
  out.counter("tandem_lock_check_seconds_total", "Time spent in mastership checks.", seconds_from_ns(l.nanoseconds));
  out.gauge("tandem_lock_check_max_seconds", "The slowest mastership check so far.", seconds_from_ns(l.max_nanoseconds));
}

void render_journal(const process_figures::journal_figures& j, prometheus::writer& out) {
  out.gauge("tandem_journal_live_messages", "Live (destination, message) entries in the journal index.", j.live_messages);
  out.gauge("tandem_journal_live_bytes", "Bytes of live records in the journal.", j.live_bytes);
  out.counter("tandem_journal_last_lsn", "Last log sequence number applied.", j.last_lsn);
  if (!j.io) return;
  const journal::io_stats& st = *j.io;
  out.counter("tandem_journal_appends_total", "Records appended to the journal.", st.appends.load(std::memory_order_relaxed));
  // Group commit at work: group_records / groups is the mean group size, which on a shared
  // file system with a slow fdatasync is what throughput depends on (docs/operations.md).
  out.counter("tandem_journal_groups_total", "Gathered record writes (one per group commit, two when a group rolls a segment).",
              st.groups.load(std::memory_order_relaxed));
  out.counter("tandem_journal_group_records_total", "Records written by those group writes.",
              st.group_records.load(std::memory_order_relaxed));
  out.counter("tandem_journal_lingers_total", "Times the journal writer waited for a group to fill before writing it.",
              st.lingers.load(std::memory_order_relaxed));
  out.counter("tandem_journal_checkpoint_encodes_total", "Checkpoints whose image the io thread encoded from the index.",
              st.checkpoint_encodes.load(std::memory_order_relaxed));
  out.counter("tandem_journal_checkpoint_encode_seconds_total",
              "Time the io thread spent encoding checkpoint images (it serves nothing else meanwhile).",
              seconds_from_ns(st.checkpoint_encode_nanoseconds.load(std::memory_order_relaxed)));
  out.gauge("tandem_journal_checkpoint_encode_max_seconds", "Longest single checkpoint encoding on the io thread.",
            seconds_from_ns(st.checkpoint_encode_max_nanoseconds.load(std::memory_order_relaxed)));
  out.counter("tandem_journal_fsyncs_total", "fdatasync calls of the journal writer.", st.fsyncs.load(std::memory_order_relaxed));
  std::array<std::uint64_t, std::tuple_size_v<decltype(st.fsync_buckets)>> buckets{};
  for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] = st.fsync_buckets[i].load(std::memory_order_relaxed);
  out.histogram("tandem_journal_fsync_seconds", "Duration of the journal's fdatasync calls.",
                journal::io_stats::fsync_bucket_seconds, buckets,
                seconds_from_ns(st.fsync_nanoseconds.load(std::memory_order_relaxed)));
}

}  // namespace

std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

void render_process_metrics(const process_figures& f, prometheus::writer& out) {
  out.family("tandem_role", prometheus::metric_type::gauge, "1 for the role this process has now.");
  for (auto r : metric_roles) out.sample("tandem_role", {{"role", r}}, r == f.role ? 1 : 0);
  out.gauge("tandem_epoch", "Master epoch of this process (0 before the lock).", f.epoch);
  out.gauge("tandem_uptime_seconds", "Seconds since this process started.", f.uptime.count());
  // A process takes over at most once (a deposed one exits): 0 or 1. Sum it over the
  // group's processes, or read tandem_epoch, for the store's count.
  out.counter("tandem_takeovers_total", "Times this process became master.", f.takeovers);
  out.gauge("tandem_recovery_seconds", "Lock acquired to serving, at the last takeover (journal recovery included).",
            seconds(f.recovery));
  out.gauge("tandem_journal_recovery_seconds", "Journal recovery (checkpoint load and replay) at the last takeover.",
            seconds(f.journal_recovery));
  if (f.lock) render_lock_checks(*f.lock, out);
  if (!f.engine_renders_connections) out.gauge("tandem_connections", "Open STOMP connections.", f.connections.open);
  out.counter("tandem_connections_accepted_total", "STOMP connections accepted.", f.connections.accepted);
  out.counter("tandem_connections_refused_total", "Connections refused at max_connections.", f.connections.refused);
  if (f.journal) render_journal(*f.journal, out);
  if (f.disk_bytes)
    out.gauge("tandem_journal_disk_bytes", "Bytes of files under the store's journal directory.", *f.disk_bytes);
}

}  // namespace tandem::broker
