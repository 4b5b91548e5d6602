// Queues, dispatch, acks, redelivery, dead letters and expiry (the data model is described
// in broker/engine/state.h).
#include <algorithm>
#include <limits>

#include <fmt/format.h>

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

bool dedup_window::contains(const std::string& producer, std::uint64_t seq) const {
  auto it = windows_.find(producer);
  return it != windows_.end() && it->second.seen.contains(seq);
}

void dedup_window::record(const std::string& producer, std::uint64_t seq) {
  if (window_ == 0) return;
  auto& w = windows_[producer];
  if (!w.seen.insert(seq).second) return;
  w.order.push_back(seq);
  while (w.order.size() > window_) {
    w.seen.erase(w.order.front());
    w.order.pop_front();
  }
}

}  // namespace detail

namespace {

void noop_completion(std::error_code, std::uint64_t) {}

}  // namespace

journal::completion engine::impl::guard(std::function<void(std::error_code)> f) {
  return [this, life = std::weak_ptr<int>(life_), f = std::move(f)](std::error_code ec, std::uint64_t) {
    if (!life.lock()) return;  // the engine is gone; the store outlived it
    f(ec);
    flush();
  };
}

queue& engine::impl::get_queue(std::string_view name) {
  auto it = queues_.find(name);
  if (it != queues_.end()) return *it->second;
  auto q = std::make_unique<queue>();
  q->kind = queue_kind::queue;
  q->name = std::string(name);
  q->key = std::string(name);
  auto& ref = *q;
  queues_.emplace(std::string(name), std::move(q));
  return ref;
}

topic& engine::impl::get_topic(std::string_view name) {
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    topic t;
    t.name = std::string(name);
    it = topics_.emplace(std::string(name), std::move(t)).first;
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
}

std::uint64_t engine::impl::allocate_seq() { return store_ ? store_->allocate_msg_seq() : next_seq_++; }

std::uint64_t engine::impl::store_bytes() const {
  return store_ ? store_->index().live_bytes() + appending_bytes_ : 0;
}

std::uint64_t engine::impl::pending_count(const queue& q) const {
  std::uint64_t n = q.memory.size();
  if (store_ && !q.key.empty()) {
    if (const auto* m = store_->index().messages(q.key)) n += m->size() - std::min(m->size(), q.inflight_persistent.size());
  }
  return n;
}

std::string engine::impl::dlq_name(const queue& q) const {
  if (config_.dead_letter_strategy == "shared") return "/queue/ActiveMQ.DLQ";
  std::string_view base = q.name;
  if (base.starts_with("/queue/") || base.starts_with("/topic/")) base.remove_prefix(7);
  return fmt::format("/queue/DLQ.{}", base);
}

void engine::impl::ensure_destination_journaled(queue& q) {
  if (!store_ || q.create_journaled || q.kind != queue_kind::queue) return;
  q.create_journaled = true;
  if (store_->index().destinations().contains(q.key)) return;
  // So the queue is recovered (and listed) after a restart even when it is empty then.
  store_->append(journal::record{journal::destination_create{q.key}}, noop_completion);
}

void engine::impl::note_added(queue& q, std::uint64_t seq, std::int64_t expires_ms) {
  q.cursor = std::min(q.cursor, seq);
  if (expires_ms != 0 && (q.earliest_expiry == 0 || expires_ms < q.earliest_expiry)) q.earliest_expiry = expires_ms;
  ++q.enqueued;
  mark_dirty(q);
}

planned_send engine::impl::plan_send(std::string_view destination, bool to_topic, message&& msg,
                                     std::optional<message>& journal_add) {
  planned_send p;
  p.to_topic = to_topic;
  p.destination = std::string(destination);
  p.seq = allocate_seq();
  msg.msg_seq = p.seq;
  msg.message_id = fmt::format("ID:{}-{}-{}", config_.broker_name, run_token_, p.seq);
  p.bytes = message_bytes(msg);
  p.expires_ms = msg.expires_ms;
  if (!to_topic) {
    auto& q = get_queue(destination);
    if (msg.persistent && store_) {
      ensure_destination_journaled(q);
      msg.targets = {q.key};
      p.journaled = true;
      p.targets = msg.targets;
      q.bytes += p.bytes;
      ++q.pending_appends;
      journal_add = std::move(msg);
    } else {
      p.copy = std::make_shared<const message>(std::move(msg));
    }
    return p;
  }
  auto& t = get_topic(destination);
  if (msg.persistent && store_ && !t.durable.empty()) {
    for (auto& [key, q] : t.durable) {
      msg.targets.push_back(key);
      q->bytes += p.bytes;
      ++q->pending_appends;
    }
    p.journaled = true;
    p.targets = msg.targets;
    if (!t.subscribers.empty()) p.copy = std::make_shared<const message>(msg);
    journal_add = std::move(msg);
  } else {
    // ActiveMQ keeps a topic message only for subscribers that exist: with no durable
    // subscription nothing needs it after a restart, so nothing is journaled.
    p.copy = std::make_shared<const message>(std::move(msg));
  }
  return p;
}

