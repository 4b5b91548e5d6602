#include "lockmgr/detail/interrupter.h"

#include <time.h>

#include <cerrno>
#include <mutex>

namespace tandem::lockmgr::detail {
namespace {

extern "C" void wake_handler(int) {}

void install_handler(int sig) {
  // Once per signal number per process. Without SA_RESTART, so fcntl(F_OFD_SETLKW) and
  // nanosleep return EINTR instead of being restarted by the kernel.
  static std::mutex mutex;
  static sigset_t installed;
  static bool initialised = false;
  std::lock_guard lock(mutex);
  if (!initialised) {
    sigemptyset(&installed);
    initialised = true;
  }
  if (sigismember(&installed, sig) == 1) return;
  struct sigaction sa {};
  sa.sa_handler = wake_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ::sigaction(sig, &sa, nullptr);
  sigaddset(&installed, sig);
}

}  // namespace

bool interrupter::arm() {
  install_handler(wake_signal_);
  waiter_ = pthread_self();
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, wake_signal_);
  pthread_sigmask(SIG_UNBLOCK, &wake, &saved_mask_);
  armed_.store(true, std::memory_order_seq_cst);
  if (cancelled_.load(std::memory_order_seq_cst)) {
    disarm();
    return false;
  }
  return true;
}

void interrupter::disarm() {
  armed_.store(false, std::memory_order_seq_cst);
  // A cancel() that saw armed_ == true may still be about to pthread_kill this thread; wait
  // for it, so it never signals a thread that has moved on (or exited).
  while (signalling_.load(std::memory_order_seq_cst) != 0) {
  }
  pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
}

bool interrupter::sleep_for(std::chrono::nanoseconds d) {
  if (cancelled()) return false;
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  struct timespec req {static_cast<time_t>(s.count()), static_cast<long>((d - s).count())};
  struct timespec rem {};
  while (::nanosleep(&req, &rem) != 0) {
    if (errno != EINTR || cancelled()) break;
    req = rem;  // a stray signal: sleep the rest
  }
  return !cancelled();
}

void interrupter::cancel() noexcept {
  cancelled_.store(true, std::memory_order_seq_cst);
  // Called from a signal handler on the waiting thread itself: that signal already
  // interrupts the wait (if its handler has no SA_RESTART); looping here would only
  // delay the return. One extra wake signal covers a handler installed with SA_RESTART only
  // if it arrives after the handler returns, which it may not: document, don't loop.
  if (armed_.load(std::memory_order_seq_cst) && pthread_equal(pthread_self(), waiter_)) {
    pthread_kill(waiter_, wake_signal_);
    return;
  }
  // Re-send until the waiter disarms: the first signal may arrive before it entered the
  // blocking call. 2000 rounds of 1 ms bound a cancel from a signal handler.
  for (int round = 0; round < 2000; ++round) {
    signalling_.fetch_add(1, std::memory_order_seq_cst);
    bool armed = armed_.load(std::memory_order_seq_cst);
    if (armed) pthread_kill(waiter_, wake_signal_);
    signalling_.fetch_sub(1, std::memory_order_seq_cst);
    if (!armed) return;
    struct timespec ms {0, 1'000'000};
    ::nanosleep(&ms, nullptr);
  }
}

}  // namespace tandem::lockmgr::detail
