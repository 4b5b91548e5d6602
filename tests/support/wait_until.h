// Waiting for a condition with a deadline, never a bare sleep (GUIDE.md "Tests"). For a
// condition that has no event to wait on (a file's contents, /proc/locks, a process's state),
// it looks every `poll`; the deadline is generous because the machine is shared and
// sanitizer builds are slow, and it only costs time when the test fails.
//
// A test running on an io_context must not block its thread: it uses async_wait_until.h.
#pragma once

#include <chrono>
#include <thread>

namespace tandem::testing {

inline constexpr std::chrono::milliseconds default_deadline{10'000};

// True as soon as `condition()` is; false if it still is not after `timeout`.
template <class Condition>
bool wait_until(Condition condition, std::chrono::milliseconds timeout = default_deadline,
                std::chrono::milliseconds poll = std::chrono::milliseconds(2)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace tandem::testing
