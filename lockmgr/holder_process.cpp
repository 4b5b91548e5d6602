#include "lockmgr/holder_process.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

namespace tandem::lockmgr {
namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

std::string read_link(const char* path) {
  char buf[128];
  ssize_t n = ::readlink(path, buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

// The start time of `pid` now, nullopt if no such process (or /proc unreadable).
std::optional<std::uint64_t> start_ticks_of(std::int64_t pid) {
  auto line = read_first_line("/proc/" + std::to_string(pid) + "/stat");
  if (line.empty()) return std::nullopt;
  return parse_start_ticks(line);
}

int open_pidfd(std::int64_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

holder_observation gone(std::string why) { return {holder_state::gone, std::move(why)}; }

// Polls the pidfd until it is readable (the thread group has exited) or `limit` passes.
holder_observation wait_readable(int fd, const holder_record& r, std::chrono::milliseconds limit,
                                 const std::function<bool()>& keep_waiting) {
  const std::string who = "pid " + std::to_string(r.pid);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return gone(who + " has exited");
    if (n == 0) return {holder_state::alive, who + " still runs"};
    if (errno != EINTR) return {holder_state::unobservable, "poll on the pidfd of " + who + " failed"};
    if (!keep_waiting()) return {holder_state::alive, who + " still runs (wait cancelled)"};
  }
}

}  // namespace

const char* to_string(holder_state s) noexcept {
  switch (s) {
    case holder_state::gone: return "gone";
    case holder_state::alive: return "alive";
    case holder_state::unobservable: return "unobservable";
    case holder_state::fenced: return "fenced";
  }
  return "unknown";
}

process_identity this_process() {
  process_identity self;
  self.host = host_name();
  self.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  self.pid_ns = read_link("/proc/self/ns/pid");
  self.pid = static_cast<std::int64_t>(::getpid());
  self.start_ticks = start_ticks_of(self.pid).value_or(0);
  return self;
}

std::optional<std::uint64_t> parse_start_ticks(std::string_view stat_line) {
  auto close = stat_line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // After ") ": field 3 (state) onwards; the start time is field 22, the 20th from here.
  std::string_view rest = stat_line.substr(close + 1);
  int field = 2;
  std::size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    if (i >= rest.size()) break;
    std::size_t end = rest.find(' ', i);
    if (end == std::string_view::npos) end = rest.size();
    if (++field == 22) {
      std::uint64_t value = 0;
      auto [ptr, ec] = std::from_chars(rest.data() + i, rest.data() + end, value);
      if (ec != std::errc{} || ptr != rest.data() + end) return std::nullopt;
      return value;
    }
    i = end;
  }
  return std::nullopt;
}

std::string why_unobservable(const holder_record& r, const process_identity& self) {
  if (r.boot_id.empty() || r.pid_ns.empty() || r.pid_start == 0 || r.pid <= 0)
    return "the holder record does not identify its process (an older writer)";
  if (self.boot_id.empty() || self.pid_ns.empty()) return "this host's boot id or pid namespace is unreadable";
  if (r.host != self.host || r.boot_id != self.boot_id) return "the holder ran on another host (" + r.host + ")";
  if (r.pid_ns != self.pid_ns) return "the holder ran in another pid namespace (" + r.pid_ns + ")";
  return {};
}

holder_observation await_holder_exit(const holder_record& r, const process_identity& self,
                                     std::chrono::milliseconds limit, const std::function<bool()>& keep_waiting) {
  if (auto why = why_unobservable(r, self); !why.empty()) return {holder_state::unobservable, why};
  const std::string who = "pid " + std::to_string(r.pid);
  // The pidfd first, then the start time: if the start time still matches after the open,
  // the pidfd refers to the holder (a pid is never handed back to an older process).
  int fd = open_pidfd(r.pid);
  if (fd < 0) {
    if (errno == ESRCH) return gone("no process has " + who);
    return {holder_state::unobservable, "pidfd_open(" + std::to_string(r.pid) + ") failed: errno " + std::to_string(errno)};
  }
  holder_observation result;
  auto start = start_ticks_of(r.pid);
  if (!start) {
    result = gone("no process has " + who);
  } else if (*start != r.pid_start) {
    result = gone(who + " now belongs to another process (started at tick " + std::to_string(*start) + ", the holder at " +
                  std::to_string(r.pid_start) + ")");
  } else {
    result = wait_readable(fd, r, limit, keep_waiting);
  }
  ::close(fd);
  return result;
}

}  // namespace tandem::lockmgr
