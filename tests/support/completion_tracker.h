// Counts completions of asynchronous operations that report (error, number), such as
// journal appends (message_store.h's completion), so a test can issue many and wait, with
// a deadline, for all or some of them. Thread-safe: completions may run on any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <system_error>
#include <vector>

#include "tests/support/wait.h"

namespace tandem::test {

// What one completion reported.
struct outcome {
  std::error_code ec;
  std::uint64_t lsn = 0;  // the number the completion reported (the journal's lsn); 0 on error
  bool done = false;
};

class completion_tracker {
 public:
  using callback = std::function<void(std::error_code, std::uint64_t)>;

  // A callback that records into slot `i` (slots are made on demand).
  callback slot(std::size_t i) {
    std::lock_guard lock(mu_);
    if (outcomes_.size() <= i) outcomes_.resize(i + 1);
    ++issued_;
    return [this, i](std::error_code ec, std::uint64_t value) {
      std::lock_guard lock(mu_);
      outcomes_[i] = {ec, value, true};
      ++completed_;
      cv_.notify_all();
    };
  }
  // A callback for the next slot.
  callback next() {
    std::size_t i;
    {
      std::lock_guard lock(mu_);
      i = outcomes_.size();
    }
    return slot(i);
  }
  // Counts a completion that the caller's own callback saw (no slot, no outcome).
  void done() {
    std::lock_guard lock(mu_);
    ++completed_;
    cv_.notify_all();
  }

  // Until every callback handed out ran; false on timeout.
  bool wait_all(std::chrono::milliseconds deadline = default_deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return completed_ >= issued_; });
  }
  // Until `n` completions ran (slots and done() together); false on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds deadline = default_deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return completed_ >= n; });
  }
  std::size_t completed() const {
    std::lock_guard lock(mu_);
    return completed_;
  }
  std::vector<outcome> outcomes() const {
    std::lock_guard lock(mu_);
    return outcomes_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<outcome> outcomes_;
  std::size_t issued_ = 0;
  std::size_t completed_ = 0;
};

}  // namespace tandem::test
