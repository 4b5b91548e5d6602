// Queue browsing (SUBSCRIBE with `browser:true` on a /queue/), as ActiveMQ's STOMP transport
// does it: the subscriber gets a copy of every message pending on the queue at that moment,
// in queue order and filtered by its selector, then one MESSAGE with header `browser:end`
// and an empty body. Nothing is consumed, acked or counted as a delivery, and nothing that
// arrives later is sent; the subscription stays (UNSUBSCRIBE it) but receives nothing more.
//
// Differences from ActiveMQ: messages in flight to other consumers are not shown (ActiveMQ
// shows what its cursor pages in, which can include them), and a browsed MESSAGE carries no
// `ack` header whatever the ack mode (there is nothing to acknowledge). The snapshot (which
// messages) is taken on the io thread at once; bodies not in memory are read off it
// (browse_step), so a hung mount stalls only the browser.
#include <algorithm>
#include <utility>

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
                   q.deferred.contains(j->first) || q.leaving.contains(j->first))) {
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

// A browse under way: the snapshot taken at SUBSCRIBE, walked in queue order. A journaled
// body not in memory is read off the io thread (body_read.cpp) and the walk goes on when it
// is in, so a browser on a hung mount waits alone and still gets the copies in order.
struct engine::impl::browse_state {
  session_id session = 0;
  std::string sub_id;
  const subscription* sub = nullptr;  // tells it from a later SUBSCRIBE with the same id
  std::string queue_name;
  std::int64_t now_ms = 0;
  struct item {
    std::uint64_t seq;
    message_ptr memory;  // a non-persistent message; null = journaled
  };
  std::vector<item> items;
  std::size_t next = 0;
  // The read of items[next] is under way (`reading`) or has answered (`answered`: its body,
  // null when it was gone or unreadable: skipped). `stepping`: browse_step is on the stack,
  // so a store that answers inline does not recurse once per message.
  bool reading = false, answered = false, stepping = false;
  message_ptr arrived;
};

void engine::impl::browse(session& s, queue& q, subscription& sub) {
  auto st = std::make_shared<browse_state>();
  st->session = s.id;
  st->sub_id = sub.id;
  st->sub = &sub;
  st->queue_name = q.name;
  st->now_ms = wall_ms_();
  for_each_pending(q, 0, [&](std::uint64_t seq, bool persistent) {
    st->items.push_back({seq, persistent ? nullptr : q.memory.at(seq)});
    return true;
  });
  browse_step(st);
}

void engine::impl::browse_step(const std::shared_ptr<browse_state>& st) {
  session* s = find_session(st->session);
  if (!s) return;
  auto found = s->subs.find(st->sub_id);
  if (found == s->subs.end() || found->second.get() != st->sub) return;  // unsubscribed meanwhile
  subscription& sub = *found->second;
  auto qit = queues_.find(st->queue_name);
  queue* q = qit == queues_.end() ? nullptr : qit->second.get();
  st->stepping = true;
  for (; st->next < st->items.size(); ++st->next) {
    const auto& item = st->items[st->next];
    message_ptr m = item.memory;
    if (st->answered) {
      m = std::exchange(st->arrived, nullptr);
      st->answered = false;
    } else if (!m && q) {
      m = body_in_memory(*q, item.seq);
      if (!m && store_) {
        st->reading = true;
        read_body_off_thread(q, item.seq, nullptr, q->key, [this, st](queue*, body_read r) {
          st->arrived = std::move(r.body);
          st->reading = false;
          st->answered = true;
          if (!st->stepping) browse_step(st);
        });
        if (st->reading) {
          st->stepping = false;
          return;  // browse_step again when the body is in
        }
        m = std::exchange(st->arrived, nullptr);
        st->answered = false;
      }
    }
    if (!m || (m->expires_ms != 0 && m->expires_ms <= st->now_ms)) continue;
    if (!selects(sub.filter, *m, st->queue_name)) continue;
    stomp::message_view view{st->queue_name, m->message_id, sub.id, {}, m->headers, m->body};
    std::string out;
    if (stomp::encode_message(view, s->version, out)) continue;  // not writable in this version
    s->sink->send(std::move(out));
    ++s->messages_out;
  }
  st->stepping = false;
  stomp::frame end;
  end.command = "MESSAGE";
  end.add("subscription", sub.id);
  end.add("destination", st->queue_name);
  end.add("message-id", "0");
  end.add("browser", "end");
  send_frame(*s, end);
}

}  // namespace tandem::broker

