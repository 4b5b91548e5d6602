// Redelivery: everything that happens to a message that was delivered and comes back. Two
// ways back, as in ActiveMQ:
// - NACK (ack.cpp, and a NACK at COMMIT in transactions.cpp) is a poison acknowledgement:
//   the consumer says it cannot process the message now. Without a redelivery policy,
//   nack_delivery moves it to the dead letter queue at once (`dlqDeliveryFailureCause`
//   says it was NACKed). With one (a destination policy with "redelivery", policy.h), it
//   comes back after a delay as ActiveMQ's redeliveryPlugin does it: redeliver_later
//   journals { remove the delivered msg_seq, add a copy with a new msg_seq, deliver_at_ms
//   and redeliveries } as one batch (journal/format.h, message_add flags bit 2), so the
//   message is on its queue exactly once after a crash and its delay and count survive a
//   restart or failover. The copy is offered again when its time comes, ordered by its new
//   msg_seq: behind what was pending when it was NACKed (ActiveMQ re-sends it, so it goes
//   behind what is pending when the delay ends). Messages behind it are not held up: the
//   queue's `deferred` set makes dispatch skip it (state.h), and tick releases it (100 ms
//   resolution, the server's tick). After maximum_redeliveries redeliveries the next NACK
//   dead-letters it ("NACK from the consumer ... after N redeliveries").
//   A new master learns a delay when dispatch first reads the message (hold_if_deferred):
//   the index keeps no delivery state, so recovery costs nothing for it.
// - ABORT of acks (transactions.cpp) and a consumer that goes away (UNSUBSCRIBE, a closed
//   session: subscribe.cpp) are not the consumer's verdict: return_delivery puts the message
//   back, and dead-letters it once it has been delivered max_deliveries times (7 by default:
//   ActiveMQ's maximumRedeliveries 6 plus the first delivery).
// The count a message has been delivered lives in its queue (queue::returned, state.h) while
// it waits, and in its delivery while it is out; count_delivery reads it back at the next
// delivery.
// The count also travels in the message (message::redeliveries) once it was put back with a
// delay, so it survives a restart.
//
// What a dead letter looks like and where it goes: dead_letter, dlq_name.
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

delivery engine::impl::take_delivery(subscription& sub, unacked_iterator it) {
  sub.owner->tags.erase(it->first);
  delivery d = std::move(it->second);
  sub.unacked.erase(it);
  auto& q = *d.q;
  if (q.inflight) --q.inflight;
  if (d.persistent) q.inflight_persistent.erase(d.seq);
  return d;
}

void engine::impl::return_delivery(subscription& sub, unacked_iterator it) {
  delivery d = take_delivery(sub, it);
  auto& q = *d.q;
  if (d.deliveries >= config_.max_deliveries) {
    dead_letter(q, d.seq, d.persistent, d.msg, d.bytes, fmt::format("delivered {} times", d.deliveries));
    return;
  }
  // Back in its original place (queues are ordered by seq), ahead of everything that came
  // after it; dispatch flags it redelivered.
  q.returned[d.seq] = d.deliveries;
  q.unmatched_below = std::min(q.unmatched_below, d.seq);
  q.cursor = std::min(q.cursor, d.seq);  // a prioritized queue rewinds its memory cursors too
  if (!d.persistent) q.memory.emplace(d.seq, std::move(d.msg));
  mark_dirty(q);
}

void engine::impl::nack_delivery(subscription& sub, unacked_iterator it, journal::completion done) {
  delivery d = take_delivery(sub, it);
  const auto* policy = policy_of(*d.q);
  // ActiveMQ's redeliveryCounter: deliveries before this one.
  const std::uint32_t redeliveries = d.deliveries > 0 ? d.deliveries - 1 : 0;
  if (policy && policy->redelivery && redelivery_allowed(*policy->redelivery, redeliveries)) {
    redeliver_later(std::move(d), redelivery_delay(*policy->redelivery, redeliveries), std::move(done));
  } else {
    std::string after = policy && policy->redelivery ? fmt::format(" after {} redeliveries", redeliveries) : "";
    dead_letter(*d.q, d.seq, d.persistent, d.msg, d.bytes,
                fmt::format("NACK from the consumer (subscription '{}', delivery {}){}", sub.id, d.deliveries, after),
                std::move(done));
  }
  mark_consumer_dirty(sub);  // a prefetch slot is free
}

const destination_policy* engine::impl::policy_of(queue& q) {
  if (!q.policy_resolved) {
    q.policy = policies_.empty() ? nullptr : policies_.find(q.name);
    q.policy_resolved = true;
    if (q.policy && q.policy->prioritized_messages) q.by_priority = std::make_unique<priority_cursors>();
  }
  return q.policy;
}