void engine::impl::apply_send(const planned_send& p) {
  auto to_memory = [&](queue& q) {
    q.memory.emplace(p.seq, p.copy);
    q.bytes += p.bytes;
    memory_bytes_ += p.bytes;
    note_added(q, p.seq, p.expires_ms);
  };
  if (!p.to_topic) {
    auto& q = get_queue(p.destination);
    if (p.journaled) {
      if (q.pending_appends) --q.pending_appends;
      note_added(q, p.seq, p.expires_ms);
    } else {
      to_memory(q);
    }
    return;
  }
  auto& t = get_topic(p.destination);
  ++t.enqueued;
  if (p.journaled) {
    for (const auto& key : p.targets) {
      if (auto* q = find_queue_by_key(key)) {
        if (q->pending_appends) --q->pending_appends;
        note_added(*q, p.seq, p.expires_ms);
      }
    }
  } else {
    for (auto& [key, q] : t.durable) to_memory(*q);
  }
  if (p.copy)
    for (auto* sub : t.subscribers) to_memory(*sub->q);
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
  auto n = q.consumers.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto at = (q.next_consumer + i) % n;
    if (consumer_ready(*q.consumers[at])) return q.consumers[at];
  }
  return nullptr;
}

void engine::impl::dispatch(queue& q) {
  if (shutting_down_) return;
  const auto now_ms = wall_ms_();
  for (;;) {
    subscription* sub = pick_consumer(q);
    if (!sub) return;
    std::uint64_t pseq = std::numeric_limits<std::uint64_t>::max();
    std::int64_t pexpires = 0;
    bool have_persistent = false;
    const journal::index::message_map* journaled = nullptr;
    if (store_ && !q.key.empty()) journaled = store_->index().messages(q.key);
    if (journaled) {
      auto it = journaled->lower_bound(q.cursor);
      while (it != journaled->end() && q.inflight_persistent.contains(it->first)) ++it;
      if (it != journaled->end()) {
        pseq = it->first;
        pexpires = it->second.expires_ms;
        have_persistent = true;
        q.cursor = it->first;
      } else if (!journaled->empty()) {
        q.cursor = journaled->rbegin()->first + 1;
      }
    }
    bool from_memory = !q.memory.empty() && q.memory.begin()->first < pseq;
    if (!from_memory && !have_persistent) {
      if (q.memory.empty() && q.inflight == 0 && q.pending_appends == 0 && (!journaled || journaled->empty()))
        q.bytes = 0;  // see state.h: the post-recovery estimate ends here
      return;
    }
    if (from_memory) {
      auto it = q.memory.begin();
      if (it->second->expires_ms != 0 && it->second->expires_ms <= now_ms) {
        auto seq = it->first;
        auto m = std::move(it->second);
        q.memory.erase(it);
        expire(q, seq, false, std::move(m));
        continue;
      }
      deliver(q, it->first, false, *sub);
    } else {
      if (pexpires != 0 && pexpires <= now_ms) {
        expire(q, pseq, true, nullptr);
        continue;
      }
      if (!deliver(q, pseq, true, *sub)) return;
    }
    // Round robin: the next message starts after the consumer that got this one (advanced
    // only on a delivery, so a dispatch that finds nothing does not skip a consumer).
    auto at = std::find(q.consumers.begin(), q.consumers.end(), sub);
    if (at != q.consumers.end()) q.next_consumer = (static_cast<std::size_t>(at - q.consumers.begin()) + 1) % q.consumers.size();
  }
}

