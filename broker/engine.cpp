// The engine's public API, sessions and the client frames. Queues and dispatch are in
// broker/engine/dispatch.cpp, admin snapshots in broker/engine/admin.cpp.
#include "broker/engine.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "broker/engine/auth.h"
#include "broker/engine/impl.h"
#include "broker/stomp/encoder.h"
#include "broker/stomp/header_values.h"

namespace tandem::broker {

using namespace detail;

namespace {

// The server header of CONNECTED: keep in step with project(VERSION) in CMakeLists.txt.
constexpr std::string_view server_version = "0.1.0";

std::string_view header_or(const stomp::frame& f, std::string_view name, std::string_view fallback = {}) {
  auto v = f.get(name);
  return v ? *v : fallback;
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

// The headers a SEND carries that describe the SEND itself, not the message: the broker
// sets or drops them (encode_message writes its own destination / message-id / ack /
// subscription / content-length).
bool is_broker_header(std::string_view name) {
  return name == "destination" || name == "receipt" || name == "transaction" || name == "content-length" ||
         name == "message-id" || name == "subscription" || name == "ack" || name == "redelivered";
}

bool is_queue(std::string_view d) { return d.starts_with("/queue/") && d.size() > 7; }
bool is_topic(std::string_view d) { return d.starts_with("/topic/") && d.size() > 7; }

}  // namespace

engine::impl::impl(const engine_config& config, journal::store* store)
    : config_(config), store_(store), dedup_(config.dedup_window) {
  wall_ms_ = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  run_token_ = fmt::format("{:x}", wall_ms_());
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

engine::engine(const engine_config& config, journal::store* store) : impl_(std::make_unique<impl>(config, store)) {}

engine::~engine() = default;

void engine::set_wall_clock(std::function<std::int64_t()> now_ms) { impl_->wall_ms_ = std::move(now_ms); }

session_id engine::open_session(session_sink& sink, const session_info& info) {
  auto s = std::make_unique<session>();
  s->id = impl_->next_session_++;
  s->sink = &sink;
  s->info = info;
  s->opened_at = std::chrono::system_clock::now();
  auto id = s->id;
  impl_->sessions_.emplace(id, std::move(s));
  ++impl_->connections_total_;
  return id;
}

void engine::on_frame(session_id id, stomp::frame&& frame) {
  auto* s = impl_->find_session(id);
  if (!s) return;
  ++s->frames_in;
  if (s->state == session_state::closing) return;  // after ERROR or DISCONNECT
  if (!s->parked.empty()) {
    // A SEND is waiting for space: everything after it waits too, in order.
    s->parked.push_back(std::move(frame));
  } else {
    impl_->handle_frame(*s, std::move(frame));
  }
  impl_->flush();
}

void engine::on_writable(session_id id) {
  auto* s = impl_->find_session(id);
  if (!s) return;
  s->backlogged = false;
  for (auto& [sid, sub] : s->subs) impl_->mark_dirty(*sub->q);
  impl_->flush();
}

void engine::close_session(session_id id) {
  auto it = impl_->sessions_.find(id);
  if (it == impl_->sessions_.end()) return;
  impl_->end_session_state(*it->second);
  impl_->release_client_id(*it->second);
  impl_->blocked_.erase(id);
  impl_->sessions_.erase(it);
  impl_->flush();
}

void engine::tick(std::chrono::steady_clock::time_point now) {
  auto now_ms = impl_->wall_ms_();
  for (auto& [name, q] : impl_->queues_) impl_->expire_scan(*q, now_ms);
  for (auto& [key, q] : impl_->durables_) impl_->expire_scan(*q, now_ms);
  for (auto& [sid, s] : impl_->sessions_)
    for (auto& [id, sub] : s->subs)
      if (sub->own) impl_->expire_scan(*sub->own, now_ms);

  // Producers blocked longer than send_timeout get their ERROR now.
  std::vector<session_id> timed_out;
  for (auto id : impl_->blocked_) {
    auto* s = impl_->find_session(id);
    if (s && !s->parked.empty() && now - s->blocked_since >= impl_->config_.send_timeout) timed_out.push_back(id);
  }
  for (auto id : timed_out) {
    auto* s = impl_->find_session(id);
    stomp::frame cause = std::move(s->parked.front());
    s->parked.clear();
    impl_->blocked_.erase(id);
    ++impl_->send_timeouts_;
    impl_->fail(*s, "send timeout",
                fmt::format("The SEND waited {} ms for space and was not accepted: {}.",
                            impl_->config_.send_timeout.count(), s->blocked_on),
                &cause);
  }
  impl_->flush();
}

void engine::shutdown() {
  impl_->shutting_down_ = true;
}

void engine::recover() {
  auto& self = *impl_;
  if (!self.store_) return;
  const auto& idx = self.store_->index();
  self.recovered_below_ = idx.next_msg_seq();
  for (const auto& d : idx.destinations()) {
    if (is_queue(d)) self.get_queue(d).create_journaled = true;
  }
  for (const auto& [key, sub] : idx.durable_subscriptions()) {
    auto q = std::make_unique<queue>();
    q->kind = queue_kind::durable;
    q->name = sub.topic;
    q->key = key;
    q->client_id = sub.client_id;
    q->subscription_name = sub.subscription_name;
    self.get_topic(sub.topic).durable[key] = q.get();
    self.durables_.emplace(key, std::move(q));
  }
  for (const auto& [target, messages] : idx.targets()) {
    queue* q = self.find_queue_by_key(target);
    if (!q && is_queue(target)) q = &self.get_queue(target);
    if (!q) {
      ++self.unknown_targets_;  // a key no destination or subscription owns: left alone
      continue;
    }
    // Estimated bytes: the record size, a batch's split evenly over its entries here
    // (a transaction's messages to one queue are consecutive with one location).
    for (auto it = messages.begin(); it != messages.end();) {
      auto run_end = std::next(it);
      std::uint64_t run = 1;
      while (run_end != messages.end() && run_end->second.where == it->second.where) ++run_end, ++run;
      q->bytes += it->second.where.size;
      for (; it != run_end; ++it) {
        if (it->second.expires_ms != 0 &&
            (q->earliest_expiry == 0 || it->second.expires_ms < q->earliest_expiry))
          q->earliest_expiry = it->second.expires_ms;
      }
    }
    q->enqueued += messages.size();
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions, receipts, errors
// ---------------------------------------------------------------------------------------------

session* engine::impl::find_session(session_id id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void engine::impl::send_frame(session& s, const stomp::frame& f) {
  std::string out;
  if (stomp::encode(f, s.version, out)) return;  // our own headers always encode
  s.sink->send(std::move(out));
}

std::uint64_t engine::impl::add_receipt(session& s, const stomp::frame& f, std::uint32_t waiting) {
  auto r = f.get("receipt");
  if (!r) return 0;
  stomp::frame receipt;
  receipt.command = "RECEIPT";
  receipt.add("receipt-id", std::string(*r));
  receipt_slot slot;
  slot.id = s.next_slot++;
  if (stomp::encode(receipt, s.version, slot.frame)) {
    // A receipt id this version cannot write back (e.g. a raw CR in 1.1): answer with an
    // ERROR rather than a RECEIPT the client could not match.
    stomp::frame err;
    err.command = "ERROR";
    err.add("message", "receipt id cannot be encoded");
    slot.frame.clear();
    stomp::encode(err, s.version, slot.frame);
    slot.close = true;
  }
  slot.waiting = waiting;
  s.slots.push_back(std::move(slot));
  auto id = s.slots.back().id;
  flush_slots(s);
  return id;
}

void engine::impl::flush_slots(session& s) {
  while (!s.slots.empty() && s.slots.front().waiting == 0) {
    auto slot = std::move(s.slots.front());
    s.slots.pop_front();
    if (slot.close) {
      // Release the session before its last frame leaves: a client that saw DISCONNECT's
      // RECEIPT may reconnect with the same client-id at once, and the socket (hence
      // close_session) can outlive that receipt.
      end_session_state(s);
      release_client_id(s);
    }
    if (!slot.frame.empty()) s.sink->send(std::move(slot.frame));
    if (slot.close) {
      s.state = session_state::closing;
      s.slots.clear();
      s.sink->close_after_flush();
      return;
    }
  }
}

void engine::impl::complete_slot(session_id sid, std::uint64_t slot) {
  auto* s = find_session(sid);
  if (!s || slot == 0) return;
  for (auto& r : s->slots) {
    if (r.id == slot) {
      if (r.waiting > 0) --r.waiting;
      break;
    }
  }
  flush_slots(*s);
}

void engine::impl::fail_slot(session_id sid, std::uint64_t slot, std::string_view message, std::string_view detail) {
  auto* s = find_session(sid);
  if (!s) return;
  stomp::frame err;
  err.command = "ERROR";
  err.add("message", std::string(message));
  err.add("content-type", "text/plain");
  err.body = std::string(detail);
  for (auto& r : s->slots) {
    if (r.id == slot && slot != 0) {
      // Keep the receipt id: the failing frame had asked for one.
      auto at = r.frame.find("receipt-id:");
      if (at != std::string::npos) {
        auto end = r.frame.find('\n', at);
        err.add("receipt-id", r.frame.substr(at + 11, end - at - 11));
      }
      r.frame.clear();
      stomp::encode(err, s->version, r.frame);
      r.waiting = 0;
      r.close = true;
      s->state = session_state::closing;
      flush_slots(*s);
      return;
    }
  }
  fail(*s, message, detail, nullptr);
}

void engine::impl::fail(session& s, std::string_view message, std::string_view detail, const stomp::frame* cause) {
  if (s.state == session_state::closing && s.slots.empty()) return;  // already said goodbye
  stomp::frame err;
  err.command = "ERROR";
  err.add("message", std::string(message));
  if (cause) {
    if (auto r = cause->get("receipt")) err.add("receipt-id", std::string(*r));
  }
  err.add("content-type", "text/plain");
  err.body = std::string(detail);
  if (!err.body.empty() && err.body.back() != '\n') err.body += '\n';
  receipt_slot slot;
  slot.id = s.next_slot++;
  if (stomp::encode(err, s.version, slot.frame)) {
    err.headers.clear();
    err.add("message", "request refused");
    slot.frame.clear();
    stomp::encode(err, s.version, slot.frame);
  }
  slot.close = true;
  s.slots.push_back(std::move(slot));
  s.state = session_state::closing;
  if (!s.parked.empty()) {
    s.parked.clear();
    blocked_.erase(s.id);
  }
  flush_slots(s);
}

void engine::impl::release_client_id(session& s) {
  if (s.client_id.empty()) return;
  auto c = client_ids_.find(s.client_id);
  if (c != client_ids_.end() && c->second == s.id) client_ids_.erase(c);
}

void engine::impl::end_session_state(session& s) {
  for (auto& [name, tx] : s.txs) {
    memory_bytes_ -= std::min(memory_bytes_, tx.bytes);
  }
  // Unacked deliveries (acked inside an open transaction or not) all go back: the
  // transactions die with the session.
  s.txs.clear();
  while (!s.subs.empty()) remove_subscription(s, *s.subs.begin()->second);
  s.parked.clear();
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

void engine::impl::handle_frame(session& s, stomp::frame&& f) {
  auto cmd = stomp::command_from_name(f.command);
  if (!cmd || !stomp::is_client_command(*cmd)) {
    fail(s, "unknown command", fmt::format("'{}' is not a STOMP client frame.", f.command), &f);
    return;
  }
  if (s.state == session_state::awaiting_connect) {
    if (*cmd == stomp::command::connect || *cmd == stomp::command::stomp) {
      on_connect(s, f);
    } else {
      fail(s, "not connected", fmt::format("{} before CONNECT: the first frame must be CONNECT or STOMP.", f.command),
           &f);
    }
    return;
  }
  switch (*cmd) {
    case stomp::command::connect:
    case stomp::command::stomp:
      fail(s, "already connected", "A second CONNECT on one connection is not allowed.", &f);
      return;
    case stomp::command::send: on_send(s, std::move(f)); return;
    case stomp::command::subscribe: on_subscribe(s, f); return;
    case stomp::command::unsubscribe: on_unsubscribe(s, f); return;
    case stomp::command::ack: on_ack(s, f, false); return;
    case stomp::command::nack: on_ack(s, f, true); return;
    case stomp::command::begin: on_begin(s, f); return;
    case stomp::command::commit: on_commit(s, f); return;
    case stomp::command::abort: on_abort(s, f); return;
    case stomp::command::disconnect: on_disconnect(s, f); return;
    default: return;  // server commands were refused above
  }
}

void engine::impl::on_connect(session& s, stomp::frame& f) {
  auto version = stomp::choose_version(f.get("accept-version"));
  if (!version) {
    stomp::frame err;
    err.command = "ERROR";
    err.add("version", std::string(stomp::supported_versions));
    err.add("message", "unsupported protocol version");
    err.add("content-type", "text/plain");
    err.body = fmt::format("Supported protocol versions are {}; the client offered '{}'.\n",
                           stomp::supported_versions, header_or(f, "accept-version"));
    send_frame(s, err);
    s.state = session_state::closing;
    s.sink->close_after_flush();
    return;
  }
  stomp::heart_beat theirs{};
  if (auto hb = f.get("heart-beat"); hb && version.value() != stomp::version::v1_0) {
    auto parsed = stomp::parse_heart_beat(*hb);
    if (!parsed) {
      fail(s, "bad heart-beat header", fmt::format("heart-beat '{}' is not '<ms>,<ms>'.", *hb), &f);
      return;
    }
    theirs = parsed.value();
  }

  auto login = f.get("login");
  auto passcode = header_or(f, "passcode");
  if (login) {
    auto user = std::find_if(config_.users.begin(), config_.users.end(),
                             [&](const user_account& u) { return u.login == *login; });
    if (user == config_.users.end() || !verify_password(user->password_hash, passcode)) {
      ++auth_failures_;
      fail(s, "authentication failed", "The login is unknown or the passcode is wrong.", &f);
      return;
    }
    s.login = std::string(*login);
  } else if (!config_.allow_anonymous) {
    ++auth_failures_;
    fail(s, "authentication failed", "This broker requires login and passcode headers on CONNECT.", &f);
    return;
  }

  if (auto cid = f.get("client-id"); cid && !cid->empty()) {
    if (client_ids_.contains(std::string(*cid))) {
      // ActiveMQ's InvalidClientIDException: two live connections must not share a
      // durable subscriber identity.
      fail(s, "client-id already connected",
           fmt::format("client-id '{}' is in use by another connection.", *cid), &f);
      return;
    }
    s.client_id = std::string(*cid);
    client_ids_.emplace(s.client_id, s.id);
  }

  s.version = version.value();
  s.state = session_state::connected;
  s.sink->set_version(stomp::version_name(s.version));

  stomp::frame connected;
  connected.command = "CONNECTED";
  connected.add("version", std::string(stomp::version_name(s.version)));
  connected.add("server", fmt::format("Tandem/{}", server_version));
  connected.add("session", fmt::format("{}-{}", config_.broker_name, s.id));
  if (s.version != stomp::version::v1_0) {
    stomp::heart_beat ours{config_.heartbeat_send, config_.heartbeat_expect};
    connected.add("heart-beat", stomp::format_heart_beat(ours));
    auto periods = stomp::negotiate_heart_beat(ours, theirs);
    s.sink->set_heartbeat(periods.send_every, periods.expect_every);
  } else {
    s.sink->set_heartbeat(std::chrono::milliseconds{0}, std::chrono::milliseconds{0});
  }
  send_frame(s, connected);
}

// The frame's destination when it names a /queue/ or /topic/; otherwise an ERROR (and
// nullopt) saying what was wrong.
std::optional<std::string_view> engine::impl::checked_destination(session& s, stomp::frame& f) {
  auto dest = f.get("destination");
  if (!dest) {
    fail(s, "missing destination", fmt::format("{} needs a destination header.", f.command), &f);
    return std::nullopt;
  }
  if (!is_topic(*dest) && !is_queue(*dest)) {
    fail(s, "unsupported destination",
         fmt::format("'{}' is not a destination: use /queue/NAME or /topic/NAME.", *dest), &f);
    return std::nullopt;
  }
  return dest;
}

void engine::impl::on_send(session& s, stomp::frame&& f) {
  auto dest = checked_destination(s, f);
  if (!dest) return;
  bool to_topic = is_topic(*dest);
  if (shutting_down_) {
    fail(s, "broker shutting down", "The broker is stopping and accepts no more messages; reconnect.", &f);
    return;
  }
  bool persistent = header_or(f, "persistent") == "true";
  if (persistent && !store_) {
    fail(s, "persistence unavailable", "This broker has no store: send with persistent:false.", &f);
    return;
  }
  std::int64_t expires = 0;
  if (auto e = f.get("expires"); e && !parse_number(*e, expires)) {
    fail(s, "bad expires header", fmt::format("expires '{}' is not milliseconds since the epoch.", *e), &f);
    return;
  }
  int priority = 4;
  if (auto p = f.get("priority"); p && (!parse_number(*p, priority) || priority < 0 || priority > 9)) {
    fail(s, "bad priority header", fmt::format("priority '{}' is not 0..9.", *p), &f);
    return;
  }
  auto producer = f.get("tandem-producer-id");
  auto producer_seq_text = f.get("tandem-producer-seq");
  std::uint64_t producer_seq = 0;
  if (producer.has_value() != producer_seq_text.has_value() || (producer && producer->empty()) ||
      (producer_seq_text && !parse_number(*producer_seq_text, producer_seq))) {
    fail(s, "bad producer headers",
         "tandem-producer-id and tandem-producer-seq (a decimal number) go together.", &f);
    return;
  }
  transaction* tx = nullptr;
  if (auto t = f.get("transaction")) {
    auto it = s.txs.find(std::string(*t));
    if (it == s.txs.end()) {
      fail(s, "unknown transaction", fmt::format("Transaction '{}' was not begun on this connection.", *t), &f);
      return;
    }
    tx = &it->second;
  }
  if (auto why = send_blocked(*dest, to_topic, persistent); !why.empty()) {
    park(s, std::move(f), std::move(why));
    return;
  }
  ++s.messages_in;
  std::string producer_id = producer ? std::string(*producer) : std::string();
  if (producer && (dedup_.contains(producer_id, producer_seq) ||
                   (store_ && store_->index().is_duplicate(producer_id, producer_seq)))) {
    // A resend of a message we already have (the producer failed over before it saw the
    // receipt): drop it, but receipt it so the producer moves on.
    ++duplicates_;
    add_receipt(s, f, 0);
    return;
  }

  message msg;
  msg.expires_ms = expires;
  msg.priority = static_cast<std::uint8_t>(priority);
  msg.persistent = persistent;
  msg.producer_id = producer_id;
  msg.producer_seq = producer_seq;
  msg.headers.reserve(f.headers.size());
  for (auto& h : f.headers)
    if (!is_broker_header(h.first)) msg.headers.push_back(std::move(h));
  msg.body = std::move(f.body);
  std::string destination(*dest);

  if (tx) {
    // Held until COMMIT; the message id and seq are given then, so the transaction's
    // messages are consecutive and ordered at the point they become visible.
    if (producer) dedup_.record(producer_id, producer_seq);
    auto bytes = message_bytes(msg);
    tx->bytes += bytes;
    memory_bytes_ += bytes;
    tx->sends.push_back(tx_send{std::move(destination), std::move(msg)});
    add_receipt(s, f, 0);
    return;
  }
  if (producer) dedup_.record(producer_id, producer_seq);
  std::optional<message> record;
  auto plan = plan_send(destination, to_topic, std::move(msg), record);
  if (!record) {
    apply_send(plan);
    add_receipt(s, f, 0);
    return;
  }
  auto slot = add_receipt(s, f, 1);
  auto bytes = plan.bytes;
  appending_bytes_ += bytes;
  store_->append(journal::record{std::move(*record)},
                 guard([this, sid = s.id, slot, plan = std::move(plan), bytes](std::error_code ec) {
                   appending_bytes_ -= std::min(appending_bytes_, bytes);
                   if (ec) {
                     fail_slot(sid, slot, "message not stored",
                               fmt::format("The journal refused the message: {}.", ec.message()));
                     return;
                   }
                   apply_send(plan);
                   complete_slot(sid, slot);
                 }));
}

void engine::impl::on_subscribe(session& s, stomp::frame& f) {
  auto dest = checked_destination(s, f);
  if (!dest) return;
  bool to_topic = is_topic(*dest);
  auto id = f.get("id");
  if (!id && s.version != stomp::version::v1_0) {
    fail(s, "missing id", "SUBSCRIBE needs an id header (STOMP 1.1 and 1.2).", &f);
    return;
  }
  std::string sub_id(id ? *id : *dest);  // 1.0: the destination names the subscription
  if (s.subs.contains(sub_id)) {
    fail(s, "duplicate subscription id", fmt::format("Subscription '{}' already exists on this connection.", sub_id),
         &f);
    return;
  }
  if (s.subs.size() >= config_.max_subscriptions_per_session) {
    fail(s, "too many subscriptions",
         fmt::format("A connection may hold {} subscriptions.", config_.max_subscriptions_per_session), &f);
    return;
  }
  auto ack = header_or(f, "ack", "auto");
  ack_mode mode;
  if (ack == "auto") mode = ack_mode::auto_ack;
  else if (ack == "client") mode = ack_mode::client;
  else if (ack == "client-individual") mode = ack_mode::client_individual;
  else {
    fail(s, "bad ack mode", fmt::format("ack '{}' is not auto, client or client-individual.", ack), &f);
    return;
  }
  std::uint32_t prefetch = config_.default_prefetch;
  if (auto p = f.get("activemq.prefetchSize")) {
    if (!parse_number(*p, prefetch) || prefetch == 0) {
      fail(s, "bad activemq.prefetchSize", fmt::format("activemq.prefetchSize '{}' is not a positive number.", *p), &f);
      return;
    }
  }
  if (auto sel = f.get("selector"); sel && !sel->empty()) {
    // Silently delivering what a selector should filter out would be worse than refusing.
    fail(s, "selectors are not supported", "Tandem does not evaluate message selectors.", &f);
    return;
  }

  auto sub = std::make_unique<subscription>();
  sub->owner = &s;
  sub->id = sub_id;
  sub->destination = std::string(*dest);
  sub->mode = mode;
  sub->prefetch = prefetch;
  std::optional<journal::durable_subscription_create> create;

  if (!to_topic) {
    sub->q = &get_queue(*dest);
  } else if (auto name = f.get("activemq.subscriptionName"); name && !name->empty()) {
    if (s.client_id.empty()) {
      fail(s, "durable subscription needs client-id",
           "Send a client-id header on CONNECT to subscribe durably (activemq.subscriptionName).", &f);
      return;
    }
    auto key = journal::subscription_target(s.client_id, *name);
    queue* q = find_queue_by_key(key);
    if (q && !q->consumers.empty()) {
      fail(s, "durable subscription in use",
           fmt::format("Durable subscription '{}' of client-id '{}' already has a subscriber.", *name, s.client_id), &f);
      return;
    }
    if (q && q->name != *dest) {
      destroy_durable(*q, {});  // ActiveMQ: subscribing a name to another topic replaces it
      q = nullptr;
    }
    if (!q) {
      auto owned = std::make_unique<queue>();
      owned->kind = queue_kind::durable;
      owned->name = std::string(*dest);
      owned->key = key;
      owned->client_id = s.client_id;
      owned->subscription_name = std::string(*name);
      q = owned.get();
      durables_.emplace(key, std::move(owned));
      get_topic(*dest).durable[key] = q;
      if (store_) {
        create.emplace();
        create->client_id = s.client_id;
        create->subscription_name = std::string(*name);
        create->topic = std::string(*dest);
      }
    }
    sub->durable = true;
    sub->topic = std::string(*dest);
    sub->q = q;
  } else {
    sub->own = std::make_unique<queue>();
    sub->own->kind = queue_kind::topic_subscription;
    sub->own->name = std::string(*dest);
    sub->q = sub->own.get();
    sub->topic = std::string(*dest);
    get_topic(*dest).subscribers.push_back(sub.get());
  }
  sub->q->consumers.push_back(sub.get());
  mark_dirty(*sub->q);
  s.subs.emplace(sub_id, std::move(sub));
  if (!create) {
    add_receipt(s, f, 0);
    return;
  }
  // The receipt says the subscription survives a restart: it waits for the record.
  auto slot = add_receipt(s, f, 1);
  store_->append(journal::record{std::move(*create)}, guard([this, sid = s.id, slot](std::error_code ec) {
                   if (ec)
                     fail_slot(sid, slot, "subscription not stored",
                               fmt::format("The journal refused the subscription: {}.", ec.message()));
                   else
                     complete_slot(sid, slot);
                 }));
}

void engine::impl::on_unsubscribe(session& s, stomp::frame& f) {
  auto id = f.get("id");
  if (!id && s.version == stomp::version::v1_0) id = f.get("destination");
  auto durable_name = f.get("activemq.subscriptionName");
  subscription* sub = nullptr;
  if (id) {
    auto it = s.subs.find(std::string(*id));
    if (it != s.subs.end()) sub = it->second.get();
  }
  if (!sub && !durable_name) {
    fail(s, "unknown subscription",
         id ? fmt::format("No subscription '{}' on this connection.", *id) : std::string("UNSUBSCRIBE needs an id header."),
         &f);
    return;
  }
  if (sub) remove_subscription(s, *sub);
  if (!durable_name) {
    add_receipt(s, f, 0);
    return;
  }
  if (s.client_id.empty()) {
    fail(s, "durable subscription needs client-id",
         "Send a client-id header on CONNECT to remove a durable subscription.", &f);
    return;
  }
  queue* q = find_queue_by_key(journal::subscription_target(s.client_id, *durable_name));
  if (!q) {
    if (sub) {
      add_receipt(s, f, 0);
    } else {
      fail(s, "unknown durable subscription",
           fmt::format("client-id '{}' has no durable subscription '{}'.", s.client_id, *durable_name), &f);
    }
    return;
  }
  if (!q->consumers.empty()) {
    fail(s, "durable subscription in use",
         fmt::format("Durable subscription '{}' is active on another connection.", *durable_name), &f);
    return;
  }
  if (!store_) {
    destroy_durable(*q, {});
    add_receipt(s, f, 0);
    return;
  }
  auto slot = add_receipt(s, f, 1);
  destroy_durable(*q, guard([this, sid = s.id, slot](std::error_code ec) {
                    if (ec)
                      fail_slot(sid, slot, "unsubscribe not stored",
                                fmt::format("The journal refused the removal: {}.", ec.message()));
                    else
                      complete_slot(sid, slot);
                  }));
}

void engine::impl::on_ack(session& s, stomp::frame& f, bool nack) {
  subscription* sub = nullptr;
  std::uint64_t tag = 0;
  if (auto err = find_delivery(s, f, sub, tag); !err.empty()) {
    fail(s, nack ? "unknown NACK" : "unknown ACK", err, &f);
    return;
  }
  transaction* tx = nullptr;
  if (auto t = f.get("transaction")) {
    auto it = s.txs.find(std::string(*t));
    if (it == s.txs.end()) {
      fail(s, "unknown transaction", fmt::format("Transaction '{}' was not begun on this connection.", *t), &f);
      return;
    }
    tx = &it->second;
  }
  // client mode acks cumulatively (every earlier unacked delivery of the subscription);
  // NACK always names one message, so a client that failed on one message does not have
  // every earlier one redelivered.
  auto last = sub->unacked.find(tag);
  auto first = (!nack && sub->mode == ack_mode::client) ? sub->unacked.begin() : last;
  auto end = std::next(last);
  if (tx) {
    for (auto it = first; it != end; ++it) {
      if (it->second.in_tx) continue;
      it->second.in_tx = true;
      tx->acks.push_back(tx_ack{sub->id, it->first, nack});
    }
    add_receipt(s, f, 0);
    return;
  }
  std::vector<journal::batch_item> removes;
  for (auto it = first; it != end;) {
    if (it->second.in_tx) {
      ++it;
      continue;
    }
    auto next = std::next(it);
    if (nack) {
      delivery d = std::move(it->second);
      s.tags.erase(it->first);
      sub->unacked.erase(it);
      return_delivery(std::move(d));
    } else {
      ack_delivery(*sub, it, &removes);
    }
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
  auto slot = add_receipt(s, f, 1);
  append_removes(std::move(removes), guard([this, sid = s.id, slot](std::error_code ec) {
                   if (ec)
                     fail_slot(sid, slot, "ack not stored", fmt::format("The journal refused the ACK: {}.", ec.message()));
                   else
                     complete_slot(sid, slot);
                 }));
}

std::string engine::impl::find_delivery(session& s, const stomp::frame& f, subscription*& sub, std::uint64_t& tag) {
  if (auto id = f.get("id")) {
    // 1.2: the MESSAGE's ack header, our delivery tag.
    std::uint64_t t = 0;
    if (parse_number(*id, t)) {
      auto it = s.tags.find(t);
      if (it != s.tags.end()) {
        sub = it->second;
        tag = t;
        return {};
      }
    }
    if (s.version == stomp::version::v1_2 || !f.get("message-id"))
      return fmt::format("No unacknowledged message has ack id '{}' on this connection.", *id);
  }
  auto message_id = f.get("message-id");
  if (!message_id) return "ACK / NACK needs an id header (1.2) or a message-id header (1.0, 1.1).";
  auto search = [&](subscription& candidate) {
    for (auto it = candidate.unacked.rbegin(); it != candidate.unacked.rend(); ++it) {
      if (it->second.message_id == *message_id) {
        sub = &candidate;
        tag = it->first;
        return true;
      }
    }
    return false;
  };
  if (auto sid = f.get("subscription")) {
    auto it = s.subs.find(std::string(*sid));
    if (it != s.subs.end() && search(*it->second)) return {};
    return fmt::format("Subscription '{}' has no unacknowledged message '{}'.", *sid, *message_id);
  }
  for (auto& [id, candidate] : s.subs)
    if (search(*candidate)) return {};
  return fmt::format("No unacknowledged message '{}' on this connection.", *message_id);
}

void engine::impl::on_begin(session& s, stomp::frame& f) {
  auto t = f.get("transaction");
  if (!t || t->empty()) {
    fail(s, "missing transaction", "BEGIN needs a transaction header.", &f);
    return;
  }
  if (s.txs.contains(std::string(*t))) {
    fail(s, "transaction already begun", fmt::format("Transaction '{}' is already open.", *t), &f);
    return;
  }
  if (s.txs.size() >= config_.max_transactions_per_session) {
    fail(s, "too many transactions",
         fmt::format("A connection may hold {} open transactions.", config_.max_transactions_per_session), &f);
    return;
  }
  s.txs.emplace(std::string(*t), transaction{});
  add_receipt(s, f, 0);
}

// Removes the transaction named by COMMIT's or ABORT's `transaction` header from the
// session; an ERROR (and nullopt) when the header is missing or names no open transaction.
std::optional<transaction> engine::impl::take_transaction(session& s, stomp::frame& f) {
  auto t = f.get("transaction");
  auto it = t ? s.txs.find(std::string(*t)) : s.txs.end();
  if (it == s.txs.end()) {
    fail(s, "unknown transaction",
         t ? fmt::format("Transaction '{}' was not begun on this connection.", *t)
           : fmt::format("{} needs a transaction header.", f.command),
         &f);
    return std::nullopt;
  }
  auto tx = std::move(it->second);
  s.txs.erase(it);
  return tx;
}

void engine::impl::on_abort(session& s, stomp::frame& f) {
  auto taken = take_transaction(s, f);
  if (!taken) return;
  auto tx = std::move(*taken);
  rollback(s, tx);
  add_receipt(s, f, 0);
}

void engine::impl::rollback(session& s, transaction& tx) {
  memory_bytes_ -= std::min(memory_bytes_, tx.bytes);
  // Messages acked (or nacked) inside the transaction are redelivered, flagged redelivered.
  for (const auto& a : tx.acks) {
    auto sit = s.subs.find(a.subscription_id);
    if (sit == s.subs.end()) continue;
    auto& sub = *sit->second;
    auto dit = sub.unacked.find(a.tag);
    if (dit == sub.unacked.end()) continue;
    delivery d = std::move(dit->second);
    sub.unacked.erase(dit);
    s.tags.erase(a.tag);
    d.in_tx = false;
    return_delivery(std::move(d));
  }
}

void engine::impl::on_commit(session& s, stomp::frame& f) {
  auto taken = take_transaction(s, f);
  if (!taken) return;
  auto tx = std::move(*taken);
  if (shutting_down_ && !tx.sends.empty()) {
    rollback(s, tx);
    fail(s, "broker shutting down", "The broker is stopping; the transaction was rolled back.", &f);
    return;
  }
  memory_bytes_ -= std::min(memory_bytes_, tx.bytes);

  journal::batch batch;
  std::vector<planned_send> plans;
  plans.reserve(tx.sends.size());
  for (auto& send : tx.sends) {
    std::optional<message> record;
    bool to_topic = is_topic(send.destination);
    plans.push_back(plan_send(send.destination, to_topic, std::move(send.msg), record));
    if (record) batch.items.emplace_back(std::move(*record));
  }
  for (const auto& a : tx.acks) {
    auto sit = s.subs.find(a.subscription_id);
    if (sit == s.subs.end()) continue;  // unsubscribed meanwhile: it went back to its queue
    auto& sub = *sit->second;
    auto dit = sub.unacked.find(a.tag);
    if (dit == sub.unacked.end()) continue;
    if (a.nack) {
      delivery d = std::move(dit->second);
      sub.unacked.erase(dit);
      s.tags.erase(a.tag);
      d.in_tx = false;
      return_delivery(std::move(d));
    } else {
      ack_delivery(sub, dit, &batch.items);
    }
  }
  if (batch.items.empty()) {
    for (const auto& p : plans) apply_send(p);
    add_receipt(s, f, 0);
    return;
  }
  std::uint64_t bytes = 0;
  for (const auto& p : plans) bytes += p.journaled ? p.bytes : 0;
  appending_bytes_ += bytes;
  auto slot = add_receipt(s, f, 1);
  journal::record rec = batch.items.size() == 1 && std::holds_alternative<journal::message_add>(batch.items[0])
                            ? journal::record{std::get<journal::message_add>(std::move(batch.items[0]))}
                            : journal::record{std::move(batch)};
  store_->append(std::move(rec), guard([this, sid = s.id, slot, plans = std::move(plans), bytes](std::error_code ec) {
                   appending_bytes_ -= std::min(appending_bytes_, bytes);
                   if (ec) {
                     fail_slot(sid, slot, "transaction not stored",
                               fmt::format("The journal refused the COMMIT: {}.", ec.message()));
                     return;
                   }
                   for (const auto& p : plans) apply_send(p);
                   complete_slot(sid, slot);
                 }));
}

void engine::impl::on_disconnect(session& s, stomp::frame& f) {
  // The receipt (if any) goes after every receipt still owed, then the connection closes.
  receipt_slot slot;
  slot.id = s.next_slot++;
  if (auto r = f.get("receipt")) {
    stomp::frame receipt;
    receipt.command = "RECEIPT";
    receipt.add("receipt-id", std::string(*r));
    stomp::encode(receipt, s.version, slot.frame);
  }
  slot.close = true;
  s.slots.push_back(std::move(slot));
  s.state = session_state::closing;
  flush_slots(s);
}

// ---------------------------------------------------------------------------------------------
// Flow control
// ---------------------------------------------------------------------------------------------

std::string engine::impl::send_blocked(std::string_view destination, bool to_topic, bool persistent) {
  if (!persistent && memory_bytes_ >= config_.max_memory_bytes)
    return fmt::format("broker memory full ({} of {} bytes)", memory_bytes_, config_.max_memory_bytes);
  if (persistent && store_ && store_bytes() >= config_.max_store_bytes)
    return fmt::format("store full ({} of {} bytes)", store_bytes(), config_.max_store_bytes);
  auto full = [&](const queue& q) { return q.bytes >= config_.max_destination_bytes; };
  if (!to_topic) {
    auto it = queues_.find(destination);
    if (it != queues_.end() && full(*it->second))
      return fmt::format("destination {} full ({} of {} bytes)", destination, it->second->bytes,
                         config_.max_destination_bytes);
    return {};
  }
  auto t = topics_.find(destination);
  if (t == topics_.end()) return {};
  for (auto& [key, q] : t->second.durable)
    if (full(*q))
      return fmt::format("durable subscription '{}' of {} full ({} of {} bytes)", q->subscription_name, destination,
                         q->bytes, config_.max_destination_bytes);
  for (auto* sub : t->second.subscribers)
    if (full(*sub->q))
      return fmt::format("subscriber '{}' of {} full ({} of {} bytes)", sub->id, destination, sub->q->bytes,
                         config_.max_destination_bytes);
  return {};
}

void engine::impl::park(session& s, stomp::frame&& f, std::string reason) {
  s.parked.push_back(std::move(f));
  s.blocked_since = std::chrono::steady_clock::now();
  s.blocked_on = std::move(reason);
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
        if (dest && !send_blocked(*dest, is_topic(*dest), persistent).empty()) break;
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

}  // namespace tandem::broker
