#include "journal/index.h"

// XXH3_state_t on the stack needs the static-linking-only API.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <algorithm>

#include "journal/detail/codec.h"
#include "journal/format.h"

namespace tandem::journal {

void index::account(const location& where, bool add) {
  auto& s = segments_[where.segment];
  if (add) {
    s.live_records += 1;
    s.live_bytes += where.size;
    live_messages_ += 1;
    live_bytes_ += where.size;
  } else {
    s.live_records -= 1;
    s.live_bytes -= where.size;
    live_messages_ -= 1;
    live_bytes_ -= where.size;
    if (s.live_records == 0) segments_.erase(where.segment);
  }
}

void index::account_definition(const location& where, bool add) {
  auto& s = segments_[where.segment];
  if (add) {
    s.live_records += 1;
    s.live_bytes += where.size;
    definition_bytes_ += where.size;
  } else {
    s.live_records -= 1;
    s.live_bytes -= where.size;
    definition_bytes_ -= where.size;
    if (s.live_records == 0) segments_.erase(where.segment);
  }
}

void index::place(location_map& where_map, std::string_view key, const location& where) {
  auto it = where_map.find(key);
  if (it == where_map.end()) {
    it = where_map.emplace(std::string(key), where).first;
  } else {
    account_definition(it->second, false);
    it->second = where;
  }
  account_definition(where, true);
}

void index::forget(location_map& where_map, std::string_view key) {
  auto it = where_map.find(key);
  if (it == where_map.end()) return;
  account_definition(it->second, false);
  where_map.erase(it);
}

void index::add_one(std::string_view target, std::uint64_t msg_seq, const message_ref& ref,
                    schedule_fields schedule) {
  auto it = targets_.find(target);
  if (it == targets_.end()) it = targets_.emplace(std::string(target), message_map{}).first;
  auto [m, inserted] = it->second.try_emplace(msg_seq, ref);
  if (!inserted) {
    // Idempotent replay / compaction copy: the newest location wins.
    account(m->second.where, false);
    m->second = ref;
  }
  account(ref.where, true);
  if (target == format::scheduler_target)
    schedules_.insert_or_assign(msg_seq, schedule.deliver_at_ms, schedule.job_id);
}

void index::add(std::uint64_t msg_seq, std::span<const std::string> targets, const message_ref& ref,
                std::string_view producer_id, std::uint64_t producer_seq, schedule_fields schedule) {
  for (const auto& t : targets) add_one(t, msg_seq, ref, schedule);
  note_msg_seq(msg_seq);
  record_producer(producer_id, producer_seq);
}

void index::add(std::uint64_t msg_seq, std::span<const std::string_view> targets, const message_ref& ref,
                std::string_view producer_id, std::uint64_t producer_seq, schedule_fields schedule) {
  for (const auto& t : targets) add_one(t, msg_seq, ref, schedule);
  note_msg_seq(msg_seq);
  record_producer(producer_id, producer_seq);
}

bool index::relocate(std::string_view target, std::uint64_t msg_seq, const location& where) {
  auto it = targets_.find(target);
  if (it == targets_.end()) return false;
  auto m = it->second.find(msg_seq);
  if (m == it->second.end()) return false;
  account(m->second.where, false);
  m->second.where = where;
  account(where, true);
  return true;
}

bool index::remove(std::string_view target, std::uint64_t msg_seq) {
  auto it = targets_.find(target);
  if (it == targets_.end()) return false;
  auto m = it->second.find(msg_seq);
  if (m == it->second.end()) return false;
  account(m->second.where, false);
  it->second.erase(m);
  if (it->second.empty()) targets_.erase(it);
  if (target == format::scheduler_target) schedules_.erase(msg_seq);
  return true;
}

void index::create_destination(std::string_view name) {
  if (destinations_.find(name) == destinations_.end()) destinations_.emplace(name);
}

void index::create_destination(std::string_view name, const location& where) {
  create_destination(name);
  place(destination_where_, name, where);
}

bool index::locate_destination(std::string_view name, const location& where) {
  if (destinations_.find(name) == destinations_.end()) return false;
  place(destination_where_, name, where);
  return true;
}

void index::delete_destination(std::string_view name) {
  if (auto it = destinations_.find(name); it != destinations_.end()) destinations_.erase(it);
  forget(destination_where_, name);
  drop_target(name);
}

void index::create_subscription(const durable_subscription& s) {
  subscriptions_[subscription_target(s.client_id, s.subscription_name)] = s;
}

void index::create_subscription(const durable_subscription& s, const location& where) {
  auto key = subscription_target(s.client_id, s.subscription_name);
  subscriptions_[key] = s;
  place(subscription_where_, key, where);
}

bool index::locate_subscription(std::string_view key, const location& where) {
  if (subscriptions_.find(key) == subscriptions_.end()) return false;
  place(subscription_where_, key, where);
  return true;
}

void index::remove_subscription(std::string_view client_id, std::string_view subscription_name) {
  auto key = subscription_target(client_id, subscription_name);
  if (auto it = subscriptions_.find(key); it != subscriptions_.end()) subscriptions_.erase(it);
  forget(subscription_where_, key);
  drop_target(key);
}

void index::drop_target(std::string_view target) {
  auto it = targets_.find(target);
  if (it == targets_.end()) return;
  for (const auto& [seq, ref] : it->second) account(ref.where, false);
  targets_.erase(it);
  if (target == format::scheduler_target) schedules_.clear();
}

void index::note_msg_seq(std::uint64_t msg_seq) {
  if (msg_seq >= next_msg_seq_) next_msg_seq_ = msg_seq + 1;
}

void index::record_producer(std::string_view producer_id, std::uint64_t producer_seq) {
  if (producer_id.empty() || producer_window_ == 0) return;
  auto it = producers_.find(producer_id);  // heterogeneous: no string built per replayed add
  const bool added = it == producers_.end();
  if (added) it = producers_.emplace(std::string(producer_id), seq_window{}).first;
  touch(it);
  it->second.push(producer_seq, producer_window_);
  if (added) evict_producers();
}

void index::touch(producer_map::iterator it) {
  const std::uint64_t used = it->second.last_use();
  if (used != 0 && used == tick_) return;  // already the most recent (a producer's run of sends)
  if (used != 0) recency_.erase(used);
  it->second.set_last_use(++tick_);
  recency_.emplace(tick_, it->first);
}

void index::evict_producers() {
  if (max_producers_ == 0) return;
  while (producers_.size() > max_producers_ && !recency_.empty()) {
    auto oldest = recency_.begin();
    producers_.erase(oldest->second);
    recency_.erase(oldest);
    ++producers_evicted_;
  }
}

std::vector<const index::producer_map::value_type*> index::producers_by_recency() const {
  std::vector<const producer_map::value_type*> out;
  out.reserve(producers_.size());
  for (const auto& [tick, id] : recency_)
    if (auto it = producers_.find(id); it != producers_.end()) out.push_back(&*it);
  return out;
}

void index::load_target(std::string target, message_map entries) {
  drop_target(target);
  if (entries.empty()) return;
  // account() for each entry, with one segments_ lookup per run of entries in one segment
  // (a checkpoint's entries come in msg_seq order, so mostly in log order).
  auto seg = segments_.end();
  for (const auto& [seq, ref] : entries) {
    if (seg == segments_.end() || seg->first != ref.where.segment)
      seg = segments_.try_emplace(ref.where.segment).first;
    seg->second.live_records += 1;
    seg->second.live_bytes += ref.where.size;
    live_bytes_ += ref.where.size;
  }
  live_messages_ += entries.size();
  note_msg_seq(entries.rbegin()->first);
  targets_.emplace(std::move(target), std::move(entries));
}

void index::load_producer(std::string producer_id, std::deque<std::uint64_t> window) {
  while (window.size() > producer_window_) window.pop_front();
  auto it = producers_.find(producer_id);
  const bool added = it == producers_.end();
  if (added) it = producers_.emplace(std::move(producer_id), seq_window{}).first;
  const std::uint64_t used = it->second.last_use();
  it->second = seq_window(std::move(window));
  it->second.set_last_use(used);
  touch(it);
  if (added) evict_producers();
}

bool operator==(const index& a, const index& b) {
  return a.targets_ == b.targets_ && a.schedules_ == b.schedules_ && a.destinations_ == b.destinations_ &&
         a.subscriptions_ == b.subscriptions_ && a.destination_where_ == b.destination_where_ &&
         a.subscription_where_ == b.subscription_where_ && a.segments_ == b.segments_ &&
         a.producers_ == b.producers_ && a.next_msg_seq_ == b.next_msg_seq_ &&
         a.live_messages_ == b.live_messages_ && a.live_bytes_ == b.live_bytes_ &&
         a.definition_bytes_ == b.definition_bytes_;
}

namespace {

// Feeds encodings to XXH3 through a buffer (one update per 64 KiB, not per field).
class digester {
 public:
  digester() { XXH3_64bits_reset(&state_); }
  detail::encoder& out() {
    if (buf_.size() >= (64u << 10)) flush();
    return enc_;
  }
  std::uint64_t finish() {
    flush();
    return XXH3_64bits_digest(&state_);
  }

