// Cancellation of a thread blocked in the kernel (F_OFD_SETLKW, a poll or delay sleep).
//
// A blocking lock wait cannot be woken by a condition variable: the thread sits in fcntl.
// The only portable way out is a signal whose handler does nothing and is installed without
// SA_RESTART, so the system call fails with EINTR and the waiter sees the cancel flag.
// One signal can be lost: it may land after the waiter tested the flag but before it entered
// fcntl. So cancel() re-sends the signal every millisecond until the waiter reports that it
// left the wait (disarm), bounded by a deadline in case the thread is stuck somewhere a
// signal cannot reach (an NFS "D" state).
//
// Threads: arm/disarm/wait_for belong to the one waiting thread; cancel() may be called from
// any thread AND from a signal handler (it only touches atomics and calls pthread_kill and
// nanosleep, all async-signal-safe).
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>

namespace tandem::lockmgr::detail {

class interrupter {
 public:
  explicit interrupter(int wake_signal) : wake_signal_(wake_signal) {}
  interrupter(const interrupter&) = delete;
  interrupter& operator=(const interrupter&) = delete;

  // Makes the calling thread the one cancel() wakes and unblocks the wake signal in it.
  // Returns false (and stays disarmed) if cancel() already happened.
  bool arm();
  // Ends the wait; after it returns, cancel() no longer signals this thread.
  void disarm();
  // Sleeps for `d` unless cancelled; returns false if cancelled. REQUIRES: armed.
  bool sleep_for(std::chrono::nanoseconds d);

  void cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

 private:
  const int wake_signal_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> armed_{false};
  std::atomic<int> signalling_{0};  // cancel() calls between reading armed_ and pthread_kill
  pthread_t waiter_{};
  sigset_t saved_mask_{};
};

}  // namespace tandem::lockmgr::detail
