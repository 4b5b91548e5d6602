// SEND, from frame to queue: the checks (read_send), flow control (check_space, park,
// retry_blocked, time_out_blocked), duplicate detection (dedup.h), then plan_send (where the
// message goes; the journal record when it must be durable first) and apply_send (the
// queues get it: at once, or when the append is durable). A SEND inside a transaction stops
// after the checks and is planned at COMMIT (transactions.cpp).
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/headers.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

namespace {

// The headers a SEND carries that describe the SEND itself, not the message: the broker
// sets or drops them (encode_message writes its own destination / message-id / ack /
// subscription / content-length).
bool is_broker_header(std::string_view name) {
  return name == "destination" || name == "receipt" || name == "transaction" || name == "content-length" ||
         name == "message-id" || name == "subscription" || name == "ack" || name == "redelivered";
}

}  // namespace

// What a SEND asks for, once its headers are checked.
struct engine::impl::send_request {
  std::string destination;
  bool to_topic = false;
  bool persistent = false;
  std::int64_t expires_ms = 0;
  std::uint8_t priority = 4;
  std::string producer_id;  // "" when absent
  std::uint64_t producer_seq = 0;
  transaction* tx = nullptr;
};

result<engine::impl::send_request> engine::impl::read_send(session& s, const stomp::frame& f) {
  send_request req;
  auto dest = checked_destination(f);
  if (!dest) return std::move(dest).error();
  req.destination = std::string(dest.value());
  req.to_topic = is_topic(req.destination);
  if (shutting_down_)
    return failure{errc::shutting_down, "The broker is stopping and accepts no more messages; reconnect."};
  req.persistent = header_or(f, "persistent") == "true";
  if (req.persistent && !store_)
    return failure{errc::persistence_unavailable, "This broker has no store: send with persistent:false."};
  if (auto e = f.get("expires"); e && !parse_number(*e, req.expires_ms))
    return failure{errc::bad_expires, fmt::format("expires '{}' is not milliseconds since the epoch.", *e)};
  int priority = 4;
  if (auto p = f.get("priority"); p && (!parse_number(*p, priority) || priority < 0 || priority > 9))
    return failure{errc::bad_priority, fmt::format("priority '{}' is not 0..9.", *p)};
  req.priority = static_cast<std::uint8_t>(priority);
  auto producer = f.get("tandem-producer-id");
  auto producer_seq = f.get("tandem-producer-seq");
  if (producer.has_value() != producer_seq.has_value() || (producer && producer->empty()) ||
      (producer_seq && !parse_number(*producer_seq, req.producer_seq)))
    return failure{errc::bad_producer_headers,
                   "tandem-producer-id and tandem-producer-seq (a decimal number) go together."};
  if (producer) req.producer_id = std::string(*producer);
  auto tx = find_transaction(s, f);
  if (!tx) return std::move(tx).error();
  req.tx = tx.value();
  return req;
}

void engine::impl::on_send(session& s, stomp::frame&& f) {
  auto req = read_send(s, f);
  if (!req) return fail(s, std::move(req).error(), &f);
  auto& r = req.value();
  if (auto space = check_space(r.destination, r.to_topic, r.persistent); !space)
    return park(s, std::move(f), std::move(space).error());
  ++s.messages_in;
  if (dedup_.seen(r.producer_id, r.producer_seq)) {
    // A resend of a message we already have (the producer failed over before it saw the
    // receipt): drop it, but receipt it so the producer moves on.
    ++duplicates_;
    add_receipt(s, f, 0);
    return;
  }
  dedup_.accepted(r.producer_id, r.producer_seq);

  message msg;
  msg.expires_ms = r.expires_ms;
  msg.priority = r.priority;
  msg.persistent = r.persistent;
  msg.producer_id = std::move(r.producer_id);
  msg.producer_seq = r.producer_seq;
  msg.headers.reserve(f.headers.size());
  for (auto& h : f.headers)
    if (!is_broker_header(h.first)) msg.headers.push_back(std::move(h));
  msg.body = std::move(f.body);

  if (r.tx) {
    // Held until COMMIT; the message id and seq are given then, so the transaction's
    // messages are consecutive and ordered at the point they become visible.
    auto bytes = message_bytes(msg);
    r.tx->bytes += bytes;
    memory_bytes_ += bytes;
    r.tx->sends.push_back(tx_send{std::move(r.destination), std::move(msg)});
    add_receipt(s, f, 0);
    return;
  }
  std::optional<journal::message_add> record;
  auto plan = plan_send(r.destination, r.to_topic, std::move(msg), record);
  if (!record) {
    apply_send(plan);
    add_receipt(s, f, 0);
    return;
  }
  auto slot = add_receipt(s, f, 1);
  appending_bytes_ += plan.bytes;
  store_->append(journal::change{std::move(*record)},
                 guard([this, sid = s.id, slot, plan = std::move(plan)](std::error_code ec) {
                   appending_bytes_ -= std::min(appending_bytes_, plan.bytes);
                   if (!ec) apply_send(plan);
                   settle_slot(sid, slot, ec, errc::message_not_stored, "message");
                 }));
}

// ---------------------------------------------------------------------------------------------
// Flow control: a SEND that finds no space is parked with every frame after it, its
// connection stops reading, and flush() retries it whenever something may have freed space.
// ---------------------------------------------------------------------------------------------

