// The core: queues and topics, dispatch (which message next, to which consumer), delivery of
// a MESSAGE, and removal of a message from its queue (and the journal). The data model and
// its memory budget are described in broker/engine/state.h.
//
// Where the next features land: message priority and message groups change which message
// goes next (next_pending) and to whom (pick_consumer). Selectors: dispatch_selected.
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "broker/engine/destinations.h"
#include "broker/engine/filter.h"
#include "broker/engine/impl.h"
#include "broker/stomp/encoder.h"

namespace tandem::broker {

using namespace detail;

namespace detail {

std::uint64_t message_bytes(const message& m) {
  std::uint64_t n = m.body.size();
  for (const auto& [name, value] : m.headers) n += name.size() + value.size();
  return n;
}

}  // namespace detail

namespace {

void noop_completion(std::error_code, std::uint64_t) {}

// The message dispatch offers next.
struct pending_head {
  std::uint64_t seq = 0;
  std::int64_t expires_ms = 0;
  bool persistent = false;
};

}  // namespace

queue& engine::impl::get_queue(std::string_view name) {
  auto it = queues_.find(name);
  if (it != queues_.end()) return *it->second;
  auto q = std::make_unique<queue>();
  q->kind = queue_kind::queue;
  q->name = std::string(name);
  q->key = std::string(name);
  auto& ref = *q;
  queues_.emplace(std::string(name), std::move(q));
  if (advising()) advise_destination(ref.name, true);
  for (auto* sub : wildcard_queue_subs_)
    if (subscription_covers(sub->destination, ref.name)) {
      ref.consumers.push_back(sub);  // a new queue: unmatched_below is 0 already
      sub->sources.push_back(&ref);
      consumer_joined(ref, *sub);
    }
  return ref;
}

topic& engine::impl::get_topic(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    topic t;
    t.name = std::string(name);
    it = topics_.emplace(std::string(name), std::move(t)).first;
    if (has_wildcard(name)) wildcard_topics_.emplace(name);
    if (advising()) advise_destination(name, true);
  }
  return it->second;
}

queue* engine::impl::find_queue_by_key(std::string_view key) {
  if (auto it = durables_.find(key); it != durables_.end()) return it->second.get();
  if (auto it = queues_.find(key); it != queues_.end()) return it->second.get();
  return nullptr;
}

void engine::impl::mark_dirty(queue& q) {
  if (q.dirty) return;
  q.dirty = true;
  dirty_.push_back(&q);
}

void engine::impl::mark_consumer_dirty(subscription& sub) {
  mark_dirty(*sub.q);
  for (auto* q : sub.sources) mark_dirty(*q);
}

void engine::impl::unmark_dirty(queue& q) {
  if (!q.dirty) return;
  q.dirty = false;
  dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), &q), dirty_.end());
}

void engine::impl::flush() {
  if (in_flush_) return;
  in_flush_ = true;
  for (;;) {
    while (!dirty_.empty()) {
      queue* q = dirty_.back();
      dirty_.pop_back();
      q->dirty = false;
      dispatch(*q);
    }
    if (!blocked_.empty()) retry_blocked();
    if (dirty_.empty()) break;
  }
  in_flush_ = false;
  // An ACK, an expiry or a dispatch may have freed messages: connections waiting on the
  // budget read again.
  budget_.wake_if_room();
}

std::uint64_t engine::impl::allocate_seq() { return store_ ? store_->allocate_msg_seq() : next_seq_++; }

std::uint64_t engine::impl::store_bytes() const {
  return store_ ? store_->index().live_bytes() + appending_bytes_ : 0;
}

std::uint64_t engine::impl::pending_count(const queue& q) const {
  std::uint64_t n = q.memory.size() + q.deferred_memory.size();
  if (store_ && !q.key.empty()) {
    if (const auto* m = store_->index().messages(q.key))
      n += m->size() - std::min(m->size(), q.inflight_persistent.size() + q.unreadable.size());
  }
  return n;
}

