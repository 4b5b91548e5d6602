#include "broker/stomp/header_values.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "broker/stomp/errc.h"

namespace tandem::stomp {
namespace {

std::string_view trim_spaces(std::string_view s) noexcept {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Digits only; from_chars alone would also accept a leading '-' for nothing but signed types,
// and reports overflow, which we want as a plain failure.
template <class T>
std::optional<T> parse_decimal(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

result<std::size_t> parse_content_length(std::string_view value) noexcept {
  if (auto n = parse_decimal<std::size_t>(value)) return *n;
  return make_error_code(errc::bad_content_length);
}

result<version> choose_version(std::optional<std::string_view> accept_version) {
  if (!accept_version) return version::v1_0;
  std::optional<version> best;
  std::string_view rest = *accept_version;
  while (true) {
    const std::size_t comma = rest.find(',');
    if (auto v = version_from_name(trim_spaces(rest.substr(0, comma)))) {
      best = best ? std::max(*best, *v) : *v;
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!best) return make_error_code(errc::no_common_version);
  return *best;
}

result<heart_beat> parse_heart_beat(std::string_view value) noexcept {
  const std::size_t comma = value.find(',');
  if (comma == std::string_view::npos) return make_error_code(errc::bad_heart_beat);
  const auto cx = parse_decimal<std::uint32_t>(trim_spaces(value.substr(0, comma)));
  const auto cy = parse_decimal<std::uint32_t>(trim_spaces(value.substr(comma + 1)));
  if (!cx || !cy) return make_error_code(errc::bad_heart_beat);
  return heart_beat{std::chrono::milliseconds(*cx), std::chrono::milliseconds(*cy)};
}

std::string format_heart_beat(heart_beat hb) {
  return std::to_string(hb.send_every.count()) + "," + std::to_string(hb.receive_every.count());
}

heart_beat_periods negotiate_heart_beat(heart_beat ours, heart_beat theirs) noexcept {
  const auto period = [](std::chrono::milliseconds can, std::chrono::milliseconds want) {
    return can.count() == 0 || want.count() == 0 ? std::chrono::milliseconds(0) : std::max(can, want);
  };
  return {period(ours.send_every, theirs.receive_every), period(theirs.send_every, ours.receive_every)};
}

}  // namespace tandem::stomp
