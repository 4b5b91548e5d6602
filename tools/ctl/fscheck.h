// tandemctl fscheck: an operator's check of a file system before trusting it with a store
// (IBM MQ ships amqmfsck for the same reason). It tries, with real processes, what Tandem's
// election and journal rely on: an exclusive OFD lock that excludes across two mounts, a
// blocked waiter that wakes when the lock is released, a lock freed when its holder dies, a
// replaced lock file that the holder can see (what a lost lock looks like to the watchdog),
// and fdatasync that costs what a durable write costs, with the data visible through the
// other mount. It also reads the mount's options and refuses those known to break locks.
//
// It works in a fresh subdirectory DIR/.tandem-fscheck-<pid> and removes it: it never
// touches a store's own lock file, so it is safe next to running brokers.
//
// The mount-option rules are pure functions (mount_of, judge_mount) for unit tests; the
// process checks run in run_fscheck.
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::ctl {

enum class check_result { pass, warn, fail };
std::string_view to_string(check_result r);

struct check_outcome {
  std::string name;    // "mount", "exclusion", "exclusion_peer", "wake_up", "holder_death", "replaced_lock", "fsync"
  check_result result = check_result::pass;
  std::string detail;  // one or two sentences an operator can act on
  nlohmann::json figures = nlohmann::json::object();
};

// One line of /proc/self/mountinfo (proc(5)), with the escapes (\040 ...) undone.
struct mount_entry {
  std::filesystem::path mount_point;
  std::string fstype;         // "ext4", "nfs4", "fuse.ceph-fuse", "ceph", "fuse.glusterfs", ...
  std::string source;         // "/dev/vda1", "server:/export", "ceph-fuse", ...
  std::string mount_options;  // per-mount: "rw,relatime"
  std::string super_options;  // per-superblock: "rw,vers=4.2,hard,local_lock=none,..."
};

// The mount that holds `path` (an absolute, canonical path): the entry with the longest
// mount point that is a prefix of it, the last one when mounts are stacked. nullopt when the
// text has no usable line.
std::optional<mount_entry> mount_of(std::string_view mountinfo, const std::filesystem::path& path);

// What the mount's type and options mean for a store: NFSv3, nolock, local_lock=, soft fail;
// GlusterFS, tmpfs and overlay warn; the rest pass with a note on how locks are arbitrated.
check_outcome judge_mount(const mount_entry& m);

struct fscheck_options {
  std::filesystem::path dir;
  std::optional<std::filesystem::path> peer;  // the same directory through another mount
  bool json = false;
  std::chrono::milliseconds wait_limit{10000};  // how long a lock may take to move
  int sync_samples = 200;
};

// Runs every check and prints the report (a table, or JSON with --json). Exit code 0 when
// nothing failed (warnings allowed), 1 when a check failed, 2 when DIR (or DIR2) is unusable.
int run_fscheck(const fscheck_options& options, std::ostream& out, std::ostream& err);

}  // namespace tandem::ctl
