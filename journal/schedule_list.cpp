#include "journal/schedule_list.h"

#include <algorithm>
#include <stdexcept>

namespace tandem::journal {

namespace {

template <typename Slots>
auto lower_bound_seq(Slots& slots, std::uint64_t seq) {
  return std::lower_bound(slots.begin(), slots.end(), seq, [](const auto& s, std::uint64_t v) { return s.seq < v; });
}

}  // namespace

const schedule_list::slot* schedule_list::locate(std::uint64_t seq) const {
  if (slots_.empty() || seq > slots_.back().seq) return nullptr;
  auto it = lower_bound_seq(slots_, seq);
  return it != slots_.end() && it->seq == seq ? &*it : nullptr;
}

schedule_list::slot* schedule_list::locate(std::uint64_t seq) {
  return const_cast<slot*>(std::as_const(*this).locate(seq));
}

void schedule_list::store_id(slot& s, std::string_view job_id) {
  if (s.id_offset != dead_slot && job_id.size() <= s.id_bytes) {
    // Same or shorter id (a compaction copy repeats it): in place.
    job_id.copy(ids_.data() + s.id_offset, job_id.size());
    dead_id_bytes_ += s.id_bytes - job_id.size();
  } else {
    if (s.id_offset != dead_slot) dead_id_bytes_ += s.id_bytes;
    s.id_offset = static_cast<std::uint32_t>(ids_.size());
    ids_.append(job_id);
  }
  s.id_bytes = static_cast<std::uint32_t>(job_id.size());
}

bool schedule_list::insert_or_assign(std::uint64_t seq, std::int64_t deliver_at_ms, std::string_view job_id) {
  slot* s = nullptr;
  if (slots_.empty() || seq > slots_.back().seq) {
    s = &slots_.emplace_back(slot{seq, 0, dead_slot, 0});  // the usual case: the newest msg_seq
  } else if (s = locate(seq); !s) {
    auto at = lower_bound_seq(slots_, seq);
    s = &*slots_.insert(at, slot{seq, 0, dead_slot, 0});
  }
  const bool added = s->id_offset == dead_slot;
  if (added) ++live_;
  s->deliver_at_ms = deliver_at_ms;
  store_id(*s, job_id);
  compact_if_sparse();
  return added;
}

bool schedule_list::erase(std::uint64_t seq) {
  slot* s = locate(seq);
  if (!s || s->id_offset == dead_slot) return false;
  dead_id_bytes_ += s->id_bytes;
  s->id_offset = dead_slot;
  s->id_bytes = 0;
  --live_;
  compact_if_sparse();
  return true;
}

void schedule_list::clear() {
  slots_.clear();
  ids_.clear();
  live_ = 0;
  dead_id_bytes_ = 0;
}

std::optional<schedule_ref> schedule_list::find(std::uint64_t seq) const {
  const slot* s = locate(seq);
  if (!s || s->id_offset == dead_slot) return std::nullopt;
  return ref(*s);
}

schedule_ref schedule_list::at(std::uint64_t seq) const {
  auto r = find(seq);
  if (!r) throw std::out_of_range("schedule_list::at: no such msg_seq");
  return *r;
}

// Rebuilds both buffers once the dead part (slots or id bytes) outweighs the live one;
// below 64 dead slots it is not worth a copy.
void schedule_list::compact_if_sparse() {
  const std::size_t dead_slots = slots_.size() - live_;
  const bool sparse_slots = dead_slots >= 64 && dead_slots > live_;
  const bool sparse_ids = dead_id_bytes_ >= 4096 && dead_id_bytes_ > ids_.size() - dead_id_bytes_;
  if (!sparse_slots && !sparse_ids) return;
  std::vector<slot> slots;
  slots.reserve(live_);
  std::string ids;
  ids.reserve(ids_.size() - dead_id_bytes_);
  for (const auto& s : slots_) {
    if (s.id_offset == dead_slot) continue;
    slots.push_back(slot{s.seq, s.deliver_at_ms, static_cast<std::uint32_t>(ids.size()), s.id_bytes});
    ids.append(ids_, s.id_offset, s.id_bytes);
  }
  slots_ = std::move(slots);
  ids_ = std::move(ids);
  dead_id_bytes_ = 0;
}

bool operator==(const schedule_list& a, const schedule_list& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace tandem::journal
