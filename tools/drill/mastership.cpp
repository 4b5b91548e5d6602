#include "tools/drill/mastership.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace tandem::drill {

const char* to_string(evidence_source s) {
  switch (s) {
    case evidence_source::health: return "health";
    case evidence_source::probe: return "probe";
  }
  return "?";
}

void to_json(nlohmann::json& j, const double_master& d, clock_type::time_point origin) {
  auto ms = [&](clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(t - origin).count();
  };
  auto side = [&](const stint& s) {
    return nlohmann::json{{"source", to_string(s.source)}, {"slot", s.slot},          {"incarnation", s.incarnation},
                          {"epoch", s.epoch},              {"from_ms", ms(s.first_end)}, {"to_ms", ms(s.last_start)},
                          {"observations", s.observations}};
  };
  j = nlohmann::json{{"kind", d.kind}, {"a", side(d.a)}, {"b", side(d.b)}, {"overlap_ms", d.overlap.count() / 1000.0}};
}

void mastership_book::add(const observation& o) {
  ++observations_;
  if (o.positive) ++positives_;
  auto it = std::find_if(open_.begin(), open_.end(), [&](const stint& s) { return s.source == o.source && s.slot == o.slot; });
  const bool continues = it != open_.end() && o.positive && it->incarnation == o.incarnation && it->epoch == o.epoch;
  if (continues) {
    it->last_start = std::max(it->last_start, o.start);
    ++it->observations;
    return;
  }
  if (it != open_.end()) {
    closed_.push_back(*it);
    open_.erase(it);
  }
  if (o.positive) {
    stint s;
    s.source = o.source;
    s.slot = o.slot;
    s.incarnation = o.incarnation;
    s.epoch = o.epoch;
    s.first_end = o.end;
    s.last_start = o.start;
    s.observations = 1;
    open_.push_back(s);
  }
}

std::vector<stint> mastership_book::stints() const {
  std::vector<stint> all = closed_;
  all.insert(all.end(), open_.begin(), open_.end());
  return all;
}

std::vector<double_master> mastership_book::violations() const {
  std::vector<double_master> out;
  auto all = stints();
  // Sweep by start of the proven interval: each stint is compared with the ones whose proven
  // interval began before it and has not ended yet.
  std::vector<const stint*> proven;
  for (const auto& s : all) {
    if (s.proven()) proven.push_back(&s);
  }
  std::sort(proven.begin(), proven.end(), [](const stint* a, const stint* b) { return a->first_end < b->first_end; });
  for (std::size_t i = 0; i < proven.size(); ++i) {
    for (std::size_t k = i + 1; k < proven.size() && proven[k]->first_end < proven[i]->last_start; ++k) {
      const stint& a = *proven[i];
      const stint& b = *proven[k];
      if (a.source != b.source) continue;  // the two observers are not compared with each other
      if (a.slot == b.slot && a.incarnation == b.incarnation) continue;
      auto from = std::max(a.first_end, b.first_end);
      auto to = std::min(a.last_start, b.last_start);
      if (from < to) {
        out.push_back({"overlap", a, b, std::chrono::duration_cast<std::chrono::microseconds>(to - from)});
      }
    }
  }
  // An epoch is a master's identity: two processes with one epoch means the epoch bump failed.
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].source != evidence_source::health) continue;
    for (std::size_t k = i + 1; k < all.size(); ++k) {
      if (all[k].source != evidence_source::health || all[k].epoch != all[i].epoch) continue;
      if (all[k].slot == all[i].slot && all[k].incarnation == all[i].incarnation) continue;
      out.push_back({"epoch_reused", all[i], all[k], {}});
    }
  }
  return out;
}

}  // namespace tandem::drill
