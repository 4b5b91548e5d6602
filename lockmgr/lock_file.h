// The lock file DIR/lock and the one descriptor this process holds on it.
//
// Why open-file-description (OFD) locks and never classic POSIX record locks: see the essay
// at the top of lock_file.cpp. Format and life cycle of the file: lockmgr/format.h.
//
// Threads: a lock_file is used by one thread at a time (the manager serialises). wait() may
// be cancelled from any thread through the interrupter it is given.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <system_error>

#include <boost/outcome/std_result.hpp>

#include "journal/fs/file_system.h"

namespace tandem::lockmgr {

namespace detail {
class interrupter;
}

struct file_identity {
  dev_t dev = 0;
  ino_t ino = 0;
  nlink_t links = 0;  // names the inode has; 0 = unlinked (not part of the identity)
  bool operator==(const file_identity& o) const { return dev == o.dev && ino == o.ino; }
};

class lock_file {
 public:
  // Opens DIR/lock read-write, creating it if missing (never deleting). DIR must exist: a
  // missing directory is ENOENT, never created, because on an unmounted network share
  // creating it would make a private, local "store" that another host cannot see.
  static boost::outcome_v2::std_result<std::unique_ptr<lock_file>> open(fs::file_system& fs,
                                                                        const std::filesystem::path& dir);
  // Opens DIR/lock read-only for a query; ENOENT if absent (a query never creates it).
  static boost::outcome_v2::std_result<std::unique_ptr<lock_file>> open_for_query(fs::file_system& fs,
                                                                                  const std::filesystem::path& dir);

  // Blocks in F_OFD_SETLKW until the exclusive lock is ours. errc::cancelled if `intr` was
  // cancelled (and then the lock is not held, even if the kernel granted it meanwhile).
  std::error_code wait(detail::interrupter& intr);
  // F_OFD_SETLK: std::errc::resource_unavailable_try_again if another open file holds it.
  std::error_code try_lock();
  std::error_code unlock();
  // F_OFD_GETLK for an exclusive lock: true if an open file other than ours holds a lock.
  boost::outcome_v2::std_result<bool> locked_by_other();
  // Opens a second, read-only descriptor and tries a shared lock on it. While we hold the
  // exclusive lock that must fail; if it succeeds the file system does not enforce locks
  // (errc::lock_not_enforced). The probe descriptor is closed before returning; with OFD
  // locks that cannot drop our lock (the whole point of OFD locks, see lock_file.cpp).
  std::error_code verify_exclusion(fs::file_system& fs);
  // Opens verify_exclusion's probe descriptor now, while waiting costs nothing: on a
  // network file system an open by path is a metadata round trip (CephFS: ~12 ms of a
  // takeover's critical path). verify_exclusion uses and closes it; optional.
  std::error_code open_exclusion_probe(fs::file_system& fs);

  // fstat of our descriptor (fails with EIO on NFS once the lock state is lost).
  boost::outcome_v2::std_result<file_identity> identity_of_descriptor() const;
  // stat of the path DIR/lock now.
  boost::outcome_v2::std_result<file_identity> identity_of_path() const;
  // One-byte pread through the seam: makes the NFS client talk to the server.
  std::error_code probe_io();

  int native_handle() const { return file_->native_handle(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  lock_file(std::unique_ptr<fs::file> file, std::filesystem::path path) : file_(std::move(file)), path_(std::move(path)) {}
  std::unique_ptr<fs::file> file_;
  std::filesystem::path path_;
  std::unique_ptr<fs::file> probe_;  // open_exclusion_probe's, until verify_exclusion
};

}  // namespace tandem::lockmgr