void engine::impl::redeliver_later(delivery&& d, std::chrono::milliseconds delay, journal::completion done) {
  auto& q = *d.q;
  if (!done) done = [](std::error_code, std::uint64_t) {};
  auto m = d.msg;
  if (!m && d.persistent && store_) {
    m = body_in_memory(q, d.seq);
    if (!m) {
      // Read off the io thread (body_read.cpp); meanwhile the message is held back from
      // dispatch (queue::leaving). Purged meanwhile: nothing to redeliver.
      const std::uint64_t seq = d.seq;
      const std::uint32_t deliveries = d.deliveries;
      auto then = [this, seq, deliveries, delay, done](queue* at, body_read r) {
        if (r.gone) {
          done({}, 0);
          return;
        }
        delivery back;
        back.q = at;
        back.seq = seq;
        back.deliveries = deliveries;
        back.persistent = true;
        redeliver_with_body(std::move(back), std::move(r.body), delay, done);
        mark_dirty(*at);
        flush();
      };
      if (!read_body_off_thread(&q, seq, &queue::leaving, q.key, std::move(then))) done({}, 0);  // expiring
      return;
    }
  }
  redeliver_with_body(std::move(d), std::move(m), delay, std::move(done));
}

void engine::impl::redeliver_with_body(delivery&& d, message_ptr m, std::chrono::milliseconds delay,
                                       journal::completion done) {
  auto& q = *d.q;
  if (!m) {
    // Unreadable now (the store failed: mastership is about to go). Put it back as it is;
    // it is offered again in its place, without the delay.
    q.returned[d.seq] = d.deliveries;
    if (d.persistent) q.cursor = std::min(q.cursor, d.seq);
    mark_dirty(q);
    done({}, 0);
    return;
  }
  auto copy = std::make_shared<message>(*m);
  copy->msg_seq = allocate_seq();
  copy->deliver_at_ms = wall_ms_() + delay.count();
  copy->redeliveries = d.deliveries;
  q.returned.erase(d.seq);
  defer(q, copy->msg_seq, copy->deliver_at_ms);
  if (d.persistent && store_ && !q.key.empty()) {
    ++q.pending_appends;
    const auto new_seq = copy->msg_seq;
    journal::batch b;
    b.items.emplace_back(journal::message_remove{q.key, d.seq});
    b.items.emplace_back(journal::message_add{*copy, {q.key}});
    // One record: after a crash the message is on the queue exactly once, either as it was
    // delivered (offered again at once) or as the delayed copy.
    store_->append(journal::change{std::move(b)}, guard([this, key = q.key, new_seq, done](std::error_code ec) {
                     done(ec, 0);
                     auto* dq = find_queue_by_key(key);
                     if (!dq) return;
                     if (dq->pending_appends) --dq->pending_appends;
                     if (ec) return;
                     dq->cursor = std::min(dq->cursor, new_seq);
                     dq->unmatched_below = std::min(dq->unmatched_below, new_seq);
                     mark_dirty(*dq);
                   }));
  } else {
    q.deferred_memory.emplace(copy->msg_seq, std::move(copy));
    done({}, 0);
  }
}

void engine::impl::defer(queue& q, std::uint64_t seq, std::int64_t due_ms) {
  q.deferred[seq] = due_ms;
  if (q.next_due == 0 || due_ms < q.next_due) q.next_due = due_ms;
}

bool engine::impl::hold_if_deferred(queue& q, std::uint64_t seq, bool persistent, const message& m) {
  // Only a recovered message can carry a delay the engine does not know: every other one
  // was deferred by redeliver_later before it became visible.
  if (!persistent || seq >= recovered_below_ || m.deliver_at_ms <= wall_ms_()) return false;
  defer(q, seq, m.deliver_at_ms);
  return true;
}

void engine::impl::release_deferred(queue& q, std::int64_t now_ms) {
  if (q.next_due == 0 || q.next_due > now_ms) return;
  std::int64_t next = 0;
  for (auto it = q.deferred.begin(); it != q.deferred.end();) {
    if (it->second > now_ms) {
      if (next == 0 || it->second < next) next = it->second;
      ++it;
      continue;
    }
    const auto seq = it->first;
    it = q.deferred.erase(it);
    if (auto mem = q.deferred_memory.find(seq); mem != q.deferred_memory.end()) {
      q.memory.emplace(seq, std::move(mem->second));
      q.deferred_memory.erase(mem);
    }
    q.cursor = std::min(q.cursor, seq);
    q.unmatched_below = std::min(q.unmatched_below, seq);  // a selector walk may have passed it
  }
  q.next_due = next;
  mark_dirty(q);
}

