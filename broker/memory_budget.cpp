#include "broker/memory_budget.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace tandem::broker {

memory_budget::memory_budget(std::uint64_t limit, std::function<std::uint64_t()> message_bytes)
    : limit_(limit), message_bytes_(std::move(message_bytes)) {}

std::uint64_t memory_budget::reading(std::uint64_t before, std::uint64_t after) {
  read_bytes_ -= std::min(read_bytes_, before);
  read_bytes_ += after;
  if (after < before) wake_if_room();
  return after;
}

std::uint64_t memory_budget::buffering(std::uint64_t before, std::uint64_t after) {
  buffer_bytes_ -= std::min(buffer_bytes_, before);
  buffer_bytes_ += after;
  if (after < before) wake_if_room();
  return after;
}

std::uint64_t memory_budget::transport_buffering(std::uint64_t before, std::uint64_t after) {
  transport_bytes_ -= std::min(transport_bytes_, before);
  transport_bytes_ += after;
  if (after < before) wake_if_room();
  return after;
}

void memory_budget::written(std::uint64_t bytes) {
  write_bytes_ -= std::min(write_bytes_, bytes);
  if (bytes > 0) wake_if_room();
}

memory_budget::waiter_id memory_budget::wait(std::function<void()> wake) {
  ++waits_total_;
  auto id = next_waiter_++;
  waiters_.emplace(id, std::move(wake));
  return id;
}

void memory_budget::wake_if_room() {
  // A woken connection only schedules its reader (it does not read inside this call), but
  // guard anyway: a wake that released bytes must not re-enter and walk a changing map.
  if (waking_ || waiters_.empty() || full()) return;
  waking_ = true;
  auto woken = std::exchange(waiters_, {});
  for (auto& [id, wake] : woken) wake();
  waking_ = false;
}

}  // namespace tandem::broker
