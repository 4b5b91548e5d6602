// passthrough: the FUSE (low-level API, libfuse 3) file system of tandem-faultfs.
//
// Every operation on MOUNTPOINT is done on the same path under SOURCE, so programs run on
// the mount unmodified, while the daemon can fail operations (fault_rules.h), block them
// (freeze), forget what was not synced (power_model.h), and arbitrate locks with leases
// (lock_table.h). The control socket drives all of it (control_protocol.h).
//
// What reaches the daemon. Data caching in the kernel would hide writes and reads from us,
// so every file is opened with direct_io (no page cache for FUSE files; reads and writes go
// to the daemon as the program issued them; shared writable mmap is therefore not
// available), writeback caching stays off, and attribute, entry and negative-entry
// timeouts are 0 (a stat after a power loss sees the restored size and inode). Inode
// numbers are the underlying ones (st_ino), so "the lock file was replaced" is seen as it
// is on the underlying file system.
//
// Locks: with lock_mode::daemon (default) the daemon implements getlk/setlk and decides
// (lock_table.h: OFD and POSIX locks, F_SETLKW waits, leases). With lock_mode::kernel it
// implements none and the kernel arbitrates locally, like ext4 (no leases). flock(2) is
// not implemented in either mode (the kernel arbitrates flock locally).
//
// The hidden directory SOURCE/.tandem-faultfs-trash keeps removed files alive until their
// removal is durable; it is invisible and untouchable through the mount, and emptied at
// start (whatever was under SOURCE at mount time counts as durable).
//
// Threads: libfuse's multi-threaded loop calls the operations from its worker threads;
// the control server and the lease timer run on their own threads. See passthrough.cpp for
// the locks: a per-inode mutex serialises a write with its undo record, a shared mutex
// lets a power loss wait until no operation is running.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <system_error>
#include <vector>

#include "tools/faultfs/control_protocol.h"
#include "tools/faultfs/fault_rules.h"
#include "tools/faultfs/lock_table.h"
#include "tools/faultfs/power_model.h"

namespace tandem::faultfs {

enum class lock_mode { daemon, kernel };

struct passthrough_options {
  std::filesystem::path source;
  lock_mode locks = lock_mode::daemon;
  std::chrono::milliseconds lease{0};
};

inline constexpr const char* trash_name = ".tandem-faultfs-trash";

class passthrough {
 public:
  // Opens SOURCE and prepares the trash. Throws std::system_error when SOURCE is unusable.
  explicit passthrough(passthrough_options options);
  ~passthrough();
  passthrough(const passthrough&) = delete;
  passthrough& operator=(const passthrough&) = delete;

  // The operation table for fuse_session_new (userdata: this object).
  const fuse_lowlevel_ops& operations() const;

  // Executes one control request; returns the reply line (without '\n').
  std::string execute(const control_request& request);

  // Grants lock waiters whose conflicts expired (call every few milliseconds).
  void tick();

  struct inode;
  struct handle;
  struct dir_handle;

  // The operations (public so the C callbacks in passthrough.cpp can reach them).
  void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void forget(fuse_ino_t ino, std::uint64_t n);
  void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
  void readlink(fuse_req_t req, fuse_ino_t ino);
  void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
  void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
  void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name);
  void unlink(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir);
  void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
              unsigned flags);
  void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
  void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
  void flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  void statfs(fuse_req_t req, fuse_ino_t ino);
  void fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi);
  void getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock);
  void setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep);
  void interrupted(fuse_req_t req);

 private:
  class gate;

  inode& node(fuse_ino_t ino);
  // The inode `name` in `parent` names now (its lookup count + 1), or an errno.
  int find_or_create(inode& parent, const char* name, fuse_entry_param& e);
  void reply_entry(fuse_req_t req, inode& parent, const char* name);
  bool hidden(const inode& parent, const char* name) const;
  std::string child_path(const inode& parent, const char* name) const;
  std::string path_of(const inode& n) const;
  // Checks a handle before I/O: EIO when its lock was revoked or it predates a power loss.
  int check_handle(handle& h);
  // Applies the fault rules to a request: sleeps for a delay, returns the errno to fail
  // with (0: go on).
  int fault(fuse_req_t req, op_class op, const inode& n);
  int fault(fuse_req_t req, op_class op, const std::string& path);
  std::string status_json();
  std::string crash();

  passthrough_options options_;
  std::unique_ptr<inode> root_;  // owns the descriptor of SOURCE
  int trash_fd_ = -1;
  mutable std::mutex inodes_mutex_;
  std::map<file_key, std::unique_ptr<inode>> inodes_;

  fault_rules rules_;
  power_model model_;
  lock_table locks_;

  // Power and freeze. Every operation holds power_mutex_ shared while it runs; a crash takes
  // it exclusively, so it restores files only when no operation is half done.
  std::shared_mutex power_mutex_;
  std::mutex state_mutex_;
  std::condition_variable state_changed_;
  bool frozen_ = false;
  std::vector<freeze_request> partial_freezes_;  // under state_mutex_
  std::atomic<bool> powered_{true};
  std::atomic<std::uint64_t> generation_{0};  // +1 per power loss
  std::uint64_t crashes_ = 0;
  std::atomic<std::uint64_t> operations_{0};
};

}  // namespace tandem::faultfs
