// The lock file: one exclusive open-file-description lock on DIR/lock.
//
// Divisions of this file:
//   1. Essay: why OFD locks, and what a lock on a network file system can and cannot promise
//   2. Opening the one descriptor
//   3. Lock calls (wait, try, unlock, query)
//   4. Liveness probes used by the watchdog
//   (the essay also covers removed and replaced lock files, and per-group confirmation)
//
// ---------------------------------------------------------------------------------------
// 1. Why not classic POSIX record locks (and therefore not Boost.Interprocess file_lock)
// ---------------------------------------------------------------------------------------
// fcntl(F_SETLK) record locks — the ones Boost.Interprocess file_lock, Java's FileLock and
// most "lock file" helpers use — belong to the PROCESS (the pair pid + inode), not to the
// descriptor that took them. Two consequences make them unfit to hold mastership:
//
//  * Closing ANY descriptor of the file, from ANY thread, drops ALL the process's locks on
//    it. A tool helper that opens DIR/lock to print who holds it, a library that stats and
//    opens every file of the store for a disk-usage sample, a test that reads the holder:
//    the moment that second descriptor is closed, the kernel silently releases our lock.
//    Nothing tells the process. A waiting slave gets the lock within milliseconds and both
//    brokers write the journal: split brain from a harmless-looking read.
//  * A second lock request from the same process never conflicts with the first, it just
//    replaces it (two threads, two "lock objects": both "win"). Boost's own header warns
//    that file_lock cannot synchronise threads of one process.
//
// SQLite meets the same trap and builds a per-inode table of every descriptor in the process,
// deferring close() of any of them while a lock is held ("Posix Advisory Locking" in
// src/os_unix.c). We avoid the trap instead: Linux (>= 3.15) has open-file-description locks
// (F_OFD_SETLK, F_OFD_SETLKW, F_OFD_GETLK). An OFD lock belongs to the open file description
// created by one open(); it conflicts with locks taken through any other open(), even in the
// same process, and is released only when that description's LAST descriptor is closed (or
// by an explicit unlock). Closing some other descriptor of the same file cannot touch it. We
// still keep exactly ONE descriptor on DIR/lock for the life of the process (opened through
// the fs seam with O_CLOEXEC so a spawned child never inherits — and so never prolongs — our
// lock), because "the lock lives exactly as long as this descriptor" is easy to reason about.
// (flock(2) locks are also per open file description, but over NFS the Linux client emulates
// them with byte-range locks on the server (nfs(5), "local_lock"), so their semantics change
// with the mount; OFD locks are sent to the server as what they are.)
//
// Why whole-file range [0, inf): the file is empty; a range lock only exists because fcntl
// locks are byte ranges. Length 0 means "to EOF and beyond".
//
// ---------------------------------------------------------------------------------------
//     Locks on network and FUSE file systems: what they can and cannot promise
// ---------------------------------------------------------------------------------------
//  * On NFS the lock lives on the SERVER (NFSv4 state, or lockd/NLM for v3). When the
//    holder's host dies or is cut off, the server keeps the lock until the client's lease
//    expires (NFSv4 lease time, typically 90 s; for NLM until the host reboots and statd
//    notifies) — a slave waits that long, not milliseconds. Nothing local can shorten it.
//  * A partitioned holder is NOT told that its lease expired. It keeps running, believing it
//    is master, until it next talks to the server: then I/O on the descriptor (and locks)
//    fails with EIO (Linux marks the lock state lost; with nfs.recover_lost_locks=0, the
//    default, it does not silently re-acquire). EIO on the lock descriptor is therefore our
//    only "you are deposed" signal, and only if we ask: the watchdog probes the descriptor
//    (fstat, F_OFD_GETLK, a pread) every check interval, and the new master waits
//    (takeover delay, fs_kind.h) longer than that interval before writing after an unclean
//    takeover, so the old one stops first. The epoch in DIR/epoch is the second fence: a
//    deposed master that can still read sees a newer epoch and stops.
//  * Blocking or polling: a slave waits for the lock in one of two ways (lockmgr::wait_mode,
//    set in tandemd by the config keys `lock_wait` and `lock_poll_interval_ms`, or
//    --lock-wait and --lock-poll-interval-ms). A blocked F_OFD_SETLKW is only as prompt as
//    the file system's wake-up. Locally the kernel wakes the waiter the moment the lock is
//    freed. On NFS the client has to learn it from the server: by a callback (v4.1
//    CB_NOTIFY_LOCK, when the server sends one) or by retrying with back-off (v3, v4.0),
//    up to 30 s between tries; a FUSE daemon that implements the lock op itself may never
//    deliver the wake-up, and the slave then sleeps on a free lock until it is restarted.
//    Polling (F_OFD_SETLK every poll interval) bounds the delay by the interval on any file
//    system. Its price: one lock request per interval per slave (an NFS round trip each),
//    and no order among waiting slaves (whichever tries first wins; fencing rests on the
//    epoch, never on that order). Blocking stays the default: free while waiting, instant
//    where wake-ups work. Choose polling for a mount where takeovers start late: the
//    `waited_ms` of "lock acquired" well beyond the moment the old master died. Both modes
//    end on SIGTERM within milliseconds (detail/interrupter.h).
//  * FUSE: the kernel arbitrates locks itself unless the daemon implements the lock op; a
//    daemon that "forwards" locks may do it wrongly. bindfs --enable-lock-forwarding
//    re-issues every client's lock as a POSIX lock of the single bindfs process, so no two
//    clients ever conflict. verify_exclusion() catches that: it takes a second, conflicting
//    lock through another open() and refuses to serve if the file system grants it.
//
// ---------------------------------------------------------------------------------------
//     When the lock proves nothing: a removed or replaced lock file (issue 12)
// ---------------------------------------------------------------------------------------
//  * The lock guards an INODE, not a name. `rm DIR/lock`, a restored backup, or a rename
//    over it leave the master locking an inode nobody else opens; the next broker creates
//    a new DIR/lock, locks THAT at once, and both are master, on ext4 as on NFS. The kernel
//    cannot tell us; only looking at the name again can (stat(DIR/lock) against fstat of
//    our descriptor), and DIR/epoch, which every new master writes before anything else.
//  * The rule that makes this safe: once a newer epoch exists, no append of an older one
//    completes (no RECEIPT, ACK or COMMIT reported). The watchdog alone cannot hold it: it
//    looks every check interval, and fence_check() trusts its last look for a lease (2 x
//    the interval). That window cost 3,179 receipted messages in the field report. So the
//    journal writer, after each group's fdatasync and before completing any of it, calls
//    lock_manager::confirm(): a stat of DIR/lock and a read of DIR/epoch, made then. Why
//    that suffices: a successor writes DIR/epoch before it reads the journal, and its
//    recovery reads the log to its end (the cut, journal/format.h). A group confirmed
//    after its fdatasync was durable before the newer epoch existed, so the successor
//    recovers it; a group whose confirm sees the newer epoch (or another inode) fails and
//    is never acknowledged. The price is one stat and one small read per group, next to
//    the fdatasync the group already waits for (measured in docs/failover.md).
//  * A taker cannot know whether the holder of ANOTHER inode is alive. holder.json
//    therefore records the holder's lock inode (lock_dev, lock_ino) and its own lease
//    (lease_ms). A taker that finds an unclean holder on another inode waits that lease
//    after writing the new epoch, on any file system, so the old master's watchdog sees
//    the new epoch (or the vanished name) and exits before the taker serves: two brokers
//    do not answer as master at once. Its own check interval would be the wrong measure:
//    the holder may check far less often. On network and FUSE file systems the taker waits
//    at least that lease after every unclean end; a configured takeover_delay_ms may
//    lengthen the wait but not shorten it there (tandemd warns when one tries).
//
// Never opening the directory with O_CREAT: on a missing mount point we would create a
// local directory and elect ourselves master of an empty private store; lock_file::open
// therefore requires DIR to exist.
#include "lockmgr/lock_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "lockmgr/detail/interrupter.h"
#include "lockmgr/errc.h"
#include "lockmgr/format.h"

