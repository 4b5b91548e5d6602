#include "journal/thread_slice.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace tandem::journal {
namespace {

// struct sched_attr of <linux/sched/types.h> (SCHED_ATTR_SIZE_VER0, 48 bytes), spelled out
// because glibc 2.36 has no wrapper and its <sched.h> clashes with the kernel header.
struct sched_attr_v0 {
  std::uint32_t size;
  std::uint32_t sched_policy;
  std::uint64_t sched_flags;
  std::int32_t sched_nice;
  std::uint32_t sched_priority;
  std::uint64_t sched_runtime;
  std::uint64_t sched_deadline;
  std::uint64_t sched_period;
};
static_assert(sizeof(sched_attr_v0) == 48);

std::optional<sched_attr_v0> get_attr(int tid) noexcept {
  sched_attr_v0 attr{};
  if (::syscall(SYS_sched_getattr, tid, &attr, sizeof attr, 0) != 0) return std::nullopt;
  return attr;
}

}  // namespace

std::error_code request_thread_slice(std::chrono::microseconds slice) noexcept {
  if (slice.count() <= 0) return {};
  auto current = get_attr(0);
  if (!current) return {errno, std::generic_category()};
  // Only a plain time-shared thread: a real-time or deadline policy set by the operator
  // (chrt) is kept as it is.
  if (current->sched_policy != SCHED_OTHER) return {};
  sched_attr_v0 attr{};
  attr.size = sizeof attr;
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = current->sched_nice;
  attr.sched_runtime = static_cast<std::uint64_t>(std::chrono::nanoseconds(slice).count());
  if (::syscall(SYS_sched_setattr, 0, &attr, 0) != 0) return {errno, std::generic_category()};
  return {};
}

std::optional<std::chrono::nanoseconds> thread_slice(int tid) noexcept {
  auto attr = get_attr(tid);
  if (!attr) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(attr->sched_runtime));
}

}  // namespace tandem::journal
