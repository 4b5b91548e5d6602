// engine::recover: queues, durable subscriptions and pending messages rebuilt from the
// store's recovered index, before the listener opens. The engine reads no message here:
// pending persistent messages stay index entries (state.h) and byte counts are estimates.
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/log.h"

namespace tandem::broker {

using namespace detail;

namespace {

constexpr std::size_t max_unowned_logged = 20;  // then one line with the rest's count

// A definition journaled before owners were kept (or by an anonymous session): any login
// presenting its client-id may claim it, so the operator hears of each (a few).
void log_unowned(const journal::durable_subscription& sub, std::size_t logged_before) {
  if (logged_before >= max_unowned_logged) return;
  log::warn("engine", "durable subscription has no owner: the first login that subscribes to it claims it",
            {log::kv("client_id", sub.client_id), log::kv("subscription", sub.subscription_name),
             log::kv("topic", sub.topic)});
}

}  // namespace

void engine::impl::recover() {
  if (!store_) return;
  const auto& idx = store_->index();
  recovered_below_ = idx.next_msg_seq();
  for (const auto& d : idx.destinations()) {
    if (is_queue(d)) get_queue(d).create_journaled = true;
  }
  std::size_t unowned = 0;
  for (const auto& [key, sub] : idx.durable_subscriptions()) {
    std::optional<selector::expression> filter;
    if (!sub.selector.empty()) {
      auto parsed = selector::parse(sub.selector);
      if (parsed) {
        filter = std::move(parsed).value();
      } else {
        // Accepted when it was made, refused now (a stricter parser): keep its messages
        // but deliver nothing new rather than everything.
        log::warn("engine", "durable subscription's stored selector no longer parses: it matches nothing",
                  {log::kv("client_id", sub.client_id), log::kv("subscription", sub.subscription_name),
                   log::kv("selector", sub.selector), log::kv("error", parsed.error().message)});
        filter = selector::parse("FALSE").value();
      }
    }
    add_durable(key, sub.client_id, sub.subscription_name, sub.topic, std::move(filter)).owner_login = sub.owner_login;
    // Without users every login goes unchecked, and ownership means little: no warning.
    if (sub.owner_login.empty() && !config_.users.empty()) log_unowned(sub, unowned++);
  }
  if (unowned > max_unowned_logged)
    log::warn("engine", "more unowned durable subscriptions", {log::kv("count", unowned - max_unowned_logged)});
  for (const auto& [target, messages] : idx.targets()) {
    if (target == journal::format::scheduler_target) continue;  // recover_schedules
    queue* q = find_queue_by_key(target);
    if (!q && is_queue(target)) q = &get_queue(target);
    if (!q) {
      ++unknown_targets_;  // a key no destination or subscription owns: left alone
      continue;
    }
    // Estimated bytes: the record size, a batch's split evenly over its entries here
    // (a transaction's messages to one queue are consecutive with one location).
    for (auto it = messages.begin(); it != messages.end();) {
      auto run_end = std::next(it);
      while (run_end != messages.end() && run_end->second.where == it->second.where) ++run_end;
      q->bytes += it->second.where.size;
      for (; it != run_end; ++it) {
        if (it->second.expires_ms != 0 &&
            (q->earliest_expiry == 0 || it->second.expires_ms < q->earliest_expiry))
          q->earliest_expiry = it->second.expires_ms;
      }
    }
    q->enqueued += messages.size();
  }
  recover_schedules();
}

}  // namespace tandem::broker
