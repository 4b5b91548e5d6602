// Keeps a full store serviceable (issue 12, item 3): consumers and ACKs go on, persistent
// SENDs are refused with an ERROR that says the disk is full, and a broker can still start
// on a store whose file system someone else filled.
//
// Two amounts of room, both `reserve_bytes` (tandemd: 2 x segment_bytes, so the next
// segment roll, a checkpoint and the epoch record of a takeover always fit):
//  * a floor: while the file system has less than reserve_bytes available, the store is
//    "full" and on_change tells the owner (tandemd refuses persistent SENDs: ERROR "disk
//    full"). ACKs and the records that free space still have the floor to write into, and
//    each acknowledged segment that GC deletes gives room back.
//  * a reserve file, DIR/disk-reserve, reserve_bytes of allocated blocks the master creates
//    while there is room (at least twice reserve_bytes available). It holds space for a
//    START on a file system filled by something else: a starting broker whose epoch write or
//    journal open fails with ENOSPC removes it (release_reserve) and tries once more. Its
//    bytes mean nothing; removing it is always safe, by anyone, at any time.
//
// Threads: the checks (statvfs, fallocate: they can hang on NFS) run on the guard's own
// thread; on_change runs there too and must post to the owner's executor. The destructor
// wakes the thread and joins it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

namespace tandem::broker {

class disk_space_guard {
 public:
  struct status {
    bool full = false;
    std::uint64_t available_bytes = 0;  // for unprivileged users (statvfs f_bavail)
    std::uint64_t reserve_bytes = 0;
    bool reserve_file = false;          // DIR/disk-reserve exists
  };
  using change_callback = std::function<void(const status&)>;

  static constexpr const char* reserve_file_name = "disk-reserve";

  // Calls on_change once at the first check, then on every change of `full`.
  disk_space_guard(std::filesystem::path store, std::uint64_t reserve_bytes, change_callback on_change,
                   std::chrono::milliseconds period = std::chrono::milliseconds(250));
  ~disk_space_guard();
  disk_space_guard(const disk_space_guard&) = delete;
  disk_space_guard& operator=(const disk_space_guard&) = delete;

  // Removes DIR/disk-reserve: true when it existed and is gone.
  static bool release_reserve(const std::filesystem::path& store);
  // One look at the file system (no reserve file made or removed).
  static status check(const std::filesystem::path& store, std::uint64_t reserve_bytes);
  // What one statvfs answer says (no I/O). A file system that reports no capacity at all
  // says nothing about space: not full. Seen on a CephFS mount for ~10 s after the
  // cluster starts (0 of 0 bytes until the OSDs first report).
  static status judge(const std::filesystem::space_info& space, std::uint64_t reserve_bytes);

 private:
  void run();
  void keep_reserve(const status& s);

  const std::filesystem::path store_;
  const std::uint64_t reserve_bytes_;
  const change_callback on_change_;
  const std::chrono::milliseconds period_;
  // After a failed attempt (no fallocate on this mount, a race for the last blocks) the next
  // one waits a minute: never a create-and-remove every period on an NFS server.
  std::chrono::steady_clock::time_point next_reserve_try_{};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it reads
};

}  // namespace tandem::broker