engine::impl::delivery_count engine::impl::count_delivery(queue& q, std::uint64_t seq, bool persistent,
                                                          const message& m) {
  std::uint32_t count = m.redeliveries + 1;
  if (auto r = q.returned.find(seq); r != q.returned.end()) {
    count = std::max(count, r->second + 1);
    q.returned.erase(r);
  }
  // After recover() a journaled message may have been delivered before the crash (the
  // journal does not record deliveries): flagged, but not counted against max_deliveries.
  return {count, count > 1 || (persistent && seq < recovered_below_)};
}

std::string engine::impl::dlq_name(const queue& q) const {
  if (config_.dead_letter_strategy == "shared") return "/queue/ActiveMQ.DLQ";
  std::string_view base = q.name;
  if (base.starts_with("/queue/") || base.starts_with("/topic/")) base.remove_prefix(7);
  return fmt::format("/queue/DLQ.{}", base);
}

void engine::impl::dead_letter(queue& q, std::uint64_t seq, bool persistent, message_ptr m, std::uint64_t bytes,
                               std::string_view reason, journal::completion done) {
  if (!done) done = [](std::error_code, std::uint64_t) {};
  if (!m && persistent && store_) {
    m = body_in_memory(q, seq);
    if (!m) {
      // Read off the io thread (body_read.cpp); meanwhile the message is held back from
      // dispatch (queue::leaving). Purged meanwhile (or gone with a failover): nothing is
      // written, no second removal and no copy of a message that is no longer there.
      auto then = [this, seq, bytes, reason = std::string(reason), done](queue* at, body_read r) {
        if (r.gone) {
          done({}, 0);
          return;
        }
        dead_letter_with_body(*at, seq, true, std::move(r.body), bytes, reason, done);
        mark_dirty(*at);
        flush();
      };
      if (!read_body_off_thread(&q, seq, &queue::leaving, q.key, std::move(then))) done({}, 0);  // expiring
      return;
    }
  }
  if (!m && !persistent) m = load(q, seq, false);
  dead_letter_with_body(q, seq, persistent, std::move(m), bytes, reason, std::move(done));
}

void engine::impl::dead_letter_with_body(queue& q, std::uint64_t seq, bool persistent, message_ptr m,
                                         std::uint64_t bytes, std::string_view reason, journal::completion done) {
  q.returned.erase(seq);
  q.bytes -= std::min(q.bytes, bytes);
  ++q.dead_lettered;
  auto drop = [&] {
    if (persistent) {
      std::vector<journal::batch_item> one;
      one.emplace_back(journal::message_remove{q.key, seq});
      append_removes(std::move(one), done);
    } else {
      memory_bytes_ -= std::min(memory_bytes_, bytes);
      done({}, 0);
    }
  };
  bool is_dlq = q.kind == queue_kind::queue && (q.name.starts_with("/queue/DLQ.") || q.name == "/queue/ActiveMQ.DLQ");
  if (is_dlq || !m) {
    // A dead letter that fails again is dropped, as ActiveMQ does not dead-letter its DLQ.
    drop();
    return;
  }
  if (advising()) advise_message("MessageDLQd", q, m.get(), reason);
  auto& dlq = get_queue(dlq_name(q));
  auto copy = std::make_shared<message>(*m);
  copy->msg_seq = allocate_seq();
  copy->expires_ms = 0;  // a dead letter is kept until an operator looks at it
  copy->deliver_at_ms = 0;
  copy->redeliveries = 0;
  std::string original = q.temp_local.empty() ? q.name : q.temp_local;
  for (const auto& [name, value] : copy->headers)
    if (name == "destination") original = value;  // a wildcard subscriber's topic message
  std::erase_if(copy->headers, [](const stomp::header& h) {
    return h.first == "expires" || h.first == "original-destination" || h.first == "dlqDeliveryFailureCause" ||
           h.first == "destination";
  });
  copy->headers.emplace_back("original-destination", std::move(original));
  copy->headers.emplace_back("dlqDeliveryFailureCause", std::string(reason));
  auto new_bytes = message_bytes(*copy);
  dlq.bytes += new_bytes;
  if (persistent && store_) {
    ensure_destination_journaled(dlq);
    ++dlq.pending_appends;
    auto new_seq = copy->msg_seq;
    journal::batch b;
    b.items.emplace_back(journal::message_remove{q.key, seq});
    b.items.emplace_back(journal::message_add{*copy, {dlq.key}});
    // One record: after a crash the message is on exactly one of the two queues.
    store_->append(journal::change{std::move(b)}, guard([this, key = dlq.key, new_seq, done](std::error_code ec) {
                     done(ec, 0);
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
    done({}, 0);
  }
}

}  // namespace tandem::broker
