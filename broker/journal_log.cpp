#include "broker/journal_log.h"

#include "broker/log.h"

namespace tandem::broker {

void log_journal_event(const journal::event& e) {
  using k = journal::event_kind;
  auto file = e.file.string();
  switch (e.kind) {
    case k::torn_tail_truncated:
      log::warn("journal", "torn tail truncated", {log::kv("file", file), log::kv("offset", e.offset),
                                                   log::kv("bytes", e.bytes), log::kv("reason", e.reason)});
      break;
    case k::corruption_skipped:
      log::error("journal", "damaged range skipped (salvage)", {log::kv("file", file), log::kv("offset", e.offset),
                                                                 log::kv("bytes", e.bytes), log::kv("lsn", e.first_lsn),
                                                                 log::kv("reason", e.reason)});
      break;
    case k::corruption_found:
      log::error("journal", "mid-log corruption", {log::kv("file", file), log::kv("offset", e.offset),
                                                   log::kv("bytes", e.bytes), log::kv("lsn", e.first_lsn),
                                                   log::kv("reason", e.reason)});
      break;
    case k::fenced_records:
      log::warn("journal", "records of a deposed master ignored",
                {log::kv("file", file), log::kv("offset", e.offset), log::kv("count", e.count),
                 log::kv("first_lsn", e.first_lsn), log::kv("last_lsn", e.last_lsn), log::kv("bytes", e.bytes)});
      break;
    case k::checkpoint_loaded:
      // "preloaded": this broker read and decoded it while a slave (journal/standby.h);
      // took_ms is then only the check that the file is unchanged.
      log::info("journal", "checkpoint loaded", {log::kv("file", file), log::kv("lsn", e.first_lsn),
                                                 log::kv("took_ms", e.duration.count()),
                                                 log::kv("preloaded", e.reason == "preloaded")});
      break;
    case k::checkpoint_fallback:
      // Two causes, one consequence: a checkpoint refused at load (replay starts further back)
      // or one that could not be written (the previous one stays). The log holds every record.
      log::warn("journal", "checkpoint not used, the log still has every record",
                {log::kv("file", file), log::kv("reason", e.reason)});
      break;
    case k::checkpoint_written:
      log::debug("journal", "checkpoint written", {log::kv("file", file), log::kv("lsn", e.first_lsn),
                                                   log::kv("bytes", e.bytes), log::kv("took_ms", e.duration.count()),
                                                   log::kv("encode_ms", e.owner_duration.count() / 1000.0)});
      break;
    case k::slow_fsync:
      log::warn("journal", "slow fsync", {log::kv("file", file), log::kv("took_ms", e.duration.count())});
      break;
    case k::segment_created:
      log::debug("journal", "segment created", {log::kv("file", file)});
      break;
    case k::segment_deleted:
      log::debug("journal", "segment deleted", {log::kv("file", file), log::kv("reason", e.reason)});
      break;
    case k::compaction_done:
      log::info("journal", "segment compacted", {log::kv("file", file), log::kv("records", e.count), log::kv("bytes", e.bytes)});
      break;
    case k::temp_file_removed:
      log::info("journal", "stale temporary removed", {log::kv("file", file)});
      break;
    case k::journal_failed:
      log::error("journal", "journal failed", {log::kv("file", file), log::kv("reason", e.reason)});
      break;
    case k::tail_made_durable:
      log::info("journal", "recovered tail made durable before serving",
                {log::kv("file", file), log::kv("offset", e.offset), log::kv("bytes", e.bytes),
                 log::kv("took_ms", e.duration.count())});
      break;
    case k::unsynced_records_lost:
      log::error("journal", "records never made durable were lost; dropped",
                 {log::kv("file", file), log::kv("offset", e.offset), log::kv("bytes", e.bytes),
                  log::kv("count", e.count), log::kv("first_lsn", e.first_lsn), log::kv("last_lsn", e.last_lsn),
                  log::kv("reason", e.reason)});
      break;
  }
}

}  // namespace tandem::broker
