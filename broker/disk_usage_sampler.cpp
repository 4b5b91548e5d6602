#include "broker/disk_usage_sampler.h"

namespace tandem::broker {
namespace {

// Files that vanish or cannot be read mid-walk (GC deletes segments) are skipped.
std::uint64_t sum_file_sizes(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      auto s = it->file_size(size_ec);
      if (!size_ec) total += s;
    }
  }
  return total;
}

}  // namespace

disk_usage_sampler::disk_usage_sampler(std::filesystem::path dir, std::chrono::milliseconds period)
    : dir_(std::move(dir)), period_(period), thread_([this] { run(); }) {}

disk_usage_sampler::~disk_usage_sampler() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void disk_usage_sampler::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    bytes_.store(sum_file_sizes(dir_), std::memory_order_relaxed);
    lock.lock();
    wake_.wait_for(lock, period_, [this] { return stop_; });
  }
}

}  // namespace tandem::broker
