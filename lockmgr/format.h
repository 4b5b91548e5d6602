// On-disk formats of the election: DIR/lock, DIR/epoch and DIR/holder.json.
// (DIR/masters.jsonl, the history of masters for people, is in history.h: no election
// decision reads it.)
//
// This header is the single source for these three files: the names and constants the
// lock manager and the tools share, the layouts field by field, and the reasons. The
// journal never touches these files; it only receives the epoch (journal/format.h stamps it
// into segments) and a fence callback.
//
// ---------------------------------------------------------------------------------------
// DIR/lock  — the lock file
// ---------------------------------------------------------------------------------------
//   Contents: none. The file is always empty (size 0); its bytes carry no meaning and
//   nobody writes them. Only its identity (st_dev, st_ino) and the lock on it matter.
//   Lock:     one exclusive (F_WRLCK) open-file-description lock (F_OFD_SETLK[W]) over the
//             range start 0, length 0 = [0, infinity): the whole file now and at any size.
//   Created:  by the first broker that opens the store (O_CREAT, mode 0644), never by a
//             query or a tool (they open it read-only).
//   Deleted:  NEVER, not even on clean shutdown. Deleting it would let a starting broker
//             create a new inode and lock *that* while the master still holds the old one:
//             two masters. For the same reason replacing it (rename over it) is detected by
//             the watchdog (st_dev/st_ino of DIR/lock != fstat of our descriptor) and ends
//             mastership.
//
// ---------------------------------------------------------------------------------------
// DIR/epoch — the master epoch, a fencing token
// ---------------------------------------------------------------------------------------
//   Exactly two lines of ASCII, nothing else (28 bytes at most):
//     bytes 0..13   "tandem-epoch 1"   magic and format version, one space between
//     byte  14      '\n'
//     bytes 15..    <epoch>            decimal, 1 ..= 18446744073709551615, no sign, no
//                                      leading zeros, no spaces
//     last byte     '\n'
//   Example (epoch 42): "tandem-epoch 1\n42\n" (18 bytes).
//   Meaning: the epoch of the most recent master. Every acquisition reads it, stores
//   max(epoch file, holder.json epoch) + 1 and only then writes anything else, so epochs
//   strictly increase over the store's life and a journal segment stamped with epoch E was
//   written by the E-th master. A master whose epoch is no longer the stored one has been
//   deposed (the watchdog and fence_check compare it).
//   Written: only by the lock holder, with fs::write_file_atomically ("epoch.tmp", fsync,
//   rename, fsync DIR), so a reader sees the old or the new file, never a torn one.
//   Why text: an operator can read it with cat; it is rewritten once per takeover so size
//   and speed do not matter, and a checksum would only guard against bit rot that the
//   strict grammar already catches. Any deviation (wrong magic, other version, missing
//   final newline, extra bytes, overflow, 0) is refused as errc::bad_epoch_file rather than
//   read as 0, because restarting at 1 would reuse epochs and defeat fencing.
//   Missing file: a new store (epoch 0, the first master gets 1) — unless holder.json
//   exists, whose epoch then is the floor.
//
// ---------------------------------------------------------------------------------------
// DIR/holder.json — who holds (or last held) the lock
// ---------------------------------------------------------------------------------------
//   One JSON object (UTF-8, written pretty-printed with a final newline):
//     "format"           string  "tandem-holder"             required, else refused
//     "version"          number  1                           required; other versions refused
//     "broker_name"      string  the holder's configured broker name
//     "host"             string  gethostname() of the holder
//     "pid"              number  the holder's process id on that host
//     "epoch"            number  the epoch this holder stored in DIR/epoch
//     "acquired_at"      string  UTC ISO 8601 with milliseconds, "2024-05-01T12:00:00.123Z"
//     "client_url"       string  where clients reach this broker, e.g. "tcp://10.0.0.5:61613"
//     "software_version" string  the Tandem version of the holder
//     "clean_release"    bool    false while held; true once the holder released cleanly
//     "released_at"      string|null   UTC ISO 8601 of the clean release, else null
//     "lease_ms"         number  the holder's lease: it confirms its mastership at least this
//                                often (watchdog) and synchronously before each journal group
//                                completes; optional, absent/0 = unknown (an older writer)
//     "lock_dev"         number  st_dev of the DIR/lock inode the holder locked  } optional,
//     "lock_ino"         number  st_ino of that inode                            } 0 = unknown
//   Why the lease and the inode (issue 12): a taker whose kernel lock sits on ANOTHER inode
//   than the holder's (DIR/lock was removed or replaced behind a live holder) has no proof
//   that the holder is gone, even on a local file system; it waits the holder's OWN lease,
//   not its own check interval, before its first write (lock_manager::acquire).
//     "admin_url"        string  optional: the holder's admin HTTP base, "http://10.0.0.5:8161",
//                                or "" when it has no admin port (a slave's fence hook probes
//                                its /health, broker/fence_hook.h)
//     "mount_client_id"  string  optional: the holder's client of the shared file system as
//                                that file system names it (CephFS: the numeric client id of
//                                the mount, what `ceph tell mds.X client evict id=N` takes),
//                                "" when unknown; the fence command evicts it
//     "boot_id"          string  optional: /proc/sys/kernel/random/boot_id of the holder's
//                                host (random per boot, so it tells hosts and boots apart)
//     "pid_ns"           string  optional: the holder's pid namespace as readlink
//                                /proc/self/ns/pid prints it, "pid:[4026531836]"
//     "pid_start"        number  optional: the holder's start time, field 22 of
//                                /proc/<pid>/stat (clock ticks after boot); with boot_id and
//                                pid_ns it names one process for the life of the host, even
//                                after its pid is reused
//   Why the last three (issues 12/13): a taker on the SAME host, boot and pid namespace can
//   see whether the unclean holder still exists (lockmgr/holder_process.h); a holder that is
//   gone appends nothing more, so the taker skips the lease wait. Absent = unknown = wait.
//   The optional members were added without a version change: a record without them
//   reads as "" (or 0), and older readers ignore them.
//   Unknown extra members are ignored (a newer minor writer may add some).
//   Written: only by the lock holder, atomically like the epoch file: right after the epoch
//   on acquisition (clean_release false, durable), and again on a clean release
//   (clean_release true) BEFORE the lock is dropped, so the next master knows whether its
//   predecessor stopped cleanly. The release write is renamed into place without fsync
//   (fs::replace_file_visibly): losing it to a power cut only makes the end look unclean.
//   A clean record whose epoch is older than DIR/epoch is an unclean end too (its successor
//   died between its epoch and holder writes). Missing, unparsable, or clean_release false at acquisition = an unclean end:
//   on network and FUSE file systems the new master waits the takeover delay first.
//   Read without the lock (tandem-journal lock DIR, the broker's "waiting for" log line), so
//   it may be a moment stale: between a new master's epoch write and its holder write the
//   record still names the predecessor. A reader compares its epoch with DIR/epoch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/outcome/std_result.hpp>
#include <nlohmann/json.hpp>

