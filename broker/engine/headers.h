// Small readers of client frame headers and destination names, shared by the frame files.
#pragma once

#include <charconv>
#include <string_view>

#include "broker/stomp/frame.h"

namespace tandem::broker::detail {

inline std::string_view header_or(const stomp::frame& f, std::string_view name, std::string_view fallback = {}) {
  auto v = f.get(name);
  return v ? *v : fallback;
}

// The whole of `text` as a decimal number; false (and `out` unspecified) otherwise.
template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

// A temporary destination's broker-wide name (/remote-temp-queue/..., destinations.h) is a
// queue or topic like any other once the session has resolved it.
inline bool is_queue(std::string_view d) {
  return (d.starts_with("/queue/") && d.size() > 7) || (d.starts_with("/remote-temp-queue/") && d.size() > 19);
}
inline bool is_topic(std::string_view d) {
  return (d.starts_with("/topic/") && d.size() > 7) || (d.starts_with("/remote-temp-topic/") && d.size() > 19);
}
inline bool is_local_temp(std::string_view d) {
  return (d.starts_with("/temp-queue/") && d.size() > 12) || (d.starts_with("/temp-topic/") && d.size() > 12);
}

}  // namespace tandem::broker::detail
