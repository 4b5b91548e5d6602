#include "broker/log.h"

#include <cstdio>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace tandem::broker::log {
namespace {

spdlog::level::level_enum to_spdlog(level l) {
  switch (l) {
    case level::debug: return spdlog::level::debug;
    case level::info: return spdlog::level::info;
    case level::warn: return spdlog::level::warn;
    case level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_logger() {
  // color_mode::automatic: colour only when stderr is a terminal (journald gets plain text).
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
  auto logger = std::make_shared<spdlog::logger>("tandemd", std::move(sink));
  // %^..%$ is the colour range (no-op without a TTY); level names padded to 5 for columns.
  logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc));
  logger->set_level(spdlog::level::info);
  // Every line goes out at once: a crashed broker's last words are the useful ones.
  logger->flush_on(spdlog::level::debug);
  return logger;
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = make_logger();
  return *instance;
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

void init(level min_level) { set_level(min_level); }

void set_level(level min_level) { logger().set_level(to_spdlog(min_level)); }

bool parse_level(std::string_view text, level& out) {
  if (text == "debug") out = level::debug;
  else if (text == "info") out = level::info;
  else if (text == "warn" || text == "warning") out = level::warn;
  else if (text == "error") out = level::error;
  else return false;
  return true;
}

std::string quote_value(std::string_view value) {
  if (!needs_quotes(value)) return std::string(value);
  std::string out;
  out.reserve(value.size() + 2);
  out.push_back('"');
  for (unsigned char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

std::string format_line(std::string_view component, std::string_view message,
                        std::initializer_list<field> fields) {
  std::string line;
  line.reserve(64 + message.size());
  line.append(component);
  line.push_back(' ');
  line.append(message);
  for (const field& f : fields) {
    line.push_back(' ');
    line.append(f.key);
    line.push_back('=');
    line += quote_value(f.value);
  }
  return line;
}

void write(level lvl, std::string_view component, std::string_view message,
           std::initializer_list<field> fields) {
  auto& l = logger();
  if (!l.should_log(to_spdlog(lvl))) return;
  l.log(to_spdlog(lvl), "{}", format_line(component, message, fields));
}

bool rate_limiter::allow(std::uint64_t& suppressed) {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  if (!any_ || now - last_ >= interval_) {
    any_ = true;
    last_ = now;
    suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace tandem::broker::log
