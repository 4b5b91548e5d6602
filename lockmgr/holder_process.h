// holder_process: is the process that held the lock still there? (issues 12 and 13)
//
// After an unclean end a new master waits the old holder's lease before its first write, in
// case the old holder is still alive and appending (a lock freed by a network or FUSE file
// system, or a DIR/lock removed or replaced behind it). That wait buys nothing when the old
// holder is provably dead: a process that no longer exists completes no append, and every
// byte it wrote was handed to the file system before its descriptors closed (the kernel
// finishes a dying thread's write(2), and waits out FUSE requests already sent to the
// daemon, before the process's files are closed and its locks freed). The taker is then in
// the same place as after a clean release, minus the final checkpoint.
//
// "Provably" means: the holder record names THIS host, THIS boot and THIS pid namespace
// (host name alone is not enough: two containers may share one; boot_id alone is not
// enough: a pid means something only within its pid namespace), and either no process has
// that pid, or the process with that pid started at another time (the pid was reused), or it
// has exited and is a zombie waiting to be reaped (its files are already closed). A record
// from another host, an older writer without these members, or a process we cannot inspect
// proves nothing: the caller waits the lease as before (docs/failover.md, "Kill on the same
// host").
//
// The wait itself is a pidfd (pidfd_open(2), Linux >= 5.3): poll() reports it readable the
// moment the whole thread group has exited, so a taker that must wait for a live holder
// (the lock-replaced case) proceeds as soon as that holder exits (it does so on its own when
// it reads the new epoch), and never later than the lease.
//
// Threads: any; no state. The wait blocks the calling thread; a signal without SA_RESTART
// (lockmgr's interrupter) interrupts it, and `keep_waiting` decides whether to go on.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "lockmgr/format.h"

namespace tandem::lockmgr {

// What names one process for the life of a host. Empty / 0 members are unknown.
struct process_identity {
  std::string host;              // gethostname()
  std::string boot_id;           // /proc/sys/kernel/random/boot_id
  std::string pid_ns;            // readlink("/proc/self/ns/pid"), e.g. "pid:[4026531836]"
  std::int64_t pid = 0;
  std::uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat
};

// The calling process's identity, read from /proc (unknown members where /proc is missing).
process_identity this_process();

// The start time (field 22) of one /proc/<pid>/stat line. The second field is the command
// name in parentheses and may itself hold spaces and ')' so fields are counted after the
// LAST ')'. nullopt on a malformed line. Pure.
std::optional<std::uint64_t> parse_start_ticks(std::string_view stat_line);

// "" when `record`'s process can be observed from `self` (same host, boot and pid namespace,
// pid and start time known); otherwise why not, for the log.
std::string why_unobservable(const holder_record& record, const process_identity& self);

enum class holder_state {
  gone,          // proven: it appends nothing more
  alive,         // still there when the wait ended (limit reached or not to keep waiting)
  unobservable,  // nothing can be proven from here: wait as if alive
  fenced,        // cut off from the store by this process's own fence command (lock_manager)
};
const char* to_string(holder_state s) noexcept;

struct holder_observation {
  holder_state state = holder_state::unobservable;
  std::string why;  // one phrase for the log: "pid 123 has exited", "another host (b2)", ...
};

// Watches the holder named by `record` for at most `limit` (0: look once) and returns as soon
// as it is proven gone. After an interrupted wait (EINTR) it asks `keep_waiting`; false ends
// the wait with `alive`.
holder_observation await_holder_exit(const holder_record& record, const process_identity& self,
                                     std::chrono::milliseconds limit, const std::function<bool()>& keep_waiting);

}  // namespace tandem::lockmgr
