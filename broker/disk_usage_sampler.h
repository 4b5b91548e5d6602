// The bytes of the files under a directory (the store's journal/), summed every few seconds
// on a thread of its own for /metrics (tandem_journal_disk_bytes). stat can hang on NFS, and
// the io thread must never wait for it: the io thread only reads the last sum, an atomic.
//
// Ownership: broker_process makes one when it becomes master and destroys it on the io
// thread before exit; the destructor wakes the thread and joins it (at most one directory
// walk long).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

namespace tandem::broker {

class disk_usage_sampler {
 public:
  explicit disk_usage_sampler(std::filesystem::path dir,
                              std::chrono::milliseconds period = std::chrono::seconds(5));
  ~disk_usage_sampler();
  disk_usage_sampler(const disk_usage_sampler&) = delete;
  disk_usage_sampler& operator=(const disk_usage_sampler&) = delete;

  // The last sum (0 until the first walk ends). Any thread.
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  void run();

  const std::filesystem::path dir_;
  const std::chrono::milliseconds period_;
  std::atomic<std::uint64_t> bytes_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it reads
};

}  // namespace tandem::broker
