// An owner thread the test drives by hand: hand poster() to code that posts its callbacks
// (journal::options::post), then run_until() runs what was posted, on the calling thread,
// until a condition holds. Callbacks run only when the test says so, which makes "the
// append is still in flight" certain, as the broker's io thread would see it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

#include "tests/support/wait.h"

namespace tandem::test {

class owner_queue {
 public:
  std::function<void(std::function<void()>)> poster() {
    return [this](std::function<void()> f) {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(f));
      cv_.notify_all();
    };
  }
  // Runs posted functions, oldest first, until `done()` holds; false when `deadline`
  // passed first.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline = default_deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
      std::function<void()> f;
      {
        std::unique_lock lock(mu_);
        if (!cv_.wait_until(lock, until, [&] { return !queue_.empty(); })) return false;
        f = std::move(queue_.front());
        queue_.pop_front();
      }
      f();
    }
    return true;
  }
  // Runs whatever is queued now, without waiting.
  void run_pending() {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(queue_);
    }
    for (auto& f : batch) f();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
};

}  // namespace tandem::test
