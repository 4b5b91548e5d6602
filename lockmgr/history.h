// DIR/masters.jsonl — the store's history of masters, for the console's failover timeline.
//
// Every broker's own memory of its stints ends with its process; this file is what makes
// the timeline outlive restarts: each master adds one line once it serves. It is history
// for people, not election state: nothing in the election or the journal reads it, so a
// lost or damaged file costs only the picture (the lock, DIR/epoch and DIR/holder.json
// decide who is master; format.h).
//
// ---------------------------------------------------------------------------------------
// Format: JSON Lines (UTF-8). One object per line, "\n" after each, oldest first:
//   "epoch"                number  the master's epoch (DIR/epoch), strictly increasing
//   "broker_name"          string  its configured broker name
//   "host"                 string  gethostname() of the master
//   "pid"                  number  its process id there
//   "acquired_at_ms"       number  wall clock (Unix ms, UTC) when it got the lock
//   "serving_at_ms"        number  wall clock when its client port opened
//   "takeover_delay_ms"    number  the wait for an unclean predecessor's lease (0 after a
//                                  clean release or a predecessor proven dead)
//   "start_ms"             number  lock acquired -> serving (recovery, listeners)
//   "previous_clean"       bool    the predecessor released the lock cleanly
//   "previous_broker"      string  the predecessor's broker name ("" = none, a new store)
//   "previous_epoch"       number  its epoch (0 = none)
//   "failover_ms"          number|null  how long the store had no master, as this master
//                                  measured it: after a clean release, released_at of the
//                                  predecessor (holder.json) -> serving_at_ms; after an
//                                  unclean end, takeover_delay_ms + start_ms (from the
//                                  moment the lock was free: its holder's death or the end
//                                  of its lease); null for the first master of a store.
// Members a reader does not know are ignored (later versions may add some); a line that is
// not such an object is skipped by readers and dropped at the next write.
//
// Written: only by the master, once per mastership, after it serves: the whole file is
// read, the line added, the oldest lines beyond max_history_lines dropped, and the file
// replaced atomically but not durably (fs::replace_file_visibly): a power loss may cost
// the newest line, never a torn file, and no fsync lands on the takeover's path.
// A deposed master that is still running may add its line late; readers sort by epoch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/outcome/std_result.hpp>
#include <nlohmann/json_fwd.hpp>

namespace tandem::fs {
class file_system;
}

namespace tandem::lockmgr {

inline constexpr std::string_view history_file_name = "masters.jsonl";
inline constexpr std::size_t max_history_lines = 500;

struct master_stint {
  std::uint64_t epoch = 0;
  std::string broker_name;
  std::string host;
  std::int64_t pid = 0;
  std::int64_t acquired_at_ms = 0;
  std::int64_t serving_at_ms = 0;
  std::int64_t takeover_delay_ms = 0;
  std::int64_t start_ms = 0;
  bool previous_clean = true;
  std::string previous_broker;
  std::uint64_t previous_epoch = 0;
  std::optional<std::int64_t> failover_ms;

  bool operator==(const master_stint&) const = default;
};

// The failover_ms rule above. `previous_released_at` is holder.json's released_at of a
// clean predecessor (ISO 8601, format.h); ignored after an unclean end.
std::optional<std::int64_t> failover_ms(const master_stint& s, const std::optional<std::string>& previous_released_at);

// Unix ms of "YYYY-MM-DDTHH:MM:SS.mmmZ" (utc_now_iso8601's shape); nullopt if it is not that.
std::optional<std::int64_t> unix_ms_of_iso8601(std::string_view text);

// The JSON object of one stint: the line's fields (/health's "history" serves these).
nlohmann::json to_json(const master_stint& s);
// One line (no "\n") and back; parse_stint returns nullopt for a line that is not a stint.
std::string encode_stint(const master_stint& s);
std::optional<master_stint> parse_stint(std::string_view line);

// Adds `s` to DIR/masters.jsonl as described above.
std::error_code append_history(fs::file_system& fs, const std::filesystem::path& dir, const master_stint& s);
// The newest `limit` stints, oldest first, sorted by epoch. A missing file is an empty
// history; unreadable lines are skipped.
boost::outcome_v2::std_result<std::vector<master_stint>> read_history(fs::file_system& fs,
                                                                      const std::filesystem::path& dir,
                                                                      std::size_t limit = max_history_lines);

}  // namespace tandem::lockmgr
