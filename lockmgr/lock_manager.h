// lock_manager: the election. One per process; it holds the store's lock file, the epoch,
// and the proof that this process is (still) master.
//
// Life cycle (a broker):
//   auto m = lock_manager::open(opts);        // opens DIR/lock once (creates it, never deletes)
//   auto a = m.value()->acquire();            // blocks: lock, epoch + 1, holder.json, delay
//   ... recover the journal, with fence = [&]{ return m->fence_check(); } ...
//   m->start_watchdog(on_lost);               // periodic checks; on_lost once on loss
//   ... serve ...
//   m->release();                             // SIGTERM path: holder marked clean, unlock
//   (m->release_unclean() instead when the journal did not close cleanly)
// and on loss: stop writing, close clients, exit(exit_code_deposed). A deposed process
// never competes again: systemd restarts it as a fresh slave.
//
// Guarantees:
//   * acquire() returns only when this process holds the exclusive lock on DIR/lock,
//     DIR/epoch durably holds a value larger than any earlier master's, holder.json names
//     us, and, after an unclean predecessor on a shared file system, the takeover delay
//     has passed. Epochs strictly increase over the life of the store. It checks all that
//     once more before returning, unless options::check_before_acquire_returns is false:
//     then the first fence_check() does.
//   * confirm() answers "ok" only on a stat of DIR/lock and a read of DIR/epoch made
//     during the call: the journal calls it after each group's fdatasync, before any of
//     the group completes, so no RECEIPT/ACK/COMMIT of ours is reported once a newer
//     epoch exists (lock removed or replaced, paused past the lease, partitioned).
//   * acquire() after an unclean predecessor whose lock inode is not ours (DIR/lock was
//     removed or replaced while it held it) waits the predecessor's own lease from
//     holder.json, on any file system: the kernel lock on our inode proves nothing about
//     it. On shared file systems it waits max(takeover delay, that lease).
//   * Either wait ends as soon as the predecessor is proven gone: holder.json names this
//     host, boot and pid namespace, and that process no longer exists (holder_process.h).
//     A dead process appends nothing more. It also ends once options::predecessor_fenced
//     says our own fence command cut that predecessor off. A takeover_delay set in the
//     options is still waited in full.
//   * fence_check() never answers "ok" on information older than the lease (2 x
//     check_interval): if the last successful check is older (process paused by SIGSTOP,
//     VM frozen, watchdog starved) it checks synchronously before answering. The clock is
//     CLOCK_BOOTTIME, so a suspended machine counts the suspension.
//   * on_lost is called at most once, and fence_check() returns errc::lost_mastership from
//     the moment the loss is recorded.
//
// Threads:
//   * acquire() blocks the calling thread (run it on a thread of its own, never an io
//     thread: it sits in fcntl(F_OFD_SETLKW), or sleeps between F_OFD_SETLK tries in
//     polling mode, and does fsyncs). One acquire at a time.
//   * cancel() from any thread or from a signal handler (async-signal-safe). It ends a
//     pending or future acquire() with errc::cancelled within milliseconds; it does not end
//     mastership already won. It is sticky: every later acquire() returns cancelled. The
//     wait is interrupted with `options::wake_signal` (default SIGURG, default action
//     "ignore"), for which the manager installs an empty handler without SA_RESTART. If you
//     call cancel() from a signal handler that runs on the acquiring thread, install that
//     handler without SA_RESTART too.
//   * fence_check() from any thread (the journal writer); cheap atomics on the fast path.
//   * The watchdog runs on its own thread; on_lost runs on the watchdog thread or on the
//     thread whose fence_check() found the loss. on_lost must not destroy the manager; it
//     should post to the owner's executor and return.
//   * release() and the destructor from the owner's thread, not concurrently with acquire().
//
// Test seam: options::check_fault is called at each step of a mastership check; returning
// an error makes that step fail as if the OS had (e.g. std::errc::io_error for an NFS lock
// lost with EIO). tests/unit/lockmgr/lock_probe.cpp uses it to inject EIO in a real process.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <boost/outcome/std_result.hpp>

