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
#include <fmt/format.h>

#include "broker/engine/filter.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/stomp/encoder.h"

namespace tandem::broker {

using namespace detail;

void engine::impl::browse(session& s, queue& q, subscription& sub) {
  const auto now_ms = wall_ms_();
  auto send_copy = [&](const message& m) {
    if (m.expires_ms != 0 && m.expires_ms <= now_ms) return;
    if (!selects(sub.filter, m, q.name)) return;
    stomp::message_view view{q.name, m.message_id, sub.id, {}, m.headers, m.body};
    std::string out;
    if (stomp::encode_message(view, s.version, out)) return;  // not writable in this version
    s.sink->send(std::move(out));
    ++s.messages_out;
  };
  const journal::live_index::message_map* journaled = nullptr;
  if (store_ && !q.key.empty()) journaled = store_->index().messages(q.key);
  auto j = journaled ? journaled->begin() : journal::live_index::message_map::const_iterator{};
  auto mem = q.memory.begin();
  // Both sources are ordered by seq: merge them.
  for (;;) {
    bool have_j = journaled && j != journaled->end();
    if (have_j && (q.inflight_persistent.contains(j->first) || q.unreadable.contains(j->first) ||
                   q.deferred.contains(j->first))) {
      ++j;
      continue;
    }
    bool have_m = mem != q.memory.end();
    if (!have_j && !have_m) break;
    if (have_m && (!have_j || mem->first < j->first)) {
      send_copy(*mem->second);
      ++mem;
    } else {
      if (auto m = load(q, j->first, true)) send_copy(*m);
      ++j;
    }
  }
  stomp::frame end;
  end.command = "MESSAGE";
  end.add("subscription", sub.id);
  end.add("destination", q.name);
  end.add("message-id", "0");
  end.add("browser", "end");
  send_frame(s, end);
}

}  // namespace tandem::broker
