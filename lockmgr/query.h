// Who holds the store's lock, asked WITHOUT taking it (tandem-journal lock DIR, the broker's
// "slave: waiting for ..." line).
//
// The lock file is opened read-only (never created: a typo in DIR must not litter a new
// directory with a lock file) and asked with F_OFD_GETLK — a lock query, never a try-lock,
// which would briefly hold the store. The answer is a snapshot: the holder may change the
// moment after. holder.json may lag the lock by one takeover (see lockmgr/format.h);
// compare holder->epoch with epoch.
//
// Threads: any; no shared state. Safe inside a broker process that holds the lock (the OFD
// lock is not disturbed by our extra descriptor; it reports held = true).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <boost/outcome/std_result.hpp>
#include <nlohmann/json.hpp>

#include "journal/fs/file_system.h"
#include "lockmgr/format.h"

namespace tandem::lockmgr {

struct lock_status {
  std::filesystem::path dir;
  bool lock_file_exists = false;
  bool held = false;                     // some open file holds a lock on DIR/lock now
  std::optional<holder_record> holder;   // DIR/holder.json, if present and valid
  std::string holder_error;              // why holder is empty although the file exists
  std::optional<std::uint64_t> epoch;    // DIR/epoch, if present and valid
  std::string epoch_error;               // why epoch is empty although the file exists
};

// Errors: DIR missing or not a directory, I/O errors, F_OFD_GETLK failures. A missing lock
// file is not an error (lock_file_exists = false, held = false).
boost::outcome_v2::std_result<lock_status> query(const std::filesystem::path& dir,
                                                 fs::file_system& fs = fs::posix_file_system());

// {
//   "dir": "/srv/tandem/store",
//   "lock_file": true,
//   "held": true,
//   "state": "held" | "free" | "free_after_clean_release" | "free_after_unclean_end",
//   "epoch": 7 | null,                 "epoch_error": "..." (only when unreadable)
//   "holder": { holder.json members, see format.h } | null,
//   "holder_error": "..." (only when unreadable),
//   "holder_is_current": true          (holder.epoch == epoch)
// }
// "free_after_unclean_end": nobody holds the lock and the last holder did not release it
// (it crashed, was killed or was deposed); the next master will apply the takeover delay.
nlohmann::json to_json(const lock_status& status);
std::string render_json(const lock_status& status);  // to_json(...).dump(2) + "\n"

}  // namespace tandem::lockmgr
