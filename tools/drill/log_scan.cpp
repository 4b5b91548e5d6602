#include "tools/drill/log_scan.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>

#include <fmt/format.h>

namespace tandem::drill {
namespace {

std::optional<std::uint64_t> number_field(std::string_view line, std::string_view key) {
  std::string value;
  if (!log_field(line, key, value)) return std::nullopt;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return n;
}

// Splits "<utc> <level> <component> <rest>" (runs of spaces between the first three).
bool split_line(std::string_view line, std::string_view& utc, std::string_view& component, std::string_view& rest) {
  auto next_word = [&](std::string_view& word) {
    std::size_t b = line.find_first_not_of(' ');
    if (b == std::string_view::npos) return false;
    line.remove_prefix(b);
    std::size_t e = line.find(' ');
    word = line.substr(0, e);
    line.remove_prefix(e == std::string_view::npos ? line.size() : e);
    return true;
  };
  std::string_view level;
  if (!next_word(utc) || !next_word(level) || !next_word(component)) return false;
  std::size_t b = line.find_first_not_of(' ');
  rest = b == std::string_view::npos ? std::string_view() : line.substr(b);
  return utc.size() >= 20 && utc.back() == 'Z';
}

}  // namespace

bool log_field(std::string_view line, std::string_view key, std::string& value) {
  value.clear();
  std::size_t pos = 0;
  while ((pos = line.find(key, pos)) != std::string_view::npos) {
    const bool at_word = pos == 0 || line[pos - 1] == ' ';
    const std::size_t eq = pos + key.size();
    if (!at_word || eq >= line.size() || line[eq] != '=') {
      pos = eq;
      continue;
    }
    std::size_t i = eq + 1;
    if (i < line.size() && line[i] == '"') {
      // Quoted by broker/log.cpp quote_value: backslash escapes inside.
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        value.push_back(line[i]);
      }
    } else {
      std::size_t e = line.find(' ', i);
      value.assign(line.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i));
    }
    return true;
  }
  return false;
}

void scan_log(std::istream& in, std::uint32_t slot, std::uint64_t incarnation, log_facts& out) {
  std::string raw;
  while (std::getline(in, raw)) {
    std::string_view utc, component, rest;
    if (!split_line(raw, utc, component, rest) || component != "main") continue;
    if (rest.starts_with("master ")) {
      auto epoch = number_field(rest, "epoch");
      if (!epoch) continue;
      master_line m;
      m.utc = std::string(utc);
      m.epoch = *epoch;
      m.took_ms = number_field(rest, "took_ms");
      m.recovered = number_field(rest, "recovered");
      m.records_replayed = number_field(rest, "records_replayed");
      m.journal_ms = number_field(rest, "journal_ms");
      m.slot = slot;
      m.incarnation = incarnation;
      out.masters.push_back(std::move(m));
    } else if (rest.starts_with("stepping down")) {
      step_down_line s;
      s.utc = std::string(utc);
      log_field(rest, "reason", s.reason);
      s.slot = slot;
      s.incarnation = incarnation;
      out.step_downs.push_back(std::move(s));
    }
  }
}

std::optional<std::string> last_error_line(std::istream& in) {
  std::optional<std::string> found;
  std::string line;
  while (std::getline(in, line)) {
    std::string_view view(line);
    std::size_t b = view.find(' ');
    if (b == std::string_view::npos) continue;
    std::size_t l = view.find_first_not_of(' ', b);
    if (l != std::string_view::npos && view.substr(l, 6) == "error ") found = line;
  }
  return found;
}

std::optional<std::string> last_error_line_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  return last_error_line(in);
}

void scan_log_file(const std::filesystem::path& file, std::uint32_t slot, std::uint64_t incarnation, log_facts& out) {
  std::ifstream in(file);
  if (in) scan_log(in, slot, incarnation, out);
}

std::vector<std::string> check_master_epochs(std::vector<master_line> masters, bool check_time_order) {
  std::vector<std::string> problems;
  std::map<std::uint64_t, const master_line*> by_epoch;
  for (const auto& m : masters) {
    auto [it, inserted] = by_epoch.emplace(m.epoch, &m);
    if (!inserted) {
      problems.push_back(fmt::format("epoch {} served twice: broker {} incarnation {} at {} and broker {} incarnation {} at {}",
                                     m.epoch, it->second->slot, it->second->incarnation, it->second->utc, m.slot,
                                     m.incarnation, m.utc));
    }
  }
  if (!check_time_order) return problems;
  std::stable_sort(masters.begin(), masters.end(), [](const master_line& a, const master_line& b) {
    return a.utc != b.utc ? a.utc < b.utc : a.epoch < b.epoch;
  });
  for (std::size_t i = 1; i < masters.size(); ++i) {
    const auto& prev = masters[i - 1];
    const auto& cur = masters[i];
    if (cur.epoch < prev.epoch) {
      problems.push_back(fmt::format("epoch went back: broker {} served epoch {} at {} after broker {} served epoch {} at {}",
                                     cur.slot, cur.epoch, cur.utc, prev.slot, prev.epoch, prev.utc));
    }
  }
  return problems;
}

}  // namespace tandem::drill