result<void> engine::impl::check_space(std::string_view destination, bool to_topic, bool persistent) {
  if (!persistent && memory_bytes_ >= config_.max_memory_bytes)
    return failure{errc::memory_full,
                   fmt::format("broker memory full ({} of {} bytes)", memory_bytes_, config_.max_memory_bytes)};
  if (persistent && store_ && store_bytes() >= config_.max_store_bytes)
    return failure{errc::store_full, fmt::format("store full ({} of {} bytes)", store_bytes(), config_.max_store_bytes)};
  auto full = [&](const queue& q) { return q.bytes >= config_.max_destination_bytes; };
  if (!to_topic) {
    auto it = queues_.find(destination);
    if (it != queues_.end() && full(*it->second))
      return failure{errc::destination_full, fmt::format("destination {} full ({} of {} bytes)", destination,
                                                         it->second->bytes, config_.max_destination_bytes)};
    return boost::outcome_v2::success();
  }
  auto t = topics_.find(destination);
  if (t == topics_.end()) return boost::outcome_v2::success();
  for (auto& [key, q] : t->second.durable)
    if (full(*q))
      return failure{errc::destination_full,
                     fmt::format("durable subscription '{}' of {} full ({} of {} bytes)", q->subscription_name,
                                 destination, q->bytes, config_.max_destination_bytes)};
  for (auto* sub : t->second.subscribers)
    if (full(*sub->q))
      return failure{errc::destination_full, fmt::format("subscriber '{}' of {} full ({} of {} bytes)", sub->id,
                                                         destination, sub->q->bytes, config_.max_destination_bytes)};
  return boost::outcome_v2::success();
}

void engine::impl::park(session& s, stomp::frame&& f, failure why) {
  s.parked.push_back(std::move(f));
  s.blocked_since = std::chrono::steady_clock::now();
  s.blocked_on = std::move(why);
  blocked_.insert(s.id);
  s.sink->pause_reading();
}

void engine::impl::retry_blocked() {
  std::vector<session_id> ids(blocked_.begin(), blocked_.end());
  for (auto id : ids) {
    auto* s = find_session(id);
    if (!s) {
      blocked_.erase(id);
      continue;
    }
    while (!s->parked.empty() && s->state != session_state::closing) {
      auto& front = s->parked.front();
      if (front.command == "SEND") {
        auto dest = front.get("destination");
        bool persistent = header_or(front, "persistent") == "true";
        if (dest && !check_space(*dest, is_topic(*dest), persistent)) break;
      }
      stomp::frame f = std::move(front);
      s->parked.pop_front();
      handle_frame(*s, std::move(f));
    }
    if (s->parked.empty() || s->state == session_state::closing) {
      s->parked.clear();
      blocked_.erase(id);
      if (s->state != session_state::closing) s->sink->resume_reading();
    }
  }
}

// Producers blocked longer than send_timeout get their ERROR.
void engine::impl::time_out_blocked(std::chrono::steady_clock::time_point now) {
  std::vector<session_id> timed_out;
  for (auto id : blocked_) {
    auto* s = find_session(id);
    if (s && !s->parked.empty() && now - s->blocked_since >= config_.send_timeout) timed_out.push_back(id);
  }
  for (auto id : timed_out) {
    auto* s = find_session(id);
    stomp::frame cause = std::move(s->parked.front());
    s->parked.clear();
    blocked_.erase(id);
    ++send_timeouts_;
    fail(*s,
         {errc::send_timeout, fmt::format("The SEND waited {} ms for space and was not accepted: {}.",
                                          config_.send_timeout.count(), s->blocked_on.detail)},
         &cause);
  }
}

// ---------------------------------------------------------------------------------------------
// Where an accepted message goes
// ---------------------------------------------------------------------------------------------

planned_send engine::impl::plan_send(std::string_view destination, bool to_topic, message&& msg,
                                     std::optional<journal::message_add>& journal_add) {
  planned_send p;
  p.to_topic = to_topic;
  p.destination = std::string(destination);
  p.seq = allocate_seq();
  msg.msg_seq = p.seq;
  msg.message_id = fmt::format("ID:{}-{}-{}", config_.broker_name, run_token_, p.seq);
  p.bytes = message_bytes(msg);
  p.expires_ms = msg.expires_ms;
  auto mark_journaled = [&] {
    p.journaled = true;
    p.producer_id = msg.producer_id;
    p.producer_seq = msg.producer_seq;
  };
  if (!to_topic) {
    auto& q = get_queue(destination);
    if (msg.persistent && store_) {
      ensure_destination_journaled(q);
      p.targets = {q.key};
      mark_journaled();
      q.bytes += p.bytes;
      ++q.pending_appends;
      journal_add.emplace(journal::message_add{std::move(msg), p.targets});
    } else {
      p.copy = std::make_shared<const message>(std::move(msg));
    }
    return p;
  }
  auto& t = get_topic(destination);
  if (msg.persistent && store_ && !t.durable.empty()) {
    for (auto& [key, q] : t.durable) {
      p.targets.push_back(key);
      q->bytes += p.bytes;
      ++q->pending_appends;
    }
    mark_journaled();
    if (!t.subscribers.empty()) p.copy = std::make_shared<const message>(msg);
    journal_add.emplace(journal::message_add{std::move(msg), p.targets});
  } else {
    // ActiveMQ keeps a topic message only for subscribers that exist: with no durable
    // subscription nothing needs it after a restart, so nothing is journaled.
    p.copy = std::make_shared<const message>(std::move(msg));
  }
  return p;
}

void engine::impl::apply_send(const planned_send& p) {
  if (p.journaled) dedup_.now_durable(p.producer_id, p.producer_seq);
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

}  // namespace tandem::broker