#include "journal/fs/file_system.h"
#include "lockmgr/detail/interrupter.h"
#include "lockmgr/errc.h"
#include "lockmgr/format.h"
#include "lockmgr/fs_kind.h"
#include "lockmgr/holder_process.h"
#include "lockmgr/lock_file.h"

namespace tandem::lockmgr {

// Exit status of a broker that lost mastership: EX_TEMPFAIL from <sysexits.h>. It is "a
// failure" to systemd, so Restart=on-failure starts the process again, as a slave that
// waits for the lock. Anything that supervises brokers should treat 75 as "deposed, restart
// me", not as a crash to investigate.
inline constexpr int exit_code_deposed = 75;

template <class T>
using result = boost::outcome_v2::std_result<T>;

// How acquire() waits for a lock held by another process. The trade-off is written at the
// top of lock_file.cpp; tandemd sets it with the config keys lock_wait and
// lock_poll_interval_ms (or --lock-wait, --lock-poll-interval-ms).
enum class wait_mode {
  blocking,  // F_OFD_SETLKW: the kernel wakes us the moment the lock is free (default)
  polling,   // F_OFD_SETLK every poll_interval: for mounts whose blocked waits wake late
};
const char* to_string(wait_mode m) noexcept;

// The steps of a mastership check, in order, for options::check_fault.
enum class check_step {
  lock_descriptor,  // fstat + F_OFD_GETLK + 1-byte pread on our descriptor
  lock_path,        // stat(DIR/lock) is still the inode we hold
  epoch,            // DIR/epoch still holds our epoch
};

struct options {
  std::filesystem::path dir;                // the store directory; must exist
  fs::file_system* file_system = nullptr;   // nullptr = fs::posix_file_system(); must outlive the manager
  // Written into holder.json for operators and tools.
  std::string broker_name = "tandem";
  std::string client_url;
  std::string software_version;             // empty = this build's version
  std::string admin_url;                    // "" = no admin port (holder.json "admin_url")
  std::string mount_client_id;              // "" = unknown (holder.json "mount_client_id")
  wait_mode mode = wait_mode::blocking;
  std::chrono::milliseconds poll_interval{500};
  std::chrono::milliseconds check_interval{1000};   // watchdog period; lease = 2x this
  std::optional<std::chrono::milliseconds> takeover_delay;  // unset = by file-system kind (fs_kind.h)
  // True once a fence command of THIS process succeeded against the master of `epoch`, i.e.
  // that master can no longer write to the store (the broker's fence hook). acquire() then
  // skips the wait for that predecessor (docs/failover.md section 1a, "No lease wait after
  // our own fence"); it polls this during the wait, since on CephFS the lock moves a few ms
  // before the command returns. Called on the acquiring thread; must not block. Empty: never.
  std::function<bool(std::uint64_t epoch)> predecessor_fenced;
  // Refuse to serve when the file system grants a second conflicting lock (see
  // lock_file::verify_exclusion). Turning it off is only for diagnosing such a mount.
  bool verify_exclusion = true;
  // acquire() ends with a full mastership check (the lock still ours, DIR/lock not
  // replaced, DIR/epoch ours). false: acquire() returns without it, and the caller must
  // call fence_check() or check_now() before it writes to the store; fence_check() runs
  // that check then (no check vouches for the new mastership yet). Only reads may come
  // first: the broker reads the journal meanwhile, so the check's metadata round trips
  // overlap that reading (on CephFS ~20 ms of a takeover, one MDS round trip per step).
  bool check_before_acquire_returns = true;
  int wake_signal = SIGURG;
  // Test seam (see the header comment). Called on the checking thread.
  std::function<std::error_code(check_step)> check_fault;
};

enum class loss_reason {
  lock_io_error,       // fstat / F_OFD_GETLK / pread / stat on the lock failed (NFS: EIO)
  lock_not_held,       // F_OFD_GETLK reports another owner's lock: ours is gone
  lock_file_removed,   // DIR/lock was unlinked
  lock_file_replaced,  // DIR/lock is now another inode than the one we hold
  epoch_changed,       // DIR/epoch holds another epoch: a newer master exists
  epoch_unreadable,    // DIR/epoch cannot be read or parsed
};
const char* to_string(loss_reason r) noexcept;

struct loss {
  loss_reason reason;
  std::error_code error;  // the OS error, if any
  std::string message;    // one line for the log, names the file and the values seen
};

struct acquisition {
  std::uint64_t epoch = 0;                // ours, already durable in DIR/epoch
  std::optional<holder_record> previous;  // holder.json as found (absent or unreadable: empty)
  bool previous_released_cleanly = true;  // false: predecessor crashed, was killed or deposed
  takeover_decision takeover;             // fs kind, the delay an unclean takeover needs, why
  std::string fs_kind;                    // = takeover.fs.name
  std::chrono::milliseconds takeover_delay{0};  // the delay actually waited (0 after a clean release)
  bool predecessor_lock_elsewhere = false;  // the unclean predecessor locked another inode
  // What the wait for an unclean predecessor saw of its process (holder_process.h): gone =
  // proven dead on this host, so the wait ended then; unobservable after a clean release or
  // when the record names another host.
  holder_state predecessor = holder_state::unobservable;
  std::string predecessor_why;            // one phrase for the log ("" when nothing was waited)
  std::chrono::milliseconds waited{0};    // time blocked waiting for the lock
};

// Counters of the mastership checks (watchdog, fence_check, release), for the broker's
// /metrics. Updated under the check mutex, read from any thread.
struct check_stats {
  std::atomic<std::uint64_t> checks{0};           // full checks run while master
  std::atomic<std::uint64_t> failures{0};         // checks that found mastership lost
  std::atomic<std::uint64_t> nanoseconds{0};      // time spent in them (an NFS server's latency)
  std::atomic<std::uint64_t> max_nanoseconds{0};  // the slowest one
  std::atomic<std::uint64_t> confirms{0};               // confirm() calls (one per journal group)
  std::atomic<std::uint64_t> confirm_nanoseconds{0};    // their summed duration
};

class lock_manager {
 public:
  using lost_callback = std::function<void(const std::string& reason)>;