namespace tandem::lockmgr {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

struct flock whole_file(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  fl.l_pid = 0;  // must be 0 for OFD locks
  return fl;
}

// EINVAL from an OFD command means the kernel or file system does not know it.
std::error_code map_lock_error(int err) {
  if (err == EINVAL) return make_error_code(errc::ofd_locks_unsupported);
  if (err == EACCES) err = EAGAIN;  // POSIX allows either for "held by someone else"
  return {err, std::generic_category()};
}

}  // namespace

// ---- 2. Opening the one descriptor -----------------------------------------------------

boost::outcome_v2::std_result<std::unique_ptr<lock_file>> lock_file::open(fs::file_system& fs,
                                                                          const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return last_error();
  if (!S_ISDIR(st.st_mode)) return std::make_error_code(std::errc::not_a_directory);
  auto path = dir / lock_file_name;
  auto f = fs.open(path, fs::open_mode::create_or_open);
  if (!f) return f.error();
  if (f.value()->native_handle() < 0) return make_error_code(errc::no_native_handle);
  return std::unique_ptr<lock_file>(new lock_file(std::move(f).value(), path));
}

boost::outcome_v2::std_result<std::unique_ptr<lock_file>> lock_file::open_for_query(fs::file_system& fs,
                                                                                    const std::filesystem::path& dir) {
  auto path = dir / lock_file_name;
  auto f = fs.open(path, fs::open_mode::read_only);
  if (!f) return f.error();
  if (f.value()->native_handle() < 0) return make_error_code(errc::no_native_handle);
  return std::unique_ptr<lock_file>(new lock_file(std::move(f).value(), path));
}

