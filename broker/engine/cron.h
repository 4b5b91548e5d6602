// Unix cron expressions (5 fields) for AMQ_SCHEDULED_CRON: parsing and "next time after".
// Pure: no clock, no I/O; times are ms since the Unix epoch, evaluated in UTC.
//
// Grammar, per field (minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week
// 0-7 with 0 and 7 both Sunday), fields separated by blanks:
//   field := item {"," item}
//   item  := "*" ["/" step] | n ["-" m] ["/" step]
// As in Vixie cron (and POSIX), when both day of month and day of week are restricted
// (neither starts with "*") a day matches when EITHER matches; otherwise both must.
// Names (JAN, MON), "?", "L", "W", "#" and a seconds field are refused with a reason.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::broker::detail {

class cron_expression {
 public:
  // The expression, or nullopt with `error` saying which field is wrong and why.
  static std::optional<cron_expression> parse(std::string_view text, std::string& error);

  // The first whole minute strictly after `after_ms` that matches, or nullopt when none
  // does within five years (e.g. "0 0 30 2 *": February 30th).
  std::optional<std::int64_t> next_after(std::int64_t after_ms) const;

 private:
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_; // 0..6, Sunday = 0
  bool day_restricted_ = false, weekday_restricted_ = false;

  bool day_matches(unsigned day, unsigned month, unsigned weekday) const;
};

}  // namespace tandem::broker::detail