  // Opens (creates if missing) DIR/lock and keeps that one descriptor until destruction.
  static result<std::unique_ptr<lock_manager>> open(options opts);
  // Stops the watchdog and closes the descriptor, which frees the lock. Does NOT mark the
  // holder record released: without release() the next master sees an unclean end.
  ~lock_manager();
  lock_manager(const lock_manager&) = delete;
  lock_manager& operator=(const lock_manager&) = delete;

  // Becomes master (see Guarantees). Errors: errc::cancelled, errc::busy,
  // errc::bad_epoch_file, errc::lock_not_enforced, errc::ofd_locks_unsupported, OS errors
  // from the epoch/holder writes. On any error the lock is not held. May be called again
  // after release(), not after a loss.
  result<acquisition> acquire();
  void cancel() noexcept;

  // Starts the periodic check (every check_interval). `on_lost` is called once if mastership
  // is lost — immediately if a fence_check() already found the loss. errc::not_master if
  // not master.
  std::error_code start_watchdog(lost_callback on_lost);

  // {} while master; errc::lost_mastership after a loss; errc::not_master before acquire or
  // after release. Synchronous full check when the last one is older than the lease.
  std::error_code fence_check();
  // A full check now, regardless of the lease (tools, tests).
  std::error_code check_now();
  // The journal's last word before a group completes: synchronously, from the store itself
  // (no cached answer), DIR/lock is still the inode we lock and DIR/epoch still holds our
  // epoch. A successor writes DIR/epoch before it reads the journal, so a group this
  // confirms after its fdatasync was durable before any newer epoch existed and the
  // successor's recovery sees it (the rule of issue 12: once a new epoch exists, no append
  // of an older one completes). Cost: one stat and one small read (docs/failover.md).
  // Called on the journal writer thread; on a loss it declares it like fence_check().
  std::error_code confirm();

