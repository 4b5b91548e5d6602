// Process logging for tandemd: one line per event on stderr, for journald and for people.
//
//   2026-11-25T10:42:32.123Z info  server  master epoch=3 recovered=120 took_ms=41
//   <UTC time, ms>           <lvl> <component> <message> <key=value fields...>
//
// Contracts:
// - Libraries (journal, lockmgr, stomp) never log; they report to the process, which calls
//   these functions (STYLE.md "Logging"). Components are module names: "server", "conn",
//   "admin", "journal", "lockmgr", "engine", "main".
// - Thread-safe: the journal writer and the lock watchdog threads may log through observers.
// - No colour unless stderr is a terminal. Values containing spaces, quotes, '=' or control
//   bytes are quoted and escaped so a line stays one line and stays machine-splittable.
// - Never pass message bodies here; headers only where an operator needs them (destination).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

namespace tandem::broker::log {

enum class level { debug, info, warn, error };

// One key=value pair; build with `kv("epoch", 3)`.
struct field {
  std::string_view key;
  std::string value;
};

template <class T>
field kv(std::string_view key, const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return field{key, value ? "true" : "false"};
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return field{key, std::string(std::string_view(value))};
  } else {
    return field{key, fmt::format("{}", value)};
  }
}

// Configure the process logger (idempotent; call early in main). `min_level` filters.
void init(level min_level = level::info);
void set_level(level min_level);
bool parse_level(std::string_view text, level& out);

// "message key=value key=\"a b\"": exposed for tests and for callers that build lines.
std::string format_line(std::string_view component, std::string_view message,
                        std::initializer_list<field> fields);
// Quote a value if it needs it (spaces, '"', '=', control bytes, empty).
std::string quote_value(std::string_view value);

void write(level lvl, std::string_view component, std::string_view message,
           std::initializer_list<field> fields = {});

inline void debug(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { write(level::debug, c, m, f); }
inline void info(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { write(level::info, c, m, f); }
inline void warn(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { write(level::warn, c, m, f); }
inline void error(std::string_view c, std::string_view m, std::initializer_list<field> f = {}) { write(level::error, c, m, f); }

// Rate limiting for events that can repeat many times a second (a client flood of bad frames,
// accept errors): at most one line per `interval`; the next line that passes carries the
// number suppressed in between as `suppressed=N`. Thread-safe.
class rate_limiter {
 public:
  explicit rate_limiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // True if a line may be written now; `suppressed` receives how many were dropped before it.
  bool allow(std::uint64_t& suppressed);

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool any_ = false;
  std::uint64_t suppressed_ = 0;
};

}  // namespace tandem::broker::log
