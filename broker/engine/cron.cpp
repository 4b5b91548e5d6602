#include "broker/engine/cron.h"

#include <charconv>
#include <chrono>
#include <vector>

#include <fmt/format.h>

namespace tandem::broker::detail {
namespace {

struct field_range {
  const char* name;
  unsigned low, high;
};

bool parse_uint(std::string_view s, unsigned& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// Sets the values one field allows in `bits` (indexed by value). False with `error`.
template <std::size_t N>
bool parse_field(std::string_view text, const field_range& r, std::bitset<N>& bits, std::string& error) {
  auto bad = [&](std::string_view item, std::string_view why) {
    error = fmt::format("cron {} field '{}': item '{}' {}", r.name, text, item, why);
    return false;
  };
  while (true) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    unsigned first = r.low, last = r.high, step = 1;
    std::string_view range = item;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      if (!parse_uint(item.substr(slash + 1), step) || step == 0) return bad(item, "has a step that is not a number >= 1");
      range = item.substr(0, slash);
    }
    if (range != "*") {
      auto dash = range.find('-');
      if (!parse_uint(range.substr(0, dash), first))
        return bad(item, "is not '*', a number or a range (names, '?', 'L', 'W' and '#' are not supported)");
      last = first;
      if (dash != std::string_view::npos && !parse_uint(range.substr(dash + 1), last)) return bad(item, "has a bad range end");
      if (dash == std::string_view::npos && item.find('/') != std::string_view::npos) last = r.high;  // "n/step"
      if (first < r.low || last > r.high || first > last)
        return bad(item, fmt::format("is outside {}-{}", r.low, r.high));
    }
    for (unsigned v = first; v <= last; v += step) bits.set(v);
    if (comma == std::string_view::npos) return true;
    text.remove_prefix(comma + 1);
  }
}

std::vector<std::string_view> split_blanks(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::optional<cron_expression> cron_expression::parse(std::string_view text, std::string& error) {
  auto fields = split_blanks(text);
  if (fields.size() != 5) {
    error = fmt::format("cron '{}' has {} fields; Unix cron has 5: minute hour day-of-month month day-of-week",
                        text, fields.size());
    return std::nullopt;
  }
  cron_expression c;
  std::bitset<8> weekdays;
  if (!parse_field(fields[0], {"minute", 0, 59}, c.minutes_, error) ||
      !parse_field(fields[1], {"hour", 0, 23}, c.hours_, error) ||
      !parse_field(fields[2], {"day-of-month", 1, 31}, c.days_, error) ||
      !parse_field(fields[3], {"month", 1, 12}, c.months_, error) ||
      !parse_field(fields[4], {"day-of-week", 0, 7}, weekdays, error))
    return std::nullopt;
  for (unsigned d = 0; d < 7; ++d) c.weekdays_[d] = weekdays[d];
  if (weekdays[7]) c.weekdays_.set(0);
  c.day_restricted_ = !fields[2].starts_with('*');
  c.weekday_restricted_ = !fields[4].starts_with('*');
  return c;
}

bool cron_expression::day_matches(unsigned day, unsigned month, unsigned weekday) const {
  if (!months_[month]) return false;
  if (day_restricted_ && weekday_restricted_) return days_[day] || weekdays_[weekday];
  return days_[day] && weekdays_[weekday];
}

std::optional<std::int64_t> cron_expression::next_after(std::int64_t after_ms) const {
  using namespace std::chrono;
  constexpr std::int64_t minute_ms = 60'000, day_ms = 86'400'000;
  auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
  const std::int64_t start = (floor_div(after_ms, minute_ms) + 1) * minute_ms;
  std::int64_t day = floor_div(start, day_ms);
  int minute_of_day = static_cast<int>((start - day * day_ms) / minute_ms);
  for (std::int64_t end = day + 5 * 366 + 1; day < end; ++day, minute_of_day = 0) {
    const sys_days d{days{day}};
    const year_month_day ymd{d};
    const weekday wd{d};
    if (!day_matches(static_cast<unsigned>(ymd.day()), static_cast<unsigned>(ymd.month()), wd.c_encoding())) continue;
    for (int m = minute_of_day; m < 24 * 60; ++m)
      if (hours_[static_cast<std::size_t>(m / 60)] && minutes_[static_cast<std::size_t>(m % 60)])
        return day * day_ms + m * minute_ms;
  }
  return std::nullopt;
}

}  // namespace tandem::broker::detail
