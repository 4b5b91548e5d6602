// Queue browsing (SUBSCRIBE with `browser:true` on a /queue/), as ActiveMQ's STOMP transport
// does it: the subscriber gets a copy of every message pending on the queue at that moment,
// in queue order and filtered by its selector, then one MESSAGE with header `browser:end`
// and an empty body. Nothing is consumed, acked or counted as a delivery, and nothing that
// arrives later is sent; the subscription stays (UNSUBSCRIBE it) but receives nothing more.
//
// Differences from ActiveMQ: messages in flight to other consumers are not shown (ActiveMQ
// shows what its cursor pages in, which can include them), and a browsed MESSAGE carries no
// `ack` header whatever the ack mode (there is nothing to acknowledge). The snapshot is read
// on the io thread at once, so browsing a very long queue delays other sessions meanwhile.
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broker/engine/filter.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/stomp/encoder.h"
#include "broker/stomp/utf8.h"

namespace tandem::broker {

using namespace detail;

void engine::impl::for_each_pending(queue& q, std::uint64_t after,
                                    const std::function<bool(std::uint64_t, bool)>& visit) {
  const journal::live_index::message_map* journaled = nullptr;
  if (store_ && !q.key.empty()) journaled = store_->index().messages(q.key);
  auto j = journaled ? journaled->upper_bound(after) : journal::live_index::message_map::const_iterator{};
  auto mem = q.memory.upper_bound(after);
  // Both sources are ordered by seq: merge them.
  for (;;) {
    bool have_j = journaled && j != journaled->end();
    if (have_j && (q.inflight_persistent.contains(j->first) || q.unreadable.contains(j->first) ||
                   q.deferred.contains(j->first))) {
      ++j;
      continue;
    }
    bool have_m = mem != q.memory.end();
    if (!have_j && !have_m) return;
    if (have_m && (!have_j || mem->first < j->first)) {
      if (!visit(mem->first, false)) return;
      ++mem;
    } else {
      if (!visit(j->first, true)) return;
      ++j;
    }
  }
}

void engine::impl::browse(session& s, queue& q, subscription& sub) {
  const auto now_ms = wall_ms_();
  for_each_pending(q, 0, [&](std::uint64_t seq, bool persistent) {
    auto m = load(q, seq, persistent);
    if (!m || (m->expires_ms != 0 && m->expires_ms <= now_ms)) return true;
    if (!selects(sub.filter, *m, q.name)) return true;
    stomp::message_view view{q.name, m->message_id, sub.id, {}, m->headers, m->body};
    std::string out;
    if (stomp::encode_message(view, s.version, out)) return true;  // not writable in this version
    s.sink->send(std::move(out));
    ++s.messages_out;
    return true;
  });
  stomp::frame end;
  end.command = "MESSAGE";
  end.add("subscription", sub.id);
  end.add("destination", q.name);
  end.add("message-id", "0");
  end.add("browser", "end");
  send_frame(s, end);
}

}  // namespace tandem::broker

namespace tandem::broker {

nlohmann::json engine::browse_json(std::string_view queue_name, std::uint64_t after, std::size_t limit,
                                   std::size_t preview_bytes) {
  auto& self = *impl_;
  auto it = self.queues_.find(queue_name);
  if (it == self.queues_.end()) return nullptr;
  queue& q = *it->second;
  const auto now_ms = self.wall_ms_();
  auto messages = nlohmann::json::array();
  bool more = false;
  self.for_each_pending(q, after, [&](std::uint64_t seq, bool persistent) {
    if (messages.size() == limit) {
      more = true;
      return false;
    }
    auto m = self.load(q, seq, persistent);
    if (!m || (m->expires_ms != 0 && m->expires_ms <= now_ms)) return true;
    auto headers = nlohmann::json::array();
    for (const auto& [name, value] : m->headers)
      headers.push_back({stomp::printable_utf8(name), stomp::printable_utf8(value)});
    std::string_view preview(m->body.data(), std::min(m->body.size(), preview_bytes));
    messages.push_back({{"seq", seq},
                        {"message_id", stomp::printable_utf8(m->message_id)},
                        {"persistent", persistent},
                        {"priority", m->priority},
                        {"expires_ms", m->expires_ms},
                        {"headers", std::move(headers)},
                        {"body_bytes", m->body.size()},
                        {"body_preview", stomp::printable_utf8(preview)},
                        {"body_truncated", preview.size() < m->body.size()}});
    return true;
  });
  return {{"destination", q.name}, {"messages", std::move(messages)}, {"more", more}};
}

}  // namespace tandem::broker
