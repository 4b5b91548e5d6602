// BEGIN, COMMIT, ABORT. A transaction holds its SENDs (in memory, unplanned; a scheduled
// SEND's entry is written in the COMMIT's batch too, scheduled.cpp) and its ACKs /
// NACKs (the deliveries stay unacked, marked in_tx) until COMMIT writes them as ONE journal
// record (a batch) and applies them once it is durable, or ABORT (or the session's end)
// drops the sends and returns what was acked through return_delivery.
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/headers.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

namespace {

failure not_begun(std::string_view name) {
  return {errc::unknown_transaction, fmt::format("Transaction '{}' was not begun on this connection.", name)};
}

}  // namespace

result<transaction*> engine::impl::find_transaction(session& s, const stomp::frame& f) {
  auto t = f.get("transaction");
  if (!t) return nullptr;
  auto it = s.txs.find(std::string(*t));
  if (it == s.txs.end()) return not_begun(*t);
  return &it->second;
}

// Removes the transaction COMMIT or ABORT names from the session.
result<transaction> engine::impl::take_transaction(session& s, const stomp::frame& f) {
  auto t = f.get("transaction");
  if (!t) return failure{errc::unknown_transaction, fmt::format("{} needs a transaction header.", f.command)};
  auto it = s.txs.find(std::string(*t));
  if (it == s.txs.end()) return not_begun(*t);
  auto tx = std::move(it->second);
  s.txs.erase(it);
  return tx;
}

void engine::impl::on_begin(session& s, stomp::frame& f) {
  auto t = f.get("transaction");
  if (!t || t->empty()) return fail(s, {errc::missing_transaction, "BEGIN needs a transaction header."}, &f);
  if (s.txs.contains(std::string(*t)))
    return fail(s, {errc::transaction_already_begun, fmt::format("Transaction '{}' is already open.", *t)}, &f);
  if (s.txs.size() >= config_.max_transactions_per_session)
    return fail(s,
                {errc::too_many_transactions,
                 fmt::format("A connection may hold {} open transactions.", config_.max_transactions_per_session)},
                &f);
  s.txs.emplace(std::string(*t), transaction{});
  add_receipt(s, f, 0);
}

void engine::impl::on_abort(session& s, stomp::frame& f) {
  auto tx = take_transaction(s, f);
  if (!tx) return fail(s, std::move(tx).error(), &f);
  rollback(s, tx.value());
  add_receipt(s, f, 0);
}

namespace {

// Calls fn(subscription, its unacked entry, the tx_ack) for each ACK / NACK of `tx` whose
// delivery is still unacked (a subscription closed meanwhile has returned its deliveries).
template <class Fn>
void for_each_tx_ack(session& s, const transaction& tx, Fn fn) {
  for (const auto& a : tx.acks) {
    auto sit = s.subs.find(a.subscription_id);
    if (sit == s.subs.end()) continue;
    auto& sub = *sit->second;
    auto dit = sub.unacked.find(a.tag);
    if (dit == sub.unacked.end()) continue;
    fn(sub, dit, a);
  }
}

}  // namespace

void engine::impl::rollback(session& s, transaction& tx) {
  memory_bytes_ -= std::min(memory_bytes_, tx.bytes);
  // Messages acked (or nacked) inside the transaction are redelivered, flagged redelivered.
  for_each_tx_ack(s, tx, [&](subscription& sub, unacked_iterator it, const tx_ack&) { return_delivery(sub, it); });
}

