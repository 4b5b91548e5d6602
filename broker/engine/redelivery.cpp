// Redelivery: everything that happens to a message that was delivered and comes back. Two
// ways back, as in ActiveMQ:
// - NACK (ack.cpp, and a NACK at COMMIT in transactions.cpp) is a poison acknowledgement:
//   the consumer says it can never process the message, so nack_delivery moves it to the
//   dead letter queue at once (`dlqDeliveryFailureCause` says it was NACKed); it is never
//   handed back to the subscription that refused it.
// - ABORT of acks (transactions.cpp) and a consumer that goes away (UNSUBSCRIBE, a closed
//   session: subscribe.cpp) are not the consumer's verdict: return_delivery puts the message
//   back, and dead-letters it once it has been delivered max_deliveries times (7 by default:
//   ActiveMQ's maximumRedeliveries 6 plus the first delivery).
// The count a message has been delivered lives in its queue (queue::returned, state.h) while
// it waits, and in its delivery while it is out; count_delivery reads it back at the next
// delivery.
//
// Where the next features land:
// - redelivery delay / backoff: return_delivery (put it back with a not-before time instead
//   of marking the queue dirty; dispatch's next_pending skips it until then);
// - what a dead letter looks like and where it goes: dead_letter, dlq_name.
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
  if (d.persistent) {
    q.cursor = std::min(q.cursor, d.seq);
  } else {
    q.memory.emplace(d.seq, std::move(d.msg));
  }
  mark_dirty(q);
}

void engine::impl::nack_delivery(subscription& sub, unacked_iterator it) {
  delivery d = take_delivery(sub, it);
  dead_letter(*d.q, d.seq, d.persistent, d.msg, d.bytes,
              fmt::format("NACK from the consumer (subscription '{}', delivery {})", sub.id, d.deliveries));
  mark_consumer_dirty(sub);  // a prefetch slot is free
}

engine::impl::delivery_count engine::impl::count_delivery(queue& q, std::uint64_t seq, bool persistent) {
  std::uint32_t count = 1;
  if (auto r = q.returned.find(seq); r != q.returned.end()) {
    count = r->second + 1;
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
  copy->expires_ms = 0;  // a dead letter is kept until an operator looks at it
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
    store_->append(journal::change{std::move(b)}, guard([this, key = dlq.key, new_seq](std::error_code ec) {
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

}  // namespace tandem::broker