  // Clean release: verifies mastership, marks holder.json released (clean_release true),
  // then unlocks. The descriptor stays open, so a waiter takes over at once. After a loss:
  // unlocks and returns errc::lost_mastership without touching holder.json (it may be the
  // new master's). Must not run concurrently with acquire().
  std::error_code release();
  // Gives the lock up like release() but leaves holder.json as acquire() wrote it (not
  // released): for an owner whose journal close (or open) failed, so that something it
  // wrote may not be durable. The next master then treats the end as a crash: it waits as
  // after a kill and re-syncs the journal tail (docs/failover.md "Planned handover").
  std::error_code release_unclean();

  bool is_master() const noexcept;
  // True from the moment acquire() holds the kernel lock (before it writes the epoch and
  // waits the takeover delay, which on a cluster file system can take seconds) until the
  // lock is given back. Any thread. A slave's fence hook asks it: a lock that came to us
  // without a fence was let go by its holder's own file-system client, which needs no fence.
  bool lock_taken() const noexcept { return lock_taken_.load(); }
  std::uint64_t epoch() const noexcept { return epoch_.load(); }
  std::optional<loss> lost() const;
  std::chrono::milliseconds lease() const noexcept { return 2 * opts_.check_interval; }
  // The options it was opened with (wait mode, intervals), for the process's log lines.
  const options& settings() const noexcept { return opts_; }
  // The takeover decision for this store's file system (known from open()).
  const takeover_decision& takeover() const noexcept { return takeover_; }
  const check_stats& stats() const noexcept { return stats_; }

 private:
  enum class state { idle, acquiring, master, released, lost };

  lock_manager(options opts, fs::file_system& fs, std::unique_ptr<lock_file> lock, takeover_decision takeover);
  std::error_code wait_for_lock();
  std::optional<loss> check_locked();  // REQUIRES: check_mutex_ held
  std::optional<loss> check_lock_path(const file_identity& ours);
  std::optional<loss> check_epoch();
  // confirm()'s read of DIR/epoch: one read of exactly our own epoch file's bytes.
  std::optional<loss> confirm_epoch();
  std::optional<loss> epoch_check_fault();
  std::optional<loss> read_and_check_epoch();
  std::chrono::milliseconds predecessor_wait(const acquisition& a) const;
  bool wait_for_predecessor(acquisition& a, std::chrono::milliseconds wait);
  std::optional<loss> run_check(bool only_if_stale);
  std::error_code give_up_lock(bool mark_clean);
  void declare_lost(loss l);
  void watchdog_loop();
  void stop_watchdog();
  bool fresh() const noexcept;

  const options opts_;
  fs::file_system& fs_;
  const std::unique_ptr<lock_file> lock_;  // the one descriptor on DIR/lock
  const takeover_decision takeover_;
  const process_identity self_;            // written into holder.json; compared with a predecessor's
  detail::interrupter interrupter_;

  std::atomic<state> state_{state::idle};
  std::atomic<bool> lock_taken_{false};
  std::atomic<std::uint64_t> epoch_{0};
  // DIR/epoch as this master wrote it: what confirm() compares with. Set in acquire()
  // before state_ becomes master; confirm() reads it only after seeing master.
  std::string epoch_file_text_;
  file_identity held_identity_;            // written by acquire() before state_ = master
  holder_record record_;                   // ours, rewritten by release()
  std::atomic<std::int64_t> last_ok_ns_{0};  // CLOCK_BOOTTIME at the START of the last good check

  std::mutex check_mutex_;  // one full check at a time (watchdog, fence, release)
  check_stats stats_;

  mutable std::mutex lost_mutex_;
  std::optional<loss> loss_;
  lost_callback on_lost_;
  bool on_lost_called_ = false;

  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;
  std::thread watchdog_;
};

}  // namespace tandem::lockmgr
