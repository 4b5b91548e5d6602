// ACK and NACK: which delivery a frame names (find_delivery), acking it (the message leaves
// its queue and, when journaled, the journal), and NACK, a poison ack that moves it to the
// dead letter queue (nack_delivery, redelivery.cpp). Inside a transaction both are only recorded; COMMIT or ABORT applies
// them (transactions.cpp).
#include <fmt/format.h>

#include "broker/engine/headers.h"
#include "broker/engine/impl.h"

#ifdef TANDEM_UNSAFE_FAULTS  // deliberate defects for tandem-drill's self-test (tools/drill/unsafe_faults.cpp)
extern "C" bool tandem_unsafe_fault(const char* name);
#endif

namespace tandem::broker {

using namespace detail;

void engine::impl::on_ack(session& s, stomp::frame& f, bool nack) {
  auto named = find_delivery(s, f, nack);
  if (!named) return fail(s, std::move(named).error(), &f);
  auto tx = find_transaction(s, f);
  if (!tx) return fail(s, std::move(tx).error(), &f);
  auto& sub = *named.value().sub;
  // client mode acks and nacks cumulatively: every earlier unacked delivery of the
  // subscription too (STOMP 1.2 says so of both frames; ActiveMQ does it).
  auto last = sub.unacked.find(named.value().tag);
  auto first = sub.mode == ack_mode::client ? sub.unacked.begin() : last;
  auto end = std::next(last);
  if (auto* t = tx.value()) {
    for (auto it = first; it != end; ++it) {
      if (it->second.in_tx) continue;
      it->second.in_tx = true;
      t->acks.push_back(tx_ack{sub.id, it->first, nack});
    }
    add_receipt(s, f, 0);
    return;
  }
  if (nack) {
    // The RECEIPT waits until each NACKed message's new place (the DLQ, or its queue with a
    // redelivery delay) is durable, so a crash after it cannot undo the move or the delay.
    std::vector<unacked_iterator> nacked;
    for (auto it = first; it != end; ++it)
      if (!it->second.in_tx) nacked.push_back(it);
    auto slot = add_receipt(s, f, f.get("receipt") ? static_cast<std::uint32_t>(nacked.size()) : 0);
    for (auto it : nacked)
      nack_delivery(sub, it, slot ? receipt_when_durable(s.id, slot, errc::ack_not_stored, "NACK") : journal::completion{});
    return;
  }
  std::vector<journal::batch_item> removes;
  for (auto it = first; it != end;) {
    auto next = std::next(it);
    if (!it->second.in_tx) ack_delivery(sub, it, &removes);
    it = next;
  }
  if (removes.empty()) {
    add_receipt(s, f, 0);
    return;
  }
  if (!f.get("receipt")) {
    append_removes(std::move(removes), {});
    return;
  }
#ifdef TANDEM_UNSAFE_FAULTS  // defect ack_receipt_early: the ACK's RECEIPT before its remove is durable
  if (tandem_unsafe_fault("ack_receipt_early")) {
    // RECEIPT now; the removes wait for the next ACK (a "batching" that forgets what the
    // RECEIPT promised). One engine per process, on one thread: a static will do here.
    static std::vector<journal::batch_item> held;
    add_receipt(s, f, 0);
    std::swap(held, removes);
    append_removes(std::move(removes), {});
    return;
  }
#endif
  auto slot = add_receipt(s, f, 1);
  append_removes(std::move(removes), receipt_when_durable(s.id, slot, errc::ack_not_stored, "ACK"));
}

result<engine::impl::delivery_ref> engine::impl::find_delivery(session& s, const stomp::frame& f, bool nack) {
  auto unknown = [nack](std::string detail) {
    return failure{nack ? errc::unknown_nack : errc::unknown_ack, std::move(detail)};
  };
  if (auto id = f.get("id")) {
    // 1.2: the MESSAGE's ack header, our delivery tag.
    std::uint64_t tag = 0;
    if (parse_number(*id, tag)) {
      if (auto it = s.tags.find(tag); it != s.tags.end()) return delivery_ref{it->second, tag};
    }
    if (s.version == stomp::version::v1_2 || !f.get("message-id"))
      return unknown(fmt::format("No unacknowledged message has ack id '{}' on this connection.", *id));
  }
  auto message_id = f.get("message-id");
  if (!message_id) return unknown("ACK / NACK needs an id header (1.2) or a message-id header (1.0, 1.1).");
  auto search = [&](subscription& candidate) -> std::optional<delivery_ref> {
    for (auto it = candidate.unacked.rbegin(); it != candidate.unacked.rend(); ++it)
      if (it->second.message_id == *message_id) return delivery_ref{&candidate, it->first};
    return std::nullopt;
  };
  if (auto sid = f.get("subscription")) {
    auto it = s.subs.find(std::string(*sid));
    if (it != s.subs.end())
      if (auto found = search(*it->second)) return *found;
  }
  // A 1.1 ACK whose subscription header names no subscription holding the message still
  // acks it by message-id, as ActiveMQ does (RabbitMQ's suite sends made-up subscription
  // ids and passes against ActiveMQ).
  for (auto& [id, candidate] : s.subs)
    if (auto found = search(*candidate)) return *found;
  return unknown(fmt::format("No unacknowledged message '{}' on this connection.", *message_id));
}

void engine::impl::ack_delivery(subscription& sub, unacked_iterator it, std::vector<journal::batch_item>* removes) {
  delivery d = take_delivery(sub, it);
  auto& q = *d.q;
  remove_message(q, d.seq, d.persistent, d.bytes, removes);
  mark_consumer_dirty(sub);  // a prefetch slot is free
}

}  // namespace tandem::broker
