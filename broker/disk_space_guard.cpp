#include "broker/disk_space_guard.h"

#include "journal/fs/file_system.h"

namespace tandem::broker {

disk_space_guard::disk_space_guard(std::filesystem::path store, std::uint64_t reserve_bytes, change_callback on_change,
                                   std::chrono::milliseconds period)
    : store_(std::move(store)),
      reserve_bytes_(reserve_bytes),
      on_change_(std::move(on_change)),
      period_(period),
      thread_([this] { run(); }) {}

disk_space_guard::~disk_space_guard() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

disk_space_guard::status disk_space_guard::judge(const std::filesystem::space_info& space,
                                                  std::uint64_t reserve_bytes) {
  status s;
  s.reserve_bytes = reserve_bytes;
  if (space.capacity == 0) return s;  // no answer about space (see the header)
  s.available_bytes = space.available;
  s.full = space.available < reserve_bytes;
  return s;
}

disk_space_guard::status disk_space_guard::check(const std::filesystem::path& store, std::uint64_t reserve_bytes) {
  std::error_code ec;
  auto space = std::filesystem::space(store, ec);
  // An unanswered statvfs says nothing about space either: not full (the journal's own
  // errors still stop a master whose writes fail).
  status s = ec ? judge({0, 0, 0}, reserve_bytes) : judge(space, reserve_bytes);
  s.reserve_file = std::filesystem::exists(store / reserve_file_name, ec);
  return s;
}

bool disk_space_guard::release_reserve(const std::filesystem::path& store) {
  return !fs::posix_file_system().remove(store / reserve_file_name);
}

// Made only with room to spare (twice its size available), so making it never makes the
// store full; written as disk-reserve.tmp and renamed, so a crash never leaves a short reserve
// under the real name (a short one would promise room it does not hold).
void disk_space_guard::keep_reserve(const status& s) {
  if (s.reserve_file || s.available_bytes < 2 * reserve_bytes_) return;
  if (std::chrono::steady_clock::now() < next_reserve_try_) return;
  auto& fsys = fs::posix_file_system();
  const auto tmp = store_ / (std::string(reserve_file_name) + ".tmp");
  (void)fsys.remove(tmp);
  auto f = fsys.open(tmp, fs::open_mode::create_exclusive);
  if (!f) {
    next_reserve_try_ = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    return;
  }
  bool ok = !f.value()->allocate(0, reserve_bytes_) && !f.value()->sync();
  f.value().reset();
  if (ok) ok = !fsys.rename(tmp, store_ / reserve_file_name) && !fsys.sync_dir(store_);
  if (!ok) {
    (void)fsys.remove(tmp);
    next_reserve_try_ = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  }
}

void disk_space_guard::run() {
  std::unique_lock lock(mutex_);
  bool first = true;
  bool was_full = false;
  while (!stop_) {
    lock.unlock();
    auto s = check(store_, reserve_bytes_);
    if (!s.full) keep_reserve(s);
    if (first || s.full != was_full) on_change_(s);
    first = false;
    was_full = s.full;
    lock.lock();
    wake_.wait_for(lock, period_, [this] { return stop_; });
  }
}

}  // namespace tandem::broker
