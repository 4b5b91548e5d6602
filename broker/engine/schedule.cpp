#include "broker/engine/schedule.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace tandem::broker::detail {
namespace {

bool parse_int(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

bool is_schedule_header(std::string_view name) {
  return name == header_scheduled_delay || name == header_scheduled_period || name == header_scheduled_repeat ||
         name == header_scheduled_cron || name == header_schedule_destination || name == header_schedule_left;
}

// A min-heap through std::push_heap / pop_heap, which build max-heaps by their order.
bool later(const auto& a, const auto& b) { return a.due_ms > b.due_ms || (a.due_ms == b.due_ms && a.seq > b.seq); }

}  // namespace

std::optional<std::string_view> find_header(const header_list& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

schedule_parse parse_schedule(const header_list& headers) {
  schedule_parse out;
  if (find_header(headers, header_scheduled_job_id)) return out;  // fired already: at once
  auto number = [&](std::string_view name, std::int64_t& into, std::int64_t min) {
    auto v = find_header(headers, name);
    if (!v) return;
    out.scheduled = true;
    if (!out.error.empty()) return;
    if (!parse_int(*v, into) || into < min)
      out.error = fmt::format("{} '{}' is not a whole number >= {}", name, *v, min);
  };
  number(header_scheduled_delay, out.spec.delay_ms, 0);
  number(header_scheduled_period, out.spec.period_ms, 0);
  number(header_scheduled_repeat, out.spec.repeat, -1);
  if (auto c = find_header(headers, header_scheduled_cron)) {
    out.scheduled = true;
    out.spec.cron_text = std::string(*c);
    std::string why;
    if (out.error.empty()) {
      out.spec.cron = cron_expression::parse(*c, why);
      if (!out.spec.cron) out.error = fmt::format("{}: {}", header_scheduled_cron, why);
    }
  }
  if (out.error.empty() && out.spec.repeat == -1 && out.spec.period_ms == 0)
    out.error = fmt::format("{} -1 (forever) needs {} > 0", header_scheduled_repeat, header_scheduled_period);
  if (!out.error.empty()) out.scheduled = false;
  return out;
}

std::optional<schedule_state> first_state(const schedule_spec& s, std::int64_t now_ms) {
  if (s.cron) {
    auto t = s.cron->next_after(now_ms);
    if (!t) return std::nullopt;
    return schedule_state{*t, 0};
  }
  return schedule_state{now_ms + s.delay_ms, s.repeat};
}

firing_plan plan_firing(const schedule_spec& s, const schedule_state& state, std::int64_t now_ms) {
  firing_plan p;
  if (s.cron) {
    if (s.delay_ms == 0 && s.repeat == 0)
      p.deliver = true;
    else
      p.child = schedule_state{state.due_ms + s.delay_ms, s.repeat};
    if (auto t = s.cron->next_after(std::max(now_ms, state.due_ms))) p.next = schedule_state{*t, 0};
    return p;
  }
  p.deliver = true;
  if (state.left != 0)
    p.next = schedule_state{std::max(state.due_ms, now_ms) + s.period_ms, state.left > 0 ? state.left - 1 : -1};
  return p;
}

header_list fired_headers(const header_list& entry, std::string_view job_id) {
  header_list out;
  out.reserve(entry.size() + 1);
  for (const auto& h : entry)
    if (!is_schedule_header(h.first) && h.first != header_scheduled_job_id) out.push_back(h);
  out.emplace_back(std::string(header_scheduled_job_id), std::string(job_id));
  return out;
}

header_list entry_headers(const header_list& entry, const schedule_state& state, bool child) {
  header_list out;
  out.reserve(entry.size() + 1);
  for (const auto& h : entry) {
    if (h.first == header_schedule_left) continue;
    if (child && h.first == header_scheduled_cron) continue;
    out.push_back(h);
  }
  out.emplace_back(std::string(header_schedule_left), std::to_string(state.left));
  return out;
}

void schedule_table::add(std::uint64_t seq, entry e) {
  heap_.push_back({e.due_ms, seq});
  std::push_heap(heap_.begin(), heap_.end(), [](const element& a, const element& b) { return later(a, b); });
  entries_.insert_or_assign(seq, std::move(e));
}

bool schedule_table::remove(std::uint64_t seq) {
  bool removed = entries_.erase(seq) > 0;
  if (removed) rebuild_if_sparse();
  return removed;
}

const schedule_table::entry* schedule_table::find(std::uint64_t seq) const {
  auto it = entries_.find(seq);
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<std::uint64_t> schedule_table::find_job(std::string_view job_id) const {
  for (const auto& [seq, e] : entries_)
    if (e.job_id == job_id) return seq;
  return std::nullopt;
}

bool schedule_table::stale(const element& e) const {
  auto it = entries_.find(e.seq);
  return it == entries_.end() || it->second.due_ms != e.due_ms;
}

void schedule_table::drop_stale_top() {
  while (!heap_.empty() && stale(heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), [](const element& a, const element& b) { return later(a, b); });
    heap_.pop_back();
  }
}

void schedule_table::rebuild_if_sparse() {
  if (heap_.size() < 64 || heap_.size() <= 2 * entries_.size()) return;
  std::erase_if(heap_, [this](const element& e) { return stale(e); });
  std::make_heap(heap_.begin(), heap_.end(), [](const element& a, const element& b) { return later(a, b); });
}

std::optional<std::int64_t> schedule_table::earliest() {
  drop_stale_top();
  if (heap_.empty()) return std::nullopt;
  return heap_.front().due_ms;
}

std::optional<std::pair<std::uint64_t, schedule_table::entry>> schedule_table::pop_due(std::int64_t now_ms) {
  drop_stale_top();
  if (heap_.empty() || heap_.front().due_ms > now_ms) return std::nullopt;
  const auto seq = heap_.front().seq;
  std::pop_heap(heap_.begin(), heap_.end(), [](const element& a, const element& b) { return later(a, b); });
  heap_.pop_back();
  auto node = entries_.extract(seq);
  return std::make_pair(seq, std::move(node.mapped()));
}

std::vector<std::uint64_t> schedule_table::due_within(std::int64_t after_ms, std::int64_t until_ms,
                                                     std::size_t max) const {
  std::vector<std::uint64_t> out;
  std::vector<std::size_t> next{0};  // heap indices to look at; a child is never due before its parent
  while (!next.empty() && out.size() < max) {
    const auto i = next.back();
    next.pop_back();
    if (i >= heap_.size() || heap_[i].due_ms > until_ms) continue;
    if (heap_[i].due_ms > after_ms && !stale(heap_[i])) out.push_back(heap_[i].seq);
    next.push_back(2 * i + 1);
    next.push_back(2 * i + 2);
  }
  return out;
}

std::vector<std::pair<std::uint64_t, const schedule_table::entry*>> schedule_table::page(std::size_t offset,
                                                                                        std::size_t limit) const {
  std::vector<std::pair<std::uint64_t, const entry*>> all;
  all.reserve(entries_.size());
  for (const auto& [seq, e] : entries_) all.emplace_back(seq, &e);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.second->due_ms < b.second->due_ms || (a.second->due_ms == b.second->due_ms && a.first < b.first);
  });
  if (offset >= all.size()) return {};
  auto end = std::min(all.size(), offset + limit);
  return {all.begin() + static_cast<std::ptrdiff_t>(offset), all.begin() + static_cast<std::ptrdiff_t>(end)};
}

}  // namespace tandem::broker::detail
