// The process's own Prometheus families (role, epoch, takeovers, recovery, lock checks,
// STOMP listener, journal): figures broker_process gathers on the io thread, rendered
// through prometheus::writer. The engine adds its families after these
// (engine::append_metrics).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "broker/prometheus.h"
#include "journal/store.h"

namespace tandem::broker {

// The roles of broker_process, in the order /metrics lists them.
inline constexpr std::string_view metric_roles[] = {"slave", "recovering", "master"};

// This process's resident memory (VmRSS, from /proc/self/statm) in bytes; 0 when unreadable.
std::uint64_t resident_bytes();

struct process_figures {
  std::string_view role;  // the current role's name (broker_process::role_name)
  std::uint64_t epoch = 0;
  std::chrono::seconds uptime{0};
  std::uint64_t takeovers = 0;
  std::chrono::milliseconds recovery{0};          // lock acquired to serving, last takeover
  std::chrono::milliseconds journal_recovery{0};  // its journal part

  struct lock_checks {
    std::uint64_t checks = 0;
    std::uint64_t failures = 0;
    std::uint64_t nanoseconds = 0;
    std::uint64_t max_nanoseconds = 0;
  };
  std::optional<lock_checks> lock;  // once the lock manager is open

  struct listener {
    std::uint64_t open = 0;
    std::uint64_t accepted = 0;
    std::uint64_t refused = 0;
  };
  listener connections;  // zeros while no STOMP listener
  // The engine renders tandem_connections itself while it runs (its sessions); the process
  // renders it only otherwise, so the family appears once.
  bool engine_renders_connections = false;

  struct journal_figures {
    std::uint64_t live_messages = 0;
    std::uint64_t live_bytes = 0;
    std::uint64_t last_lsn = 0;
    const journal::io_stats* io = nullptr;  // the store's counters; must outlive rendering
  };
  std::optional<journal_figures> journal;  // while a store is open
  std::optional<std::uint64_t> disk_bytes;  // the disk-usage sampler's last figure
};

void render_process_metrics(const process_figures& f, prometheus::writer& out);

}  // namespace tandem::broker
