// Waiting for a condition with a deadline, never a bare sleep: the condition is checked
// every `poll` until it holds or `deadline` passes. For state another thread or process
// changes without telling us; when it can notify, wait on its condition variable instead
// (completion_tracker, owner_queue).
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace tandem::test {

// A hang is a failure, not a wait: generous enough for a loaded 2-core CI machine under
// ASan, short enough that a stuck test ends.
inline constexpr std::chrono::seconds default_deadline{30};

// True as soon as `pred()` holds; false when `deadline` passed first.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline = default_deadline,
                       std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace tandem::test
