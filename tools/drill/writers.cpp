#include "tools/drill/writers.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tandem::drill {
namespace {

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

writers_report check_writers(const std::vector<write_ack>& acks) {
  writers_report r;
  r.acks = acks.size();
  std::map<std::uint64_t, epoch_window> windows;
  for (const auto& a : acks) {
    if (!a.epoch) {
      ++r.unattributed;
      continue;
    }
    auto [it, fresh] = windows.try_emplace(*a.epoch);
    auto& w = it->second;
    if (fresh) {
      w.epoch = *a.epoch;
      w.slot = a.slot;
      w.incarnation = a.incarnation;
      w.first_received = w.last_received = a.received;
    }
    w.first_received = std::min(w.first_received, a.received);
    w.last_received = std::max(w.last_received, a.received);
    ++w.receipts;
  }
  for (const auto& [epoch, w] : windows) r.windows.push_back(w);

  // earliest_newer[i]: the earliest first RECEIPT among epochs after windows[i].
  const std::size_t n = r.windows.size();
  std::vector<std::optional<clock_type::time_point>> earliest_newer(n);
  std::vector<std::uint64_t> earliest_epoch(n, 0);
  for (std::size_t i = n; i-- > 0;) {
    if (i + 1 < n) {
      earliest_newer[i] = earliest_newer[i + 1];
      earliest_epoch[i] = earliest_epoch[i + 1];
      const auto& next = r.windows[i + 1];
      if (!earliest_newer[i] || next.first_received < *earliest_newer[i]) {
        earliest_newer[i] = next.first_received;
        earliest_epoch[i] = next.epoch;
      }
    }
  }
  std::map<std::uint64_t, std::size_t> index;
  for (std::size_t i = 0; i < n; ++i) index[r.windows[i].epoch] = i;

  std::map<std::pair<std::uint64_t, std::uint64_t>, overlap_pair> pairs;
  for (const auto& a : acks) {
    if (!a.epoch) continue;
    const std::size_t i = index[*a.epoch];
    if (!earliest_newer[i] || !(*earliest_newer[i] < a.sent)) continue;
    auto& p = pairs[{*a.epoch, earliest_epoch[i]}];
    if (p.receipts == 0 || a.received < p.first) {
      p.first = a.received;
      p.example = fmt::format("{} (epoch {}) was sent {:.1f} ms after epoch {}'s first RECEIPT and receipted", a.what,
                              *a.epoch, ms_between(*earliest_newer[i], a.sent), earliest_epoch[i]);
    }
    p.older = *a.epoch;
    p.newer = earliest_epoch[i];
    ++p.receipts;
    ++r.overlapping;
    r.overlap_times.push_back(a.received);
  }
  for (auto& [key, p] : pairs) r.pairs.push_back(p);
  return r;
}

void to_json(nlohmann::json& j, const writers_report& r, clock_type::time_point origin) {
  auto windows = nlohmann::json::array();
  for (const auto& w : r.windows) {
    windows.push_back({{"epoch", w.epoch}, {"slot", w.slot}, {"incarnation", w.incarnation}, {"receipts", w.receipts},
                       {"first_receipt_ms", ms_between(origin, w.first_received)},
                       {"last_receipt_ms", ms_between(origin, w.last_received)}});
  }
  auto pairs = nlohmann::json::array();
  for (const auto& p : r.pairs) {
    pairs.push_back({{"older_epoch", p.older}, {"newer_epoch", p.newer}, {"receipts", p.receipts},
                     {"first_ms", ms_between(origin, p.first)}, {"example", p.example}});
  }
  j = nlohmann::json{{"acks", r.acks}, {"unattributed", r.unattributed}, {"overlapping", r.overlapping},
                     {"pairs", pairs}, {"windows", windows}};
}

}  // namespace tandem::drill