void engine::impl::ensure_destination_journaled(queue& q) {
  if (!store_ || q.create_journaled || q.kind != queue_kind::queue) return;
  q.create_journaled = true;
  if (store_->index().destinations().contains(q.key)) return;
  // So the queue is recovered (and listed) after a restart even when it is empty then.
  store_->append(journal::change{journal::destination_create{q.key}}, noop_completion);
}

void engine::impl::note_added(queue& q, std::uint64_t seq, std::int64_t expires_ms) {
  q.cursor = std::min(q.cursor, seq);
  q.unmatched_below = std::min(q.unmatched_below, seq);
  if (expires_ms != 0 && (q.earliest_expiry == 0 || expires_ms < q.earliest_expiry)) q.earliest_expiry = expires_ms;
  ++q.enqueued;
  mark_dirty(q);
}

bool engine::impl::consumer_ready(subscription& sub) {
  auto& s = *sub.owner;
  if (s.state != session_state::connected || s.backlogged) return false;
  if (s.sink->queued_bytes() > config_.max_session_backlog_bytes) {
    // A slow consumer: nothing more until the connection says the backlog drained.
    s.backlogged = true;
    return false;
  }
  return sub.mode == ack_mode::auto_ack || sub.unacked.size() < sub.prefetch;
}

subscription* engine::impl::pick_consumer(queue& q) {
  if (q.ranked) return pick_ranked(q, nullptr, 0);  // exclusive or prioritized consumers
  auto n = q.consumers.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto at = (q.next_consumer + i) % n;
    if (consumer_ready(*q.consumers[at])) return q.consumers[at];
  }
  return nullptr;
}

subscription* engine::impl::pick_consumer(queue& q, const message* m, std::uint32_t redeliveries) {
  if (q.ranked) return pick_ranked(q, m, redeliveries);
  const auto n = q.consumers.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto* c = q.consumers[(q.next_consumer + i) % n];
    if (consumer_ready(*c) && (!m || selects(c->filter, *m, q.name, redeliveries, {&q, c}))) return c;
  }
  return nullptr;
}

namespace {

// Put back with a delay that has not passed (redelivery.cpp), or leaving while its body is
// read off the io thread (queue::leaving); a map lookup only while the queue has such messages.
bool is_held_back(const queue& q, std::uint64_t seq) {
  return (!q.deferred.empty() && q.deferred.contains(seq)) || (!q.leaving.empty() && q.leaving.contains(seq));
}

// The lower-seq head of the queue's two sources: the journal index's entries for q.key
// (from q.cursor, skipping those in flight; the cursor moves up to it) and q.memory.
std::optional<pending_head> next_pending(queue& q, const journal::live_index::message_map* journaled) {
  pending_head head;
  head.seq = std::numeric_limits<std::uint64_t>::max();
  if (journaled) {
    auto it = journaled->lower_bound(q.cursor);
    while (it != journaled->end() &&
           (q.inflight_persistent.contains(it->first) || q.unreadable.contains(it->first) || is_held_back(q, it->first)))
      ++it;
    if (it != journaled->end()) {
      head = {it->first, it->second.expires_ms, true};
      q.cursor = it->first;
    } else if (!journaled->empty()) {
      q.cursor = journaled->rbegin()->first + 1;
    }
  }
  if (!q.memory.empty() && q.memory.begin()->first < head.seq) {
    const auto& [seq, m] = *q.memory.begin();
    return pending_head{seq, m->expires_ms, false};
  }
  if (!head.persistent) return std::nullopt;
  return head;
}

// A prioritized queue's head (state.h, priority_cursors): the first pending message of the
// highest priority that has one, the lower seq of the two sources within a priority. Each
// priority's cursor in each source moves up past entries of other priorities, in flight or
// deferred, so over a queue's life each entry is passed about once per priority; putting
// a message back (q.cursor lowered) rewinds them all to it.
std::optional<pending_head> next_prioritized(queue& q, const journal::live_index::message_map* journaled) {
  auto& pc = *q.by_priority;
  const auto rewind = q.cursor;
  for (auto& c : pc.journaled) c = std::min(c, rewind);
  for (auto& c : pc.memory) c = std::min(c, rewind);
  q.cursor = std::numeric_limits<std::uint64_t>::max();
  for (int p = 9; p >= 0; --p) {
    std::optional<pending_head> head;
    if (journaled) {
      auto& c = pc.journaled[static_cast<std::size_t>(p)];
      auto it = journaled->lower_bound(c);
      while (it != journaled->end() && (it->second.priority != p || q.inflight_persistent.contains(it->first) ||
                                        is_held_back(q, it->first)))
        ++it;
      if (it != journaled->end()) {
        c = it->first;
        head = pending_head{it->first, it->second.expires_ms, true};
      } else if (!journaled->empty()) {
        c = journaled->rbegin()->first + 1;
      }
    }
    auto& mc = pc.memory[static_cast<std::size_t>(p)];
    auto mem = q.memory.lower_bound(mc);
    while (mem != q.memory.end() && mem->second->priority != p) ++mem;
    if (mem != q.memory.end()) {
      mc = mem->first;
      if (!head || mem->first < head->seq) head = pending_head{mem->first, mem->second->expires_ms, false};
    } else if (!q.memory.empty()) {
      mc = q.memory.rbegin()->first + 1;
    }
    if (head) return head;
  }
  return std::nullopt;
}

// Expires the pending message `head` when its time has come (true: it is gone). A template
// so it can take engine::impl, a private type it cannot name.
template <class Engine>
bool expire_if_due(Engine& self, queue& q, const pending_head& head, std::int64_t now_ms) {
  if (head.expires_ms == 0 || head.expires_ms > now_ms) return false;
  message_ptr m;
  if (!head.persistent) {
    auto it = q.memory.find(head.seq);
    m = std::move(it->second);
    q.memory.erase(it);
  }
  self.expire(q, head.seq, head.persistent, std::move(m));
  return true;
}

}  // namespace

