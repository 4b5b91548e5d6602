// A slave's own thread that keeps journal::checkpoint_preloader current while the slave
// waits for the lock, and hands what it holds to the takeover's store::open
// (journal/standby.h; docs/failover.md section 1, "A slave's head start").
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <thread>

#include "journal/standby.h"

namespace tandem::broker {

class checkpoint_preload {
 public:
  struct status {
    std::uint64_t lsn = 0;  // checkpoint held, 0 = none
    std::uint64_t live_messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t sealed_segments = 0;  // segments after it held in memory (standby.h)
    std::uint64_t sealed_bytes = 0;
  };
  // `on_status` runs on the preload's thread after each checkpoint it loads, and when the
  // sealed segments it holds change.
  checkpoint_preload(std::filesystem::path store, std::size_t producer_window, std::size_t max_producers,
                     std::chrono::milliseconds interval, std::uint64_t sealed_bytes,
                     std::function<void(const status&)> on_status);
  ~checkpoint_preload();  // stops and joins

  // Stops the thread (waiting for a checkpoint load in progress: the takeover would read
  // that file itself otherwise; a read of sealed segments in progress is cut short) and
  // returns what it holds, for journal::options::preloaded.
  std::shared_ptr<journal::preloaded_checkpoint> finish();

 private:
  void run(std::stop_token stop);
  void refresh_once();

  journal::checkpoint_preloader preloader_;
  std::chrono::milliseconds interval_;
  std::function<void(const status&)> on_status_;
  std::string last_problem_;  // logged once until it changes
  status last_status_;
  std::jthread thread_;       // last: starts once the rest is built
};

}  // namespace tandem::broker