bool engine::impl::deliver(queue& q, std::uint64_t seq, bool persistent, subscription& sub) {
  message_ptr m;
  if (persistent) {
    auto r = store_->read(q.key, seq);
    if (!r) {
      // The store could not read it (EIO: mastership is about to be lost). Leave it
      // pending; the queue is retried on its next event.
      ++read_errors_;
      return false;
    }
    m = std::move(r).value();
  } else {
    auto it = q.memory.find(seq);
    m = std::move(it->second);
    q.memory.erase(it);
  }
  std::uint32_t count = 1;
  if (auto r = q.returned.find(seq); r != q.returned.end()) {
    count = r->second + 1;
    q.returned.erase(r);
  }
  bool redelivered = count > 1 || (persistent && seq < recovered_below_);
  auto& s = *sub.owner;
  std::uint64_t tag = s.next_tag + 1;
  std::string ack_id;
  if (sub.mode != ack_mode::auto_ack && s.version == stomp::version::v1_2) ack_id = std::to_string(tag);
  std::vector<stomp::header> flagged;
  std::span<const stomp::header> headers = m->headers;
  if (redelivered) {
    flagged.reserve(m->headers.size() + 1);
    flagged.emplace_back("redelivered", "true");
    flagged.insert(flagged.end(), m->headers.begin(), m->headers.end());
    headers = flagged;
  }
  stomp::message_view view{q.name, m->message_id, sub.id, ack_id, headers, m->body};
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
    store_->append(journal::record{std::get<journal::message_remove>(std::move(removes[0]))}, std::move(done));
  } else {
    store_->append(journal::record{journal::batch{std::move(removes)}}, std::move(done));
  }
}