void engine::impl::dispatch(queue& q) {
  if (shutting_down_) return;
  // Selectors, or message groups with owners (consumers.cpp): the head may not be for the
  // next ready consumer.
  if (q.kind == queue_kind::queue &&
      (!q.groups.empty() ||
       std::any_of(q.consumers.begin(), q.consumers.end(), [](const subscription* c) { return c->filter.has_value(); })))
    return dispatch_selected(q);
  const auto now_ms = wall_ms_();
  if (!q.policy_resolved) policy_of(q);
  for (;;) {
    subscription* sub = pick_consumer(q);
    if (!sub) return;
    const journal::live_index::message_map* journaled = nullptr;
    if (store_ && !q.key.empty()) journaled = store_->index().messages(q.key);
    auto next = q.by_priority ? next_prioritized(q, journaled) : next_pending(q, journaled);
    if (!next) {
      if (q.memory.empty() && q.deferred_memory.empty() && q.inflight == 0 && q.pending_appends == 0 &&
          (!journaled || journaled->empty()))
        q.bytes = 0;  // see state.h: the post-recovery estimate ends here
      return;
    }
    if (expire_if_due(*this, q, *next, now_ms)) continue;
    if (!deliver(q, next->seq, next->persistent, *sub)) return;
    // Round robin: the next message starts after the consumer that got this one (advanced
    // only on a delivery, so a dispatch that finds nothing does not skip a consumer).
    auto at = std::find(q.consumers.begin(), q.consumers.end(), sub);
    if (at != q.consumers.end()) q.next_consumer = (static_cast<std::size_t>(at - q.consumers.begin()) + 1) % q.consumers.size();
    if (!q.groups.empty()) return dispatch_selected(q);  // that message pinned a group
  }
}