// ---- 3. Lock calls ---------------------------------------------------------------------

std::error_code lock_file::wait(detail::interrupter& intr) {
  for (;;) {
    if (!intr.arm()) return make_error_code(errc::cancelled);
    struct flock fl = whole_file(F_WRLCK);
    int rc = ::fcntl(native_handle(), F_OFD_SETLKW, &fl);
    int err = errno;
    intr.disarm();
    if (rc == 0) {
      // Granted in the same instant as the cancel: give it back, the caller wants out.
      if (intr.cancelled()) {
        unlock();
        return make_error_code(errc::cancelled);
      }
      return {};
    }
    if (err == EINTR) {
      if (intr.cancelled()) return make_error_code(errc::cancelled);
      continue;  // some other signal (SIGCHLD, a profiler): wait on
    }
    return map_lock_error(err);
  }
}

std::error_code lock_file::try_lock() {
  struct flock fl = whole_file(F_WRLCK);
  while (::fcntl(native_handle(), F_OFD_SETLK, &fl) != 0) {
    if (errno != EINTR) return map_lock_error(errno);
  }
  return {};
}

std::error_code lock_file::unlock() {
  struct flock fl = whole_file(F_UNLCK);
  while (::fcntl(native_handle(), F_OFD_SETLK, &fl) != 0) {
    if (errno != EINTR) return map_lock_error(errno);
  }
  return {};
}

boost::outcome_v2::std_result<bool> lock_file::locked_by_other() {
  // F_OFD_GETLK answers "would this lock conflict?" without taking anything: a query must
  // never try-lock, or for a moment it would hold the store and a waiting slave could miss
  // its turn (and, with a POSIX lock, the close afterwards would be the trap above).
  struct flock fl = whole_file(F_WRLCK);
  while (::fcntl(native_handle(), F_OFD_GETLK, &fl) != 0) {
    if (errno != EINTR) return map_lock_error(errno);
  }
  return fl.l_type != F_UNLCK;
}

std::error_code lock_file::open_exclusion_probe(fs::file_system& fs) {
  auto probe = fs.open(path_, fs::open_mode::read_only);
  if (!probe) return probe.error();
  probe_ = std::move(probe).value();
  return {};
}

std::error_code lock_file::verify_exclusion(fs::file_system& fs) {
  std::unique_ptr<fs::file> probe = std::move(probe_);
  if (!probe) {
    auto opened = fs.open(path_, fs::open_mode::read_only);
    if (!opened) return opened.error();
    probe = std::move(opened).value();
  }
  int fd = probe->native_handle();
  if (fd < 0) return make_error_code(errc::no_native_handle);
  // A shared lock needs only read access, so the probe descriptor can be read-only.
  struct flock fl = whole_file(F_RDLCK);
  int rc;
  do {
    rc = ::fcntl(fd, F_OFD_SETLK, &fl);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EAGAIN || errno == EACCES) return {};  // refused: locks are enforced
    return map_lock_error(errno);
  }
  struct flock un = whole_file(F_UNLCK);
  ::fcntl(fd, F_OFD_SETLK, &un);
  return make_error_code(errc::lock_not_enforced);
}

// ---- 4. Liveness probes ----------------------------------------------------------------

boost::outcome_v2::std_result<file_identity> lock_file::identity_of_descriptor() const {
  struct stat st {};
  if (::fstat(native_handle(), &st) != 0) return last_error();
  return file_identity{st.st_dev, st.st_ino, st.st_nlink};
}

boost::outcome_v2::std_result<file_identity> lock_file::identity_of_path() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return last_error();
  return file_identity{st.st_dev, st.st_ino, st.st_nlink};
}

std::error_code lock_file::probe_io() {
  std::byte b[1];
  auto r = file_->read_at(b, 0);
  if (!r) return r.error();
  return {};
}

}  // namespace tandem::lockmgr
