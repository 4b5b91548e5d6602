// lock_table: the byte-range locks (fcntl POSIX and OFD locks) of the files under
// tandem-faultfs, decided by the daemon as an NFS server decides them, lease included.
//
// Why the daemon and not the kernel. When a FUSE daemon implements no lock operations the
// kernel arbitrates locks itself, locally, and they behave exactly as on ext4: a stopped
// process keeps its lock for ever (tandem-faultfs --locks kernel does that). A network
// file system does not: an NFS server keeps a client's locks only while the client renews
// its lease, and when the lease runs out while the client is frozen (SIGSTOP, a paused VM,
// a partition), the server gives the lock to the next client; the old one learns it only
// when its next operation on that file fails with EIO. That is the case Tandem's fence
// exists for, and the one a drill must be able to produce.
//
// The model:
// * A lock has an owner (the kernel's lock owner id: the open file description for OFD
//   locks, the process's file table for POSIX locks), the file handle it was taken through,
//   a type (F_RDLCK / F_WRLCK) and an inclusive byte range. Locks of different owners
//   conflict when their ranges overlap and one is a write lock. Setting a lock replaces the
//   owner's own locks on that range (POSIX semantics: split, upgrade, downgrade).
// * Leases (lease > 0): every request made through a handle renews the locks taken through
//   it (the lock manager's watchdog does an F_OFD_GETLK and a one-byte pread on its lock
//   descriptor every check interval, both reach the daemon). A lock whose handle has not
//   been heard from for longer than the lease is EXPIRED. An expired lock still holds until
//   someone asks for a conflicting one (a "courteous" server); then it is revoked: removed,
//   and its handle is marked revoked, so every later operation through it fails with EIO
//   (what an NFS client returns for a file whose lock state was lost, with
//   nfs.recover_lost_locks=0, the default). Other files of that process are not affected.
// * Waiters (F_SETLKW) are answered when the conflict goes away: an unlock, a close, a
//   revocation found by tick(). An interrupted waiter is answered EINTR.
// * release_handle (the last close of an open file) drops the locks taken through it;
//   release_owner (FUSE flush, i.e. any close() by a process) drops the owner's POSIX locks.
//
// Threads: every method may be called from any thread (one mutex). Callbacks given to
// set() run without the mutex held, on the thread that decided them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tools/faultfs/power_model.h"

namespace tandem::faultfs {

struct range_lock {
  std::uint64_t owner = 0;
  std::uint64_t handle = 0;
  short type = 0;              // F_RDLCK or F_WRLCK (F_UNLCK in a request: unlock)
  std::uint64_t start = 0;
  std::uint64_t end = 0;       // inclusive; UINT64_MAX = to the end of any file
  pid_t pid = 0;               // reported by F_GETLK
};

class lock_table {
 public:
  using clock = std::chrono::steady_clock;
  // 0: granted; else an errno (EAGAIN, EINTR, EIO, EDEADLK...).
  using answer = std::function<void(int error)>;

  explicit lock_table(std::chrono::milliseconds lease = std::chrono::milliseconds(0));

  void set_lease(std::chrono::milliseconds lease);
  std::chrono::milliseconds lease() const;

  // F_GETLK: the first lock that conflicts with `probe`, or nothing.
  std::optional<range_lock> test(const file_key& file, const range_lock& probe, clock::time_point now);
  // F_SETLK / F_SETLKW (and unlocks, type F_UNLCK). Without `wait` the answer is immediate
  // (0 or EAGAIN). With `wait` a conflicting request is queued under `waiter` (an id unique
  // among live requests) and answered later. `done` is called exactly once.
  // `interrupted` (may be empty) is asked, under the table's mutex, just before a request
  // is queued: a request interrupted before it was queued is answered EINTR at once.
  void set(const file_key& file, const range_lock& request, bool wait, const void* waiter, answer done,
           clock::time_point now, const std::function<bool()>& interrupted = {});
  // The waiter's request was interrupted: answers it EINTR if it still waits.
  void cancel(const void* waiter);

  // A request came through `handle`: its locks' lease starts again.
  void renew(std::uint64_t handle, clock::time_point now);
  // True once a lock taken through `handle` was revoked.
  bool revoked(std::uint64_t handle) const;
  // Close of the open file `handle`: drops its locks (and forgets its revocation).
  void release_handle(std::uint64_t handle, clock::time_point now);
  // A process closed a descriptor of `file` (FUSE flush): drops `owner`'s locks on it.
  void release_owner(const file_key& file, std::uint64_t owner, clock::time_point now);
  // Grants waiters whose conflicts expired. Call it periodically.
  void tick(clock::time_point now);
  // Power loss: forgets every lock and answers every waiter with `error`.
  void clear(int error);
  // While frozen, nothing expires: the lease clock of every handle restarts at `now`.
  void restart_leases(clock::time_point now);

  struct status_line {
    file_key file;
    range_lock lock;
    bool expired = false;
  };
  std::vector<status_line> status(clock::time_point now) const;
  std::uint64_t revocations() const;

 private:
  struct waiting {
    file_key file;
    range_lock request;
    const void* id;
    answer done;
  };
  using ready = std::vector<std::pair<answer, int>>;

  bool expired(const range_lock& l, clock::time_point now) const;  // REQUIRES: mutex_
  // Conflicting locks of `file` (expired ones are revoked first when `revoke`).
  std::vector<range_lock*> conflicts(const file_key& file, const range_lock& r, clock::time_point now, bool revoke);
  void apply(const file_key& file, const range_lock& r);  // REQUIRES: no conflict
  void grant_waiters(clock::time_point now, ready& out);
  static void run(ready& r);

  mutable std::mutex mutex_;
  std::chrono::milliseconds lease_;
  std::map<file_key, std::vector<range_lock>> locks_;
  std::vector<waiting> waiters_;  // in arrival order
  std::map<std::uint64_t, clock::time_point> renewed_;
  std::set<std::uint64_t> revoked_;
  std::uint64_t revocations_ = 0;
};

}  // namespace tandem::faultfs