namespace tandem::broker {

// The admin browse (issue 17, finding 8): the snapshot of which messages is taken at once,
// the journaled bodies not in memory are read off the io thread, all of the slice's reads at
// once (the reader takes them in turn), and the page is written when the last one is in.
bool engine::browse_json(std::string_view queue_name, std::uint64_t after, std::size_t limit,
                         std::size_t preview_bytes, std::function<void(nlohmann::json)> done) {
  auto& self = *impl_;
  auto it = self.queues_.find(queue_name);
  if (it == self.queues_.end()) return false;
  queue& q = *it->second;
  struct slice {
    std::string destination;
    std::vector<std::pair<std::uint64_t, bool>> seqs;  // (msg_seq, persistent)
    std::vector<message_ptr> bodies;                   // null: gone, unreadable
    std::size_t reads_pending = 1;                     // 1 until every read is asked
    bool more = false;
    std::int64_t now_ms = 0;
    std::size_t preview_bytes = 0;
    std::function<void(nlohmann::json)> done;
  };
  auto st = std::make_shared<slice>();
  st->destination = q.name;
  st->now_ms = self.wall_ms_();
  st->preview_bytes = preview_bytes;
  st->done = std::move(done);
  self.for_each_pending(q, after, [&](std::uint64_t seq, bool persistent) {
    if (st->seqs.size() == limit) {
      st->more = true;
      return false;
    }
    st->seqs.emplace_back(seq, persistent);
    return true;
  });
  st->bodies.resize(st->seqs.size());
  auto finish = [st, after] {
    auto messages = nlohmann::json::array();
    for (std::size_t i = 0; i < st->seqs.size(); ++i) {
      const auto& m = st->bodies[i];
      if (!m || (m->expires_ms != 0 && m->expires_ms <= st->now_ms)) continue;
      auto headers = nlohmann::json::array();
      for (const auto& [name, value] : m->headers)
        headers.push_back({stomp::printable_utf8(name), stomp::printable_utf8(value)});
      std::string_view preview(m->body.data(), std::min(m->body.size(), st->preview_bytes));
      messages.push_back({{"seq", st->seqs[i].first},
                          {"message_id", stomp::printable_utf8(m->message_id)},
                          {"persistent", st->seqs[i].second},
                          {"priority", m->priority},
                          {"expires_ms", m->expires_ms},
                          {"headers", std::move(headers)},
                          {"body_bytes", m->body.size()},
                          {"body_preview", stomp::printable_utf8(preview)},
                          {"body_truncated", preview.size() < m->body.size()}});
    }
    std::uint64_t next = st->seqs.empty() ? after : st->seqs.back().first;
    st->done({{"destination", st->destination}, {"messages", std::move(messages)}, {"more", st->more}, {"next", next}});
  };
  for (std::size_t i = 0; i < st->seqs.size(); ++i) {
    auto [seq, persistent] = st->seqs[i];
    if (!persistent) {
      st->bodies[i] = self.load(q, seq, false);
    } else if (auto m = self.body_in_memory(q, seq)) {
      st->bodies[i] = std::move(m);
    } else if (self.store_) {
      ++st->reads_pending;
      // No waiting set: a browse holds nothing back from consumers; a message consumed
      // meanwhile comes back `gone` and is left out.
      self.read_body_off_thread(&q, seq, nullptr, q.key, [st, i, finish](queue*, impl::body_read r) {
        st->bodies[i] = std::move(r.body);
        if (--st->reads_pending == 0) finish();
      });
    }
  }
  if (--st->reads_pending == 0) finish();
  return true;
}

}  // namespace tandem::broker
