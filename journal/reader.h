// Read-only scanning of a store for tools/tandem-journal (summary, dump, verify) and
// tests: every segment and record with its position, decoded, plus the damage and fencing
// classification recovery would apply. Writes nothing, takes no lock, so it is safe on a
// store a broker is serving (it may then see a tail that is still being written; that
// shows up as "end of data" or a torn tail, never as a change to the store).
// Thread-safe free function; all I/O through the given file_system.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <system_error>

#include "journal/fs/file_system.h"
#include "journal/identity.h"
#include "journal/index.h"
#include "journal/records.h"
#include "journal/store.h"

namespace tandem::journal {

enum class scan_item_kind {
  segment,  // a segment file starts: path, segment_seq, segment header (if valid), file_size
  record,   // a valid record: position, header, payload (decoded when asked)
  damage,   // a damaged range: damage struct + classification
  fenced,   // a record (or damaged range) written by a deposed master after a cut
};

enum class damage_class {
  none,
  torn_tail,          // in the last segment, written after the last completed fdatasync (no
                      // valid group_start record after it): recovery truncates
  mid_log,            // a valid group_start record after it (synced data was damaged), or
                      // not in the last segment: recovery refuses
  empty_segment_tail, // last segment whose header was never written (writer died creating it)
  lost_unsynced,      // records a later epoch_start names as its history are missing: never
                      // durable, lost in a power failure (issue 12 bug 6): recovery drops them
};

struct scan_item {
  scan_item_kind kind{};
  std::filesystem::path file;
  std::uint64_t segment_seq = 0;
  std::uint64_t offset = 0;  // of the record header / damaged range
  std::uint64_t file_size = 0;                  // segment
  std::optional<segment_header> segment;        // segment (nullopt: header damaged)
  record_header header;                         // record, fenced (when the header parsed)
  std::uint64_t record_bytes = 0;               // record, fenced: header + payload + padding
  std::optional<record> payload;                // record, when scan_options::decode
  std::error_code decode_error;                 // record: payload did not decode
  journal::damage damage;                       // damage, fenced garbage
  damage_class classification = damage_class::none;
};

struct scan_options {
  bool decode = true;  // decode payloads (dump); false for a fast verify/summary
  // Skip segments before this one (e.g. a checkpoint's replay position); 0 = all.
  std::uint64_t from_segment = 0;
};

struct scan_summary {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
  std::uint64_t max_epoch = 0;
  std::uint64_t fenced_records = 0;
  std::uint64_t damaged_ranges = 0;
  bool mid_log_corruption = false;  // what `verify` turns into a non-zero exit
  std::optional<damage> torn_tail;
};

// Scans DIR/journal in segment order and calls `visit` for each item; `visit` returns
// false to stop early. Checks every segment's store id against DIR/identity.
// Errors: errc::not_a_store, unsupported_version, OS errors; damage is NOT an error (it is
// reported through items and the summary).
result<scan_summary> scan(fs::file_system& fs, const std::filesystem::path& dir,
                          const scan_options& opts,
                          const std::function<bool(const scan_item&)>& visit);

// The index store::open would recover from DIR, built by the same code (the newest valid
// checkpoint, then the replay of the log after it through apply_record; format.h section
// 7) but writing nothing: no temporary removed, no tail repaired, no checkpoint trimmed.
// `report` is filled as open fills it (torn_tail: what open would truncate). In
// tolerate_torn_tail mode mid-log corruption fails with errc::mid_log_corruption and
// report.refused, as open does; salvage mode skips it and lists it in report.skipped.
// `producer_window` must be the broker's to rebuild the same dedup windows. Errors as
// store::open's, except errc::fenced (there is no epoch to compare with).
result<index> rebuild_index(fs::file_system& fs, const std::filesystem::path& dir, recovery_mode mode,
                            recovery_report& report, std::size_t producer_window = 1024,
                            std::size_t max_producers = 0);

// Checkpoint files of DIR/journal, newest first, each with whether it validates.
struct checkpoint_info {
  std::filesystem::path file;
  std::uint64_t lsn = 0;
  std::uint64_t replay_segment = 0;
  std::uint64_t replay_offset = 0;
  std::uint64_t live_messages = 0;
  std::error_code error;   // {} when valid
  std::string reason;      // why invalid
};
result<std::vector<checkpoint_info>> list_checkpoints(fs::file_system& fs,
                                                      const std::filesystem::path& dir);

}  // namespace tandem::journal
