// The one scanner behind recovery (store.cpp) and the read-only scan (reader.cpp): walks
// segments in seq order, verifies every record, and classifies damage and fenced ranges
// by the rules of format.h section 7. It never writes; recovery acts on what it reports.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "journal/fs/file_system.h"
#include "journal/identity.h"
#include "journal/records.h"

namespace tandem::journal::detail {

struct position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  friend auto operator<=>(const position&, const position&) = default;
};

// An epoch_start found at `at` (first record of a segment created by a new master).
struct fence_point {
  std::uint64_t epoch = 0;
  position cut;
  position at;
  std::uint64_t last_lsn = 0;  // lsn of the record ending at `cut` (0: none, or unknown)
  std::uint64_t lsn = 0;       // the epoch_start's own lsn (0: unknown)
};

enum class walk_kind {
  segment,         // a segment starts; header (nullopt when damaged/empty), file_size
  record,          // a valid, non-fenced record
  fenced_record,   // valid record written by a deposed master after a cut
  fenced_damage,   // damaged bytes in fenced territory (the deposed master's, ignored)
  torn_tail,       // damage in the last segment with no valid group_start record after it
                   // (version 1 segments: no valid record at all); format.h section 7
  mid_log,         // damage followed by a valid group_start record (version 1: any valid
                   // record), or damage in an earlier segment
  empty_last_segment,  // last segment whose header was never completely written
  // The log's valid data ends before the cut of the next epoch_start, whose lsn follows
  // on from the missing records: a master replayed records that were never durable, built
  // on them, and a power loss took them (issue 12, bug 6; format.h section 7). file, offset,
  // bytes: the missing range of the cut's segment; expected_lsn: the first missing lsn;
  // rec: the epoch_start (rec.lsn - 1 is the last missing lsn). The walk goes on with it.
  lost_unsynced,
};

struct walk_item {
  walk_kind kind{};
  std::filesystem::path file;
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;  // record bytes (with padding), or damaged range
  std::uint64_t file_size = 0;
  std::optional<segment_header> header;  // segment
  record_header rec;                     // record, fenced_record
  std::span<const std::byte> payload;    // record, fenced_record (valid during the callback)
  std::uint64_t expected_lsn = 0;        // damage: previous valid lsn + 1 (0 = unknown)
  std::string reason;                    // damage
};

struct walk_input {
  fs::file_system* fs = nullptr;
  std::filesystem::path journal_dir;
  std::vector<std::uint64_t> segments;   // every segment seq present, ascending
  store_id id;
  position start;                        // {0,0} = from the first segment's first record
  std::uint64_t last_lsn = 0;            // lsn of the record before `start` (0 = unknown)
  std::vector<fence_point> fences;       // from find_fence_points (+ the checkpoint's)
  // The last segment is read past this host's page cache (options::last_segment_past_cache).
  bool last_segment_past_cache = true;
};

struct walk_result {
  std::uint64_t last_lsn = 0;   // last valid non-fenced lsn
  position end;                 // end of the last valid non-fenced record
  std::uint64_t records = 0;
  // Everything before this position was durable when the record there was written: the
  // last valid group_start record (format.h section 4), the start of a version 1 segment,
  // or input.start. Bytes from here to `end` may never have been synced.
  position synced_before;
};

std::filesystem::path segment_path(const std::filesystem::path& journal_dir, std::uint64_t seq);
std::filesystem::path checkpoint_path(const std::filesystem::path& journal_dir, std::uint64_t lsn);
// Parses "<16 hex>.seg" / "checkpoint-<16 hex>.ckpt"; nullopt for other names.
std::optional<std::uint64_t> parse_segment_name(std::string_view name);
std::optional<std::uint64_t> parse_checkpoint_name(std::string_view name);

// The segment and checkpoint files of a journal directory (other names, temporaries
// included, are ignored). Errors: OS errors of the listing.
struct inventory {
  std::vector<std::uint64_t> segments;     // seqs, ascending
  std::vector<std::uint64_t> checkpoints;  // covered lsns, descending (newest first)
  std::vector<std::string> temporaries;    // names ending in format::temp_suffix
};
fs::result<inventory> take_inventory(fs::file_system& fs, const std::filesystem::path& journal_dir);

// What the first record of a segment says for fencing.
struct segment_start {
  std::optional<fence_point> fence;  // its epoch_start, when it starts with one
  // A whole first record with a valid checksum was read. Nothing rewrites a record, so
  // what a settled start says stays true for as long as the segment exists (a slave's
  // preload reads each once, journal/standby.h); an unsettled one (no header yet, a first
  // record not written or torn) may still change and is read again.
  bool settled = false;
};
using known_segment_starts = std::map<std::uint64_t, segment_start>;

// Reads the first record of segment `seq`. Errors: errc::unsupported_version (a valid
// segment header of another format version), OS errors.
fs::result<segment_start> read_segment_start(fs::file_system& fs, const std::filesystem::path& journal_dir,
                                             std::uint64_t seq, const store_id& id);

// Reads the first record of every segment and returns the epoch_start fence points; a
// segment whose settled start is in `known` is not read again. Errors: those of
// read_segment_start (a damaged first record simply is not a fence point).
fs::result<std::vector<fence_point>> find_fence_points(fs::file_system& fs,
                                                       const std::filesystem::path& journal_dir,
                                                       const std::vector<std::uint64_t>& segments,
                                                       const store_id& id,
                                                       const known_segment_starts* known = nullptr);

// True when a valid record with `lsn` ends exactly at byte `end` of segment file `path`
// (false also when the file is shorter). Reads backwards from `end` until it finds the
// record or reaches the segment header. Errors: OS errors.
fs::result<bool> record_ends_at(fs::file_system& fs, const std::filesystem::path& path, std::uint64_t end,
                                std::uint64_t lsn);

// Walks from input.start; `visit` returns false to stop. Errors: errc::wrong_store (a
// segment of another store), errc::unsupported_version, OS errors.
fs::result<walk_result> walk(const walk_input& input,
                             const std::function<bool(const walk_item&)>& visit);

}  // namespace tandem::journal::detail
