// fault_rules: which operations tandem-faultfs fails, and with which error.
//
// A rule names a set of operation classes, what to do to them (fail with an errno, or delay
// them by some milliseconds and then let them run), how many matching operations to let
// through first (`skip`), how many to act on after that (`count`, 0 = every one until the
// rule is cleared), and optionally a glob (fnmatch(3), no flags) over the path relative to
// the mount root ("journal/*.seg", "lock") and the process that made the request (`pid`:
// its thread group; a slow NFS server answers one client late, not all). A failed
// operation has no effect: a failed write writes nothing, a failed fsync commits nothing
// (power_model.h). Rules are checked in the order they were added; the first that fires
// decides.
//
// Threads: every method may be called from any thread (one mutex).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::faultfs {

// Operation classes; a rule holds a bit set of them.
enum class op_class : unsigned {
  read = 1u << 0,   // read
  write = 1u << 1,  // write, fallocate, truncate (setattr size), open with O_TRUNC
  fsync = 1u << 2,  // fsync, fdatasync, fsync of a directory
  open = 1u << 3,   // open, opendir, create (the open half)
  meta = 1u << 4,   // create, mknod, mkdir, symlink, link, unlink, rmdir, rename
  stat = 1u << 5,   // getattr (stat, fstat)
  lock = 1u << 6,   // getlk, setlk (fcntl and OFD locks, with --locks daemon)
};
inline constexpr unsigned all_ops = 0x7f;

struct fault_rule {
  unsigned ops = 0;
  int error = 0;                          // 0 with a delay: only slow
  std::chrono::milliseconds delay{0};
  std::uint64_t skip = 0;
  std::uint64_t count = 1;  // 0: no limit
  std::string path_glob;    // empty: every path
  pid_t pid = 0;            // 0: every process
  std::uint64_t matched = 0;
  std::uint64_t injected = 0;
};

// "write", "fsync", "write,fsync", "all" -> a bit set; nullopt on an unknown name.
std::optional<unsigned> parse_ops(std::string_view text);
std::string ops_to_string(unsigned ops);
// "eio", "enospc", "edquot", "erofs", "eagain" or a decimal errno -> errno; 0 if unknown.
int parse_errno_name(std::string_view text);
std::string errno_name(int error);

struct fault_decision {
  int error = 0;                        // fail with this, after the delay
  std::chrono::milliseconds delay{0};   // wait this long first
};

class fault_rules {
 public:
  void add(fault_rule r);
  void clear();
  // What to do to an operation of class `op` on `path` asked by process `pid` (only
  // computed by the caller when needs_pid()).
  fault_decision check(op_class op, std::string_view path, pid_t pid = 0);
  bool needs_pid() const;
  std::vector<fault_rule> list() const;
  std::uint64_t injected() const;

 private:
  mutable std::mutex mutex_;
  std::vector<fault_rule> rules_;
  std::uint64_t injected_ = 0;
  bool needs_pid_ = false;
};

}  // namespace tandem::faultfs