 private:
  void flush() {
    XXH3_64bits_update(&state_, buf_.data(), buf_.size());
    buf_.clear();
  }
  XXH3_state_t state_;
  std::vector<std::byte> buf_;
  detail::encoder enc_{buf_};
};

void put(detail::encoder& e, const location* where) {
  e.u8(where ? 1 : 0);
  if (!where) return;
  e.u64(where->segment);
  e.u32(where->offset);
  e.u32(where->size);
}

const location* find(const index::location_map& m, std::string_view key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace

std::uint64_t content_digest(const index& idx) {
  digester d;
  d.out().u64(idx.next_msg_seq());
  d.out().u64(idx.destinations().size());
  for (const auto& name : idx.destinations()) {
    d.out().str(name);
    put(d.out(), find(idx.destination_locations(), name));
  }
  d.out().u64(idx.durable_subscriptions().size());
  for (const auto& [key, s] : idx.durable_subscriptions()) {
    for (std::string_view f : {std::string_view(key), std::string_view(s.client_id), std::string_view(s.subscription_name),
                               std::string_view(s.topic), std::string_view(s.selector)})
      d.out().str(f);
    put(d.out(), find(idx.subscription_locations(), key));
  }
  // Producers live in a hash map: sorted here, so equal windows digest equally.
  std::vector<const index::producer_map::value_type*> producers;
  for (const auto& p : idx.producer_windows()) producers.push_back(&p);
  std::sort(producers.begin(), producers.end(), [](auto* a, auto* b) { return a->first < b->first; });
  d.out().u64(producers.size());
  for (const auto* p : producers) {
    d.out().str(p->first);
    d.out().u64(p->second.size());
    for (auto seq : p->second.seqs()) d.out().u64(seq);
  }
  d.out().u64(idx.targets().size());
  for (const auto& [target, messages] : idx.targets()) {
    d.out().str(target);
    d.out().u64(messages.size());
    for (const auto& [seq, ref] : messages) {
      auto& e = d.out();
      e.u64(seq);
      put(e, &ref.where);
      e.i64(ref.expires_ms);
      e.u8(ref.priority);
    }
  }
  // Only when there are some, so the digest of a store without schedules is what it was
  // before the index kept them.
  if (!idx.schedules().empty()) {
    d.out().u64(idx.schedules().size());
    for (const auto& [seq, s] : idx.schedules()) {
      d.out().u64(seq);
      d.out().i64(s.deliver_at_ms);
      d.out().str(s.job_id);
    }
  }
  return d.finish();
}

}  // namespace tandem::journal