// A queue with a selector among its consumers. The fast path above hands the head message to
// the next ready consumer; here the head may suit no ready consumer, so the walk goes on
// down the queue: each pending message (seq order, journaled and in memory merged) goes to
// the next ready consumer, round robin, whose selector it matches, and one that no ready
// consumer matches stays where it is. So every consumer sees the messages it matches in
// queue order, and a message nobody matches waits for a consumer that does (ActiveMQ).
// Cost: a pass reads every pending message that it must skip (the body cache keeps them);
// it ends as soon as no consumer is ready. A run of messages at the head that no consumer
// at all matches (ready or not) is remembered (queue::unmatched_below), so the next pass
// does not read it again: without that, a backlog nobody selects is re-read on every ACK.
void engine::impl::dispatch_selected(queue& q) {
  const auto now_ms = wall_ms_();
  std::uint64_t from = q.unmatched_below;  // next seq to look at
  // Every message walked so far is unmatched by all consumers, or in flight (whose return
  // lowers unmatched_below again).
  bool unmatched_run = true;
  for (;;) {
    if (!pick_consumer(q)) return;
    const journal::live_index::message_map* journaled = nullptr;
    if (store_ && !q.key.empty()) journaled = store_->index().messages(q.key);
    std::optional<pending_head> next;
    if (journaled) {
      // A prioritized queue's cursor is its rewind mark, not a lower bound (state.h).
      auto it = journaled->lower_bound(q.by_priority ? from : std::max(from, q.cursor));
      while (it != journaled->end() &&
             (q.inflight_persistent.contains(it->first) || q.unreadable.contains(it->first) || is_held_back(q, it->first)))
        ++it;
      if (it != journaled->end()) next = pending_head{it->first, it->second.expires_ms, true};
    }
    if (auto it = q.memory.lower_bound(from); it != q.memory.end() && (!next || it->first < next->seq))
      next = pending_head{it->first, it->second->expires_ms, false};
    if (!next) return;
    from = next->seq + 1;
    if (expire_if_due(*this, q, *next, now_ms)) continue;
    auto m = next->persistent ? fetch(q, next->seq) : load(q, next->seq, false);
    if (!m && q.unreadable.contains(next->seq)) continue;  // set aside (unreadable.cpp)
    if (!m) return;  // being read off the io thread (fetch.cpp), or an OS error: retried later
    if (hold_if_deferred(q, next->seq, next->persistent, *m)) continue;
    std::uint32_t redeliveries = m->redeliveries;
    if (auto r = q.returned.find(next->seq); r != q.returned.end()) redeliveries = std::max(redeliveries, r->second);
    subscription* chosen = pick_for_group(q, *m, redeliveries);
    if (!chosen) {  // nobody ready wants it: it stays, the walk goes on
      ++selector_skips_;
      if (unmatched_run && !matched_by_any(q, *m, redeliveries)) q.unmatched_below = from;
      else unmatched_run = false;
      continue;
    }
    if (!deliver(q, next->seq, next->persistent, *chosen)) return;
    if (unmatched_run) q.unmatched_below = from;
    auto at = std::find(q.consumers.begin(), q.consumers.end(), chosen);
    if (at != q.consumers.end()) q.next_consumer = (static_cast<std::size_t>(at - q.consumers.begin()) + 1) % q.consumers.size();
  }
}

bool engine::impl::matched_by_any(const queue& q, const message& m, std::uint32_t redeliveries) const {
  return std::any_of(q.consumers.begin(), q.consumers.end(),
                     [&](const subscription* c) { return selects(c->filter, m, q.name, redeliveries, {&q, c}); });
}

