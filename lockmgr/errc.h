// Lock-manager error codes: expected failures of the election, as std::error_code values in
// the "lockmgr" category. OS errors (EIO from the lock descriptor, ENOLCK from an NFS server
// without lockd, ...) keep std::generic_category.
#pragma once

#include <string>
#include <system_error>

namespace tandem::lockmgr {

enum class errc {
  // cancel() was called (the broker's SIGTERM): the wait for the lock, or the takeover
  // delay, ended without this process becoming master. Not an error to log loudly.
  cancelled = 1,
  // The watchdog or a fence check found that this process is no longer master (lock file
  // replaced or removed, epoch changed behind us, I/O on the lock descriptor failed, or
  // another owner's lock is reported on the file). Stop writing and exit with
  // exit_code_deposed; never try to regain mastership in the same process.
  lost_mastership,
  // The call needs mastership (fence_check, release, start_watchdog) and this process is
  // not master: it never acquired, or it released.
  not_master,
  // acquire() while already master, or while another thread is in acquire().
  busy,
  // DIR/epoch exists but is not exactly the documented format (lockmgr/format.h). The
  // election refuses, because guessing an epoch could reuse one and defeat fencing. Repair
  // by hand only after reading format.h: the new value must exceed every epoch ever used.
  bad_epoch_file,
  // DIR/holder.json exists but does not parse as the documented record.
  bad_holder_record,
  // The file system accepted a second, conflicting lock on the lock file while we held it:
  // it does not enforce locks across open files (e.g. bindfs --enable-lock-forwarding, which
  // re-issues every client's lock as a POSIX lock of the one bindfs process). Sharing a
  // store there is unsafe; mount it so the kernel or the server arbitrates locks.
  lock_not_enforced,
  // The kernel refused open-file-description locks (EINVAL: Linux < 3.15 or a file system
  // that rejects them). Tandem does not fall back to process-owned POSIX locks; see the
  // essay at the top of lockmgr/lock_file.cpp.
  ofd_locks_unsupported,
  // The lock file is not a real descriptor (a simulated file from a test file system).
  no_native_handle,
  // A query found no lock file: the directory was never used as a store.
  no_lock_file,
};

const std::error_category& lockmgr_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), lockmgr_category()}; }

}  // namespace tandem::lockmgr

template <>
struct std::is_error_code_enum<tandem::lockmgr::errc> : std::true_type {};