void engine::impl::remove_message(queue& q, std::uint64_t seq, bool persistent, std::uint64_t bytes,
                                  std::vector<journal::batch_item>* removes) {
  q.bytes -= std::min(q.bytes, bytes);
  ++q.dequeued;
  q.returned.erase(seq);
  if (persistent) {
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

void engine::impl::ack_delivery(subscription& sub, std::map<std::uint64_t, delivery>::iterator it,
                                std::vector<journal::batch_item>* removes) {
  auto tag = it->first;
  delivery d = std::move(it->second);
  sub.unacked.erase(it);
  sub.owner->tags.erase(tag);
  auto& q = *d.q;
  if (q.inflight) --q.inflight;
  if (d.persistent) q.inflight_persistent.erase(d.seq);
  remove_message(q, d.seq, d.persistent, d.bytes, removes);
  mark_dirty(q);  // a prefetch slot is free
}

void engine::impl::return_delivery(delivery&& d) {
  auto& q = *d.q;
  if (q.inflight) --q.inflight;
  if (d.persistent) q.inflight_persistent.erase(d.seq);
  if (d.deliveries >= config_.max_deliveries) {
    dead_letter(q, d.seq, d.persistent, d.msg, d.bytes, fmt::format("delivered {} times", d.deliveries));
    return;
  }
  q.returned[d.seq] = d.deliveries;
  if (d.persistent) {
    q.cursor = std::min(q.cursor, d.seq);
  } else {
    q.memory.emplace(d.seq, std::move(d.msg));
  }
  mark_dirty(q);
}

message_ptr engine::impl::load(queue& q, std::uint64_t seq, bool persistent) {
  if (persistent) {
    if (!store_) return nullptr;
    auto r = store_->read(q.key, seq);
    if (!r) {
      ++read_errors_;
      return nullptr;
    }
    return std::move(r).value();
  }
  auto it = q.memory.find(seq);
  return it == q.memory.end() ? nullptr : it->second;
}

void engine::impl::dead_letter(queue& q, std::uint64_t seq, bool persistent, message_ptr m, std::uint64_t bytes,
                               std::string_view reason) {
  q.returned.erase(seq);
  q.bytes -= std::min(q.bytes, bytes);
  ++q.dead_lettered;
  if (!m) m = load(q, seq, persistent);
  auto drop = [&] {
    if (persistent) {
      std::vector<journal::batch_item> one;
      one.emplace_back(journal::message_remove{q.key, seq});
      append_removes(std::move(one), {});
    } else {
      memory_bytes_ -= std::min(memory_bytes_, bytes);
    }
  };
  bool is_dlq = q.kind == queue_kind::queue && (q.name.starts_with("/queue/DLQ.") || q.name == "/queue/ActiveMQ.DLQ");
  if (is_dlq || !m) {
    // A dead letter that fails again is dropped, as ActiveMQ does not dead-letter its DLQ.
    drop();
    return;
  }
  auto& dlq = get_queue(dlq_name(q));
  auto copy = std::make_shared<message>(*m);
  copy->msg_seq = allocate_seq();
  copy->targets.clear();
  copy->expires_ms = 0;  // a dead letter is kept until an operator looks at it
  std::erase_if(copy->headers, [](const stomp::header& h) {
    return h.first == "expires" || h.first == "original-destination" || h.first == "dlqDeliveryFailureCause";
  });
  copy->headers.emplace_back("original-destination", q.name);
  copy->headers.emplace_back("dlqDeliveryFailureCause", std::string(reason));
  auto new_bytes = message_bytes(*copy);
  dlq.bytes += new_bytes;
  if (persistent && store_) {
    ensure_destination_journaled(dlq);
    copy->targets = {dlq.key};
    ++dlq.pending_appends;
    auto new_seq = copy->msg_seq;
    journal::batch b;
    b.items.emplace_back(journal::message_remove{q.key, seq});
    b.items.emplace_back(message(*copy));
    // One record: after a crash the message is on exactly one of the two queues.
    store_->append(journal::record{std::move(b)}, guard([this, key = dlq.key, new_seq](std::error_code ec) {
                     if (ec) return;
                     if (auto* d = find_queue_by_key(key)) {
                       if (d->pending_appends) --d->pending_appends;
                       note_added(*d, new_seq, 0);
                     }
                   }));
  } else {
    memory_bytes_ -= std::min(memory_bytes_, bytes);
    memory_bytes_ += new_bytes;
    dlq.memory.emplace(copy->msg_seq, copy);
    note_added(dlq, copy->msg_seq, 0);
  }
}

void engine::impl::expire(queue& q, std::uint64_t seq, bool persistent, message_ptr m) {
  ++q.expired;
  if (!m) m = load(q, seq, persistent);
  std::uint64_t bytes = m ? message_bytes(*m) : 0;
  if (config_.expired_to_dlq) {
    dead_letter(q, seq, persistent, std::move(m), bytes, "expired");
    return;
  }
  remove_message(q, seq, persistent, bytes, nullptr);
}

void engine::impl::expire_scan(queue& q, std::int64_t now_ms) {
  if (q.earliest_expiry == 0 || q.earliest_expiry > now_ms) return;
  // A full walk of the queue: at most once a second per queue (dispatch checks expiry of
  // each message it is about to deliver anyway).
  if (q.last_expiry_scan != 0 && now_ms - q.last_expiry_scan < 1000) return;
  q.last_expiry_scan = now_ms;
  std::int64_t next = 0;
  auto later = [&](std::int64_t e) {
    if (next == 0 || e < next) next = e;
  };
  std::vector<std::uint64_t> persistent_expired, memory_expired;
  if (store_ && !q.key.empty()) {
    if (const auto* m = store_->index().messages(q.key)) {
      for (const auto& [seq, ref] : *m) {
        if (ref.expires_ms == 0 || q.inflight_persistent.contains(seq)) continue;  // a consumer has it
        if (ref.expires_ms <= now_ms) persistent_expired.push_back(seq);
        else later(ref.expires_ms);
      }
    }
  }
  for (const auto& [seq, m] : q.memory) {
    if (m->expires_ms == 0) continue;
    if (m->expires_ms <= now_ms) memory_expired.push_back(seq);
    else later(m->expires_ms);
  }
  q.earliest_expiry = next;
  for (auto seq : persistent_expired) expire(q, seq, true, nullptr);
  for (auto seq : memory_expired) {
    auto it = q.memory.find(seq);
    auto m = std::move(it->second);
    q.memory.erase(it);
    expire(q, seq, false, std::move(m));
  }
  if (!persistent_expired.empty() || !memory_expired.empty()) mark_dirty(q);
}

void engine::impl::remove_subscription(session& s, subscription& sub) {
  auto& q = *sub.q;
  q.consumers.erase(std::remove(q.consumers.begin(), q.consumers.end(), &sub), q.consumers.end());
  if (q.next_consumer >= q.consumers.size()) q.next_consumer = 0;
  for (auto& [tag, d] : sub.unacked) {
    s.tags.erase(tag);
    if (!sub.own) return_delivery(std::move(d));
  }
  sub.unacked.clear();
  if (sub.own) {
    // A non-durable topic subscription's messages die with it.
    unmark_dirty(q);
    memory_bytes_ -= std::min(memory_bytes_, q.bytes);
    auto t = topics_.find(sub.topic);
    if (t != topics_.end()) std::erase(t->second.subscribers, &sub);
  } else {
    mark_dirty(q);
  }
  std::string id = sub.id;  // the key must outlive the node it lives in
  s.subs.erase(id);
}

void engine::impl::destroy_durable(queue& q, journal::completion done) {
  unmark_dirty(q);
  for (const auto& [seq, m] : q.memory) memory_bytes_ -= std::min(memory_bytes_, message_bytes(*m));
  if (auto t = topics_.find(q.name); t != topics_.end()) t->second.durable.erase(q.key);
  if (store_) {
    journal::durable_subscription_remove rec;
    rec.client_id = q.client_id;
    rec.subscription_name = q.subscription_name;
    rec.topic = q.name;
    store_->append(journal::record{std::move(rec)}, done ? std::move(done) : journal::completion(noop_completion));
  } else if (done) {
    done({}, 0);
  }
  durables_.erase(q.key);
}

}  // namespace tandem::broker