void engine::impl::on_commit(session& s, stomp::frame& f) {
  auto taken = take_transaction(s, f);
  if (!taken) return fail(s, std::move(taken).error(), &f);
  auto& tx = taken.value();
  if (shutting_down_ && !tx.sends.empty()) {
    rollback(s, tx);
    return fail(s, {errc::shutting_down, "The broker is stopping; the transaction was rolled back."}, &f);
  }
  memory_bytes_ -= std::min(memory_bytes_, tx.bytes);

  journal::batch batch;
  std::vector<planned_send> plans;
  std::vector<planned_schedule> schedules;  // scheduled SENDs (scheduled.cpp)
  plans.reserve(tx.sends.size());
  bool duplicates_need_fence = tx.dropped_journaled_resend;  // a dropped resend the store holds, or will
  for (auto& send : tx.sends) {
    // Producer seqs are recorded at COMMIT, never at SEND: an aborted transaction leaves
    // nothing behind (issue 12, bug 2a). A seq stored or in flight by now (a resend, or
    // the same seq twice in this transaction) is dropped. An original still in flight
    // completes before this batch (the journal completes in append order), so the COMMIT's
    // RECEIPT never precedes it; if that original fails, the journal has failed too and so
    // does this COMMIT (a refused oversized original is the one exception: its resend
    // inside a transaction is then dropped; send such a message outside a transaction).
    if (const auto seen = dedup_.check(send.msg.producer_id, send.msg.producer_seq); seen != dedup::status::fresh) {
      ++duplicates_;
      duplicates_need_fence = duplicates_need_fence || seen != dedup::status::stored;
      continue;
    }
    if (send.scheduled) {
      if (auto planned = plan_tx_schedule(send, batch.items)) schedules.push_back(std::move(*planned));
      continue;
    }
    std::optional<journal::message_add> record;
    plans.push_back(plan_send(send.destination, is_topic(send.destination), std::move(send.msg), record));
    if (record) batch.items.emplace_back(std::move(*record));
  }
  // A NACK's move (dead letter or delayed redelivery) is its own journal append; the
  // COMMIT's RECEIPT waits for each of them as well as for the batch.
  std::vector<std::pair<subscription*, std::uint64_t>> nacks;
  for_each_tx_ack(s, tx, [&](subscription& sub, unacked_iterator it, const tx_ack& a) {
    if (a.nack)
      nacks.emplace_back(&sub, a.tag);
    else
      ack_delivery(sub, it, &batch.items);
  });
  const bool wants_receipt = f.get("receipt").has_value();
  // With no batch of its own, a COMMIT of resends is answered like a lone resend
  // (duplicate_receipt.cpp): after a store barrier, which also waits for an original still
  // in flight. With a batch, the batch's append is that barrier.
  const bool barrier = batch.items.empty() && duplicates_need_fence && wants_receipt && store_ != nullptr;
  const auto waiting = static_cast<std::uint32_t>((batch.items.empty() ? 0 : 1) + (barrier ? 1 : 0) +
                                                  (wants_receipt ? nacks.size() : 0));
  auto slot = add_receipt(s, f, waiting);
  for (auto [sub, tag] : nacks) {
    auto it = sub->unacked.find(tag);
    if (it == sub->unacked.end()) {  // also ACKed in this transaction: the ACK won
      if (wants_receipt) complete_slot(s.id, slot);
      continue;
    }
    nack_delivery(*sub, it, wants_receipt ? receipt_when_durable(s.id, slot, errc::commit_not_stored, "COMMIT")
                                          : journal::completion{});
  }
  if (batch.items.empty()) {
    for (const auto& p : plans) apply_send(p);
    if (barrier) store_->fence_barrier(receipt_when_fenced(s.id, slot));
    return;
  }
  std::uint64_t bytes = 0;
  for (const auto& p : plans) bytes += p.journaled ? p.bytes : 0;
  appending_bytes_ += bytes;
  journal::change rec = batch.items.size() == 1 && std::holds_alternative<journal::message_add>(batch.items[0])
                            ? journal::change{std::get<journal::message_add>(std::move(batch.items[0]))}
                            : journal::change{std::move(batch)};
  store_->append(std::move(rec), guard([this, sid = s.id, slot, plans = std::move(plans), bytes,
                                        schedules = std::move(schedules)](std::error_code ec) mutable {
                   appending_bytes_ -= std::min(appending_bytes_, bytes);
                   for (const auto& p : plans) {
                     if (!ec)
                       apply_send(p);
                     else
                       unplan_send(p);
                   }
                   for (auto& sc : schedules) {
                     dedup_.end_append(sc.producer_id, sc.producer_seq);
                     if (!ec) schedules_.add(sc.seq, std::move(sc.e));
                   }
                   if (!ec && !schedules.empty()) schedule_changed();
                   settle_slot(sid, slot, ec, errc::commit_not_stored, "COMMIT");
                 }));
}

}  // namespace tandem::broker
