#include "lockmgr/history.h"

#include <algorithm>
#include <ctime>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "journal/fs/file_system.h"

namespace tandem::lockmgr {

namespace {

std::vector<master_stint> parse_lines(std::string_view text) {
  std::vector<master_stint> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (auto s = parse_stint(line)) out.push_back(std::move(*s));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.epoch < b.epoch; });
  return out;
}

boost::outcome_v2::std_result<std::vector<master_stint>> read_all(fs::file_system& fs, const std::filesystem::path& dir) {
  auto text = fs::read_file(fs, dir / history_file_name);
  if (!text) {
    if (text.error() == std::errc::no_such_file_or_directory) return std::vector<master_stint>{};
    return text.error();
  }
  return parse_lines(text.value());
}

}  // namespace

std::optional<std::int64_t> unix_ms_of_iso8601(std::string_view text) {
  // "YYYY-MM-DDTHH:MM:SS.mmmZ": 24 characters exactly.
  if (text.size() != 24 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != '.' || text[23] != 'Z')
    return std::nullopt;
  auto number = [&](std::size_t at, std::size_t len) -> std::optional<int> {
    int v = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  auto year = number(0, 4), month = number(5, 2), day = number(8, 2), hour = number(11, 2), minute = number(14, 2),
       second = number(17, 2), ms = number(20, 3);
  if (!year || !month || !day || !hour || !minute || !second || !ms) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = *hour;
  tm.tm_min = *minute;
  tm.tm_sec = *second;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + *ms;
}

std::optional<std::int64_t> failover_ms(const master_stint& s, const std::optional<std::string>& previous_released_at) {
  if (s.previous_epoch == 0) return std::nullopt;
  if (s.previous_clean && previous_released_at) {
    if (auto released = unix_ms_of_iso8601(*previous_released_at))
      return std::max<std::int64_t>(0, s.serving_at_ms - *released);
  }
  return s.takeover_delay_ms + s.start_ms;
}

nlohmann::json to_json(const master_stint& s) {
  return nlohmann::json{{"epoch", s.epoch},
                        {"broker_name", s.broker_name},
                        {"host", s.host},
                        {"pid", s.pid},
                        {"acquired_at_ms", s.acquired_at_ms},
                        {"serving_at_ms", s.serving_at_ms},
                        {"takeover_delay_ms", s.takeover_delay_ms},
                        {"start_ms", s.start_ms},
                        {"previous_clean", s.previous_clean},
                        {"previous_broker", s.previous_broker},
                        {"previous_epoch", s.previous_epoch},
                        {"failover_ms", s.failover_ms ? nlohmann::json(*s.failover_ms) : nlohmann::json()}};
}

std::string encode_stint(const master_stint& s) {
  // A broker name with a newline must not split the line: dump() escapes control characters.
  return to_json(s).dump();
}

std::optional<master_stint> parse_stint(std::string_view line) {
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  master_stint s;
  // One member of the expected JSON type; absent or of another type = not a stint.
  auto member = [&]<class T>(const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end()) return false;
    const bool typed = std::is_same_v<T, std::string> ? it->is_string()
                       : std::is_unsigned_v<T>        ? it->is_number_unsigned()
                                                      : it->is_number_integer();
    if (!typed) return false;
    out = it->get<T>();
    return true;
  };
  if (!member("epoch", s.epoch) || s.epoch == 0 || !member("broker_name", s.broker_name) ||
      !member("host", s.host) || !member("pid", s.pid) ||
      !member("acquired_at_ms", s.acquired_at_ms) || !member("serving_at_ms", s.serving_at_ms) ||
      !member("takeover_delay_ms", s.takeover_delay_ms) || !member("start_ms", s.start_ms) ||
      !member("previous_broker", s.previous_broker) || !member("previous_epoch", s.previous_epoch))
    return std::nullopt;
  auto clean = j.find("previous_clean");
  if (clean == j.end() || !clean->is_boolean()) return std::nullopt;
  s.previous_clean = clean->get<bool>();
  auto failover = j.find("failover_ms");
  if (failover == j.end()) return std::nullopt;
  if (failover->is_number_integer()) s.failover_ms = failover->get<std::int64_t>();
  else if (!failover->is_null()) return std::nullopt;
  return s;
}

std::error_code append_history(fs::file_system& fs, const std::filesystem::path& dir, const master_stint& s) {
  auto all = read_all(fs, dir);
  // An unreadable file (EIO, a permission) is not overwritten: the operator may want it.
  if (!all) return all.error();
  auto stints = std::move(all).value();
  std::erase_if(stints, [&](const master_stint& old) { return old.epoch == s.epoch; });
  stints.push_back(s);
  std::stable_sort(stints.begin(), stints.end(), [](const auto& a, const auto& b) { return a.epoch < b.epoch; });
  if (stints.size() > max_history_lines) stints.erase(stints.begin(), stints.end() - max_history_lines);
  std::string text;
  for (const auto& one : stints) text += encode_stint(one) + "\n";
  return fs::replace_file_visibly(fs, dir / history_file_name, std::as_bytes(std::span(text)));
}

boost::outcome_v2::std_result<std::vector<master_stint>> read_history(fs::file_system& fs,
                                                                      const std::filesystem::path& dir,
                                                                      std::size_t limit) {
  auto all = read_all(fs, dir);
  if (!all) return all.error();
  auto stints = std::move(all).value();
  if (stints.size() > limit) stints.erase(stints.begin(), stints.end() - limit);
  return stints;
}

}  // namespace tandem::lockmgr