namespace tandem::lockmgr {

inline constexpr std::string_view lock_file_name = "lock";
inline constexpr std::string_view epoch_file_name = "epoch";
inline constexpr std::string_view holder_file_name = "holder.json";

inline constexpr std::string_view epoch_magic = "tandem-epoch";
inline constexpr int epoch_format_version = 1;
inline constexpr std::string_view holder_format = "tandem-holder";
inline constexpr int holder_format_version = 1;

// "tandem-epoch 1\n<epoch>\n". REQUIRES: epoch >= 1.
std::string encode_epoch(std::uint64_t epoch);
// Strict parse of the whole file; errc::bad_epoch_file on any deviation.
boost::outcome_v2::std_result<std::uint64_t> parse_epoch(std::string_view contents);

struct holder_record {
  std::string broker_name;
  std::string host;
  std::int64_t pid = 0;
  std::uint64_t epoch = 0;
  std::string acquired_at;  // UTC ISO 8601 with milliseconds
  std::string client_url;
  std::string software_version;
  bool clean_release = false;
  std::optional<std::string> released_at;
  std::uint64_t lease_ms = 0;  // the holder's own lease (0: unknown, an older writer)
  std::uint64_t lock_dev = 0;  // st_dev / st_ino of the DIR/lock inode the holder locked
  std::uint64_t lock_ino = 0;  //   (0 / 0: unknown, an older writer)
  std::string admin_url;        // "" = none
  std::string mount_client_id;  // "" = unknown
  std::string boot_id;          // the holder host's boot id ("" = unknown)   } which process
  std::string pid_ns;           // its pid namespace, "pid:[N]" ("" = unknown) } exactly, so a
  std::uint64_t pid_start = 0;  // its start time in clock ticks (0 = unknown) } taker can see it died

  bool operator==(const holder_record&) const = default;
};

nlohmann::json to_json(const holder_record& record);
// errc::bad_holder_record on a missing or mistyped member, wrong format or version.
boost::outcome_v2::std_result<holder_record> holder_from_json(const nlohmann::json& j);
// The file's bytes: to_json(record).dump(2) + "\n".
std::string encode_holder(const holder_record& record);
boost::outcome_v2::std_result<holder_record> parse_holder(std::string_view contents);

// Current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string utc_now_iso8601();

}  // namespace tandem::lockmgr