bool engine::impl::deliver(queue& q, std::uint64_t seq, bool persistent, subscription& sub) {
  message_ptr m;
  if (persistent) {
    // Not in memory: being read off the io thread (the queue is dispatched again when it
    // is in), or unreadable (set aside, and on_fetched dispatches the queue again).
    m = fetch(q, seq);
    if (!m) return false;
    q.fetched.erase(seq);
    if (hold_if_deferred(q, seq, persistent, *m)) return true;
  } else {
    auto it = q.memory.find(seq);
    m = std::move(it->second);
    q.memory.erase(it);
  }
  auto [count, redelivered] = count_delivery(q, seq, persistent, *m);
  const bool group_first = claim_group(q, *m, sub);
  auto& s = *sub.owner;
  std::uint64_t tag = s.next_tag + 1;
  std::string ack_id;
  if (sub.mode != ack_mode::auto_ack && s.version == stomp::version::v1_2) ack_id = std::to_string(tag);
  // The MESSAGE's destination: the queue's (a temporary queue shows its owner the name it
  // used), or the topic a wildcard subscriber's message was sent to (its "destination"
  // header, set by plan_send, which is not sent as a header of its own).
  std::string_view destination = q.name;
  if (q.temp_owner == s.id && !q.temp_local.empty()) destination = q.temp_local;
  auto sent_to = std::find_if(m->headers.begin(), m->headers.end(), [](const stomp::header& h) { return h.first == "destination"; });
  std::vector<stomp::header> flagged;
  std::span<const stomp::header> headers = m->headers;
  if (redelivered || group_first || sent_to != m->headers.end()) {
    flagged.reserve(m->headers.size() + 2);
    if (redelivered) flagged.emplace_back("redelivered", "true");
    if (group_first) flagged.emplace_back("JMSXGroupFirstForConsumer", "true");
    for (auto h = m->headers.begin(); h != m->headers.end(); ++h)
      if (h != sent_to) flagged.push_back(*h);
    headers = flagged;
    if (sent_to != m->headers.end()) destination = sent_to->second;
  }
  stomp::message_view view{destination, m->message_id, sub.id, ack_id, headers, m->body};
  auto bytes = message_bytes(*m);
  std::string out;
  if (stomp::encode_message(view, s.version, out)) {
    // A header this session's version cannot carry (a value ending in CR for 1.0/1.1):
    // it could never be delivered here, so it is a dead letter, not a poison loop.
    dead_letter(q, seq, persistent, m, bytes,
                fmt::format("headers cannot be encoded for STOMP {}", stomp::version_name(s.version)));
    return true;
  }
  s.next_tag = tag;
  s.sink->send(std::move(out));
  ++s.messages_out;
  ++sub.delivered;
  if (count > 1) ++q.redelivered;
  if (sub.mode == ack_mode::auto_ack) {
    remove_message(q, seq, persistent, bytes, nullptr);
    return true;
  }
  delivery d;
  d.q = &q;
  d.seq = seq;
  if (!persistent) d.msg = m;
  d.message_id = m->message_id;
  d.bytes = bytes;
  d.deliveries = count;
  d.persistent = persistent;
  sub.unacked.emplace(tag, std::move(d));
  s.tags[tag] = &sub;
  ++q.inflight;
  if (persistent) q.inflight_persistent.insert(seq);
  return true;
}

void engine::impl::append_removes(std::vector<journal::batch_item>&& removes, journal::completion done) {
  if (!done) done = noop_completion;
  if (!store_ || removes.empty()) {
    done({}, 0);
    return;
  }
  if (removes.size() == 1 && std::holds_alternative<journal::message_remove>(removes[0])) {
    store_->append(journal::change{std::get<journal::message_remove>(std::move(removes[0]))}, std::move(done));
  } else {
    store_->append(journal::change{journal::batch{std::move(removes)}}, std::move(done));
  }
}

void engine::impl::remove_message(queue& q, std::uint64_t seq, bool persistent, std::uint64_t bytes,
                                  std::vector<journal::batch_item>* removes) {
  q.bytes -= std::min(q.bytes, bytes);
  ++q.dequeued;
  q.returned.erase(seq);
  if (persistent) {
    q.unreadable.erase(seq);
    q.fetched.erase(seq);
    journal::message_remove r{q.key, seq};
    if (removes) {
      removes->emplace_back(std::move(r));
    } else {
      std::vector<journal::batch_item> one;
      one.emplace_back(std::move(r));
      append_removes(std::move(one), {});
    }
  } else {
    memory_bytes_ -= std::min(memory_bytes_, bytes);
  }
}

message_ptr engine::impl::load(queue& q, std::uint64_t seq, bool persistent) {
  if (persistent) {
    if (!store_) return nullptr;
    auto r = store_->read(q.key, seq);
    if (!r) {
      ++read_errors_;
      set_aside_if_unreadable(q, seq, r.error());
      return nullptr;
    }
    return std::move(r).value();
  }
  auto it = q.memory.find(seq);
  return it == q.memory.end() ? nullptr : it->second;
}

}  // namespace tandem::broker
