// SUBSCRIBE and UNSUBSCRIBE: a subscription on a queue (competing consumers), on a topic
// (a private memory-only queue per subscriber), or a durable topic subscription (a queue
// kept under journal::subscription_target(client-id, name) while its subscriber is away).
// A subscription that goes returns its unacked deliveries through return_delivery.
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/destinations.h"
#include "broker/engine/filter.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/log.h"

namespace tandem::broker {

using namespace detail;

namespace {

struct subscribe_request {
  std::string destination;  // as the broker keeps it (a temporary one resolved)
  std::string shown;        // as the client wrote it: what its MESSAGE frames say
  bool to_topic = false;
  std::string id;
  ack_mode mode = ack_mode::auto_ack;
  std::uint32_t prefetch = 0;
  std::string durable_name;  // activemq.subscriptionName on a topic; "" = not durable
  std::optional<selector::expression> filter;  // the selector header, parsed once here
  bool browser = false;  // browser:true on a queue (browse.cpp)
  bool exclusive = false;     // activemq.exclusive:true (consumers.cpp)
  std::uint8_t priority = 0;  // activemq.priority
};

// An invalid selector is refused with the parser's one-line reason ("expected ')' at column
// 17, found end of selector") and the selector quoted, so the client sees where it is wrong.
result<std::optional<selector::expression>> read_selector(const stomp::frame& f) {
  auto text = f.get("selector");
  if (!text || text->empty()) return std::optional<selector::expression>{};
  auto parsed = selector::parse(*text);
  if (!parsed)
    return failure{errc::invalid_selector,
                   fmt::format("selector '{}': {}.", *text, parsed.error().message)};
  return std::optional<selector::expression>(std::move(parsed).value());
}

result<ack_mode> read_ack_mode(std::string_view ack) {
  if (ack == "auto") return ack_mode::auto_ack;
  if (ack == "client") return ack_mode::client;
  if (ack == "client-individual") return ack_mode::client_individual;
  return failure{errc::bad_ack_mode, fmt::format("ack '{}' is not auto, client or client-individual.", ack)};
}

result<subscribe_request> read_subscribe(const session& s, const stomp::frame& f, result<std::string> dest,
                                         const engine_config& config) {
  if (!dest) return std::move(dest).error();
  subscribe_request req;
  req.destination = std::move(dest).value();
  req.shown = std::string(header_or(f, "destination"));
  req.to_topic = is_topic(req.destination);
  auto id = f.get("id");
  if (!id && s.version != stomp::version::v1_0)
    return failure{errc::missing_subscription_id, "SUBSCRIBE needs an id header (STOMP 1.1 and 1.2)."};
  req.id = id ? std::string(*id) : req.shown;  // 1.0: the destination (as given) names the subscription
  if (s.subs.contains(req.id))
    return failure{errc::duplicate_subscription_id,
                   fmt::format("Subscription '{}' already exists on this connection.", req.id)};
  if (s.subs.size() >= config.max_subscriptions_per_session)
    return failure{errc::too_many_subscriptions,
                   fmt::format("A connection may hold {} subscriptions.", config.max_subscriptions_per_session)};
  auto mode = read_ack_mode(header_or(f, "ack", "auto"));
  if (!mode) return std::move(mode).error();
  req.mode = mode.value();
  req.prefetch = config.default_prefetch;
  if (auto p = f.get("activemq.prefetchSize"); p && (!parse_number(*p, req.prefetch) || req.prefetch == 0))
    return failure{errc::bad_prefetch, fmt::format("activemq.prefetchSize '{}' is not a positive number.", *p)};
  req.browser = !req.to_topic && header_or(f, "browser") == "true";
  req.exclusive = header_or(f, "activemq.exclusive") == "true";
  if (auto p = f.get("activemq.priority"); p) {
    unsigned v = 0;
    if (!parse_number(*p, v) || v > 127)
      return failure{errc::bad_priority, fmt::format("activemq.priority '{}' is not a number from 0 to 127.", *p)};
    req.priority = static_cast<std::uint8_t>(v);
  }
  auto filter = read_selector(f);
  if (!filter) return std::move(filter).error();
  req.filter = std::move(filter).value();
  if (auto name = f.get("activemq.subscriptionName"); req.to_topic && name && !name->empty()) {
    if (s.client_id.empty())
      return failure{errc::durable_needs_client_id,
                     "Send a client-id header on CONNECT to subscribe durably (activemq.subscriptionName)."};
    // A temporary topic dies with its connection: nothing could outlive it (JMS forbids it too).
    if (is_temporary(req.destination))
      return failure{errc::unsupported_destination,
                     fmt::format("'{}' is temporary: a durable subscription needs a /topic/.", req.shown)};
    req.durable_name = std::string(*name);
  }
  return req;
}

}  // namespace

// A composite SUBSCRIBE ("/queue/a,/queue/b.>") consumes from queues only, as one consumer
// of each: a topic part would need a subscription of its own per topic (and a durable one a
// name per topic), so it is refused with what to do instead.
result<std::string> engine::impl::resolve_composite_subscribe(session&, std::string_view dest) {
  for (auto part : split_composite(dest))
    if (!is_queue(part) || is_temporary(part))
      return failure{errc::unsupported_destination,
                     fmt::format("'{}': a composite SUBSCRIBE takes /queue/ parts (wildcards allowed); subscribe to "
                                 "'{}' on its own.",
                                 dest, part)};
  return std::string(dest);
}

void engine::impl::on_subscribe(session& s, stomp::frame& f) {
  auto resolve = [&]() -> result<std::string> {
    auto dest = checked_destination(f);
    if (!dest) return std::move(dest).error();
    if (dest.value().find(',') != std::string_view::npos) return resolve_composite_subscribe(s, dest.value());
    return resolve_destination(s, dest.value(), true);
  };
  auto req = read_subscribe(s, f, resolve(), config_);
  if (!req) return fail(s, std::move(req).error(), &f);
  auto& r = req.value();
  const bool composite = r.destination.find(',') != std::string::npos;
  for (auto part : split_composite(r.destination))
    if (auto ok = authorize_use(s, part, permission::read); !ok) return fail(s, std::move(ok).error(), &f);
  if (composite && r.browser)
    return fail(s, {errc::unsupported_destination, "A queue browser takes one queue; browse each part."}, &f);
  auto sub = std::make_unique<subscription>();
  sub->owner = &s;
  sub->id = r.id;
  sub->destination = r.destination;
  sub->mode = r.mode;
  sub->prefetch = r.prefetch;
  sub->filter = r.filter;
  sub->exclusive = r.exclusive;
  sub->priority = r.priority;
  std::optional<journal::durable_subscription_create> create;
  const std::string selector_text = r.filter ? r.filter->text() : std::string();

  if (r.browser) {
    // A browser takes a snapshot and consumes nothing: its own queue stays empty.
    sub->own = std::make_unique<queue>();
    sub->own->kind = queue_kind::topic_subscription;
    sub->own->name = r.destination;
    sub->q = sub->own.get();
    auto& ref = *sub;
    s.subs.emplace(r.id, std::move(sub));
    add_receipt(s, f, 0);
    browse(s, get_queue(r.destination), ref);
    return;
  }
  if (!r.to_topic && (composite || has_wildcard(r.destination))) {
    // Consumes from every queue a part names or matches; get_queue adds a wildcard
    // consumer to those made later.
    sub->wildcard_queue = true;
    sub->own = std::make_unique<queue>();
    sub->own->kind = queue_kind::topic_subscription;
    sub->own->name = r.destination;
    sub->q = sub->own.get();
    bool any_wildcard = false;
    for (auto part : split_composite(r.destination)) {
      if (has_wildcard(part)) any_wildcard = true;
      else get_queue(part);  // a named queue exists from its first consumer on, as with one name
    }
    for (auto& [name, q] : queues_)
      if (q->temp_owner == 0 && subscription_covers(r.destination, name)) {
        q->consumers.push_back(sub.get());
        q->unmatched_below = 0;  // its selector may match what the others skipped
        sub->sources.push_back(q.get());
        consumer_joined(*q, *sub);
      }
    if (any_wildcard) wildcard_queue_subs_.push_back(sub.get());
    mark_consumer_dirty(*sub);
    if (advising()) advise_consumer(*sub, true);
    s.subs.emplace(r.id, std::move(sub));
    add_receipt(s, f, 0);
    return;
  }
  if (!r.to_topic) {
    sub->q = &get_queue(r.destination);
    // A virtual topic's consumer queue gets the topic's messages from now on, also across
    // a restart: journal its definition now, not at its first message.
    if (r.destination.starts_with("/queue/Consumer.") && r.destination.find(".VirtualTopic.") != std::string::npos)
      ensure_destination_journaled(*sub->q);
  } else if (!r.durable_name.empty()) {
    auto key = journal::subscription_target(s.client_id, r.durable_name);
    queue* q = find_queue_by_key(key);
    if (q && !q->owner_login.empty() && q->owner_login != s.login) return fail(s, owned_by_other(*q, s), &f);
    if (q && !q->consumers.empty())
      return fail(s,
                  {errc::durable_subscription_in_use,
                   fmt::format("Durable subscription '{}' of client-id '{}' already has a subscriber.", r.durable_name,
                               s.client_id)},
                  &f);
    if (q && (q->name != r.destination || (q->filter ? q->filter->text() : std::string()) != selector_text)) {
      // ActiveMQ: subscribing a name to another topic or with another selector replaces it
      // (its pending messages go with it).
      destroy_durable(*q, {});
      q = nullptr;
    }
    // Journaled with its owner, so that after a restart or failover only that login may
    // take it over (journal/format.h record 6). One without an owner (from an older store,
    // or made by an anonymous session) goes to the first login that subscribes, and the
    // claim is journaled the same way.
    const bool is_new = !q;
    if (is_new) q = &add_durable(key, s.client_id, r.durable_name, r.destination, r.filter);
    const bool claimed = !is_new && q->owner_login.empty() && !s.login.empty();
    if (claimed)
      log::info("engine", "unowned durable subscription claimed",
                {log::kv("client_id", s.client_id), log::kv("subscription", r.durable_name), log::kv("login", s.login)});
    if (is_new || claimed) {
      q->owner_login = s.login;
      if (store_) {
        create.emplace();
        create->client_id = s.client_id;
        create->subscription_name = r.durable_name;
        create->topic = r.destination;
        create->selector = selector_text;
        create->owner_login = s.login;
      }
    }
    sub->durable = true;
    sub->topic = r.destination;
    sub->q = q;
  } else {
    sub->own = std::make_unique<queue>();
    sub->own->kind = queue_kind::topic_subscription;
    sub->own->name = r.shown;
    sub->q = sub->own.get();
    sub->topic = r.destination;
    get_topic(r.destination).subscribers.push_back(sub.get());
  }
  sub->q->consumers.push_back(sub.get());
  sub->q->unmatched_below = 0;  // its selector may match what the others skipped
  consumer_joined(*sub->q, *sub);
  mark_dirty(*sub->q);
  count_advisory_listener(*sub, +1);
  if (advising()) advise_consumer(*sub, true);
  if (master_change_ && r.to_topic) deliver_retained(*sub);
  if (r.to_topic) replay_advisories(*sub);
  s.subs.emplace(r.id, std::move(sub));
  if (!create) {
    add_receipt(s, f, 0);
    return;
  }
  // The receipt says the subscription survives a restart: it waits for the record.
  auto slot = add_receipt(s, f, 1);
  store_->append(journal::change{std::move(*create)},
                 receipt_when_durable(s.id, slot, errc::subscription_not_stored, "subscription"));
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
  if (!sub && !durable_name)
    return fail(s,
                {errc::unknown_subscription, id ? fmt::format("No subscription '{}' on this connection.", *id)
                                                : std::string("UNSUBSCRIBE needs an id header.")},
                &f);
  if (sub) remove_subscription(s, *sub);
  if (!durable_name) {
    add_receipt(s, f, 0);
    return;
  }
  if (s.client_id.empty())
    return fail(s,
                {errc::durable_needs_client_id,
                 "Send a client-id header on CONNECT to remove a durable subscription."},
                &f);
  queue* q = find_queue_by_key(journal::subscription_target(s.client_id, *durable_name));
  if (!q) {
    if (sub) {
      add_receipt(s, f, 0);
      return;
    }
    return fail(s,
                {errc::unknown_durable_subscription,
                 fmt::format("client-id '{}' has no durable subscription '{}'.", s.client_id, *durable_name)},
                &f);
  }
  if (!q->owner_login.empty() && q->owner_login != s.login) return fail(s, owned_by_other(*q, s), &f);
  if (!q->consumers.empty())
    return fail(s,
                {errc::durable_subscription_in_use,
                 fmt::format("Durable subscription '{}' is active on another connection.", *durable_name)},
                &f);
  if (!store_) {
    destroy_durable(*q, {});
    add_receipt(s, f, 0);
    return;
  }
  auto slot = add_receipt(s, f, 1);
  destroy_durable(*q, receipt_when_durable(s.id, slot, errc::unsubscribe_not_stored, "removal"));
}

void engine::impl::remove_subscription(session& s, subscription& sub) {
  count_advisory_listener(sub, -1);
  if (advising()) advise_consumer(sub, false);
  if (sub.wildcard_queue) {
    std::erase(wildcard_queue_subs_, &sub);
    for (auto* source : sub.sources) {
      std::erase(source->consumers, &sub);
      if (source->next_consumer >= source->consumers.size()) source->next_consumer = 0;
      consumer_left(*source, sub);
    }
    // The consumer is gone: its unacked deliveries go back to their queues, in order.
    while (!sub.unacked.empty()) return_delivery(sub, sub.unacked.begin());
    std::string id = sub.id;
    s.subs.erase(id);
    return;
  }
  auto& q = *sub.q;
  q.consumers.erase(std::remove(q.consumers.begin(), q.consumers.end(), &sub), q.consumers.end());
  if (q.next_consumer >= q.consumers.size()) q.next_consumer = 0;
  consumer_left(q, sub);
  if (sub.own) {
    // A non-durable topic subscription's messages, in flight or not, die with it.
    for (const auto& [tag, d] : sub.unacked) s.tags.erase(tag);
    sub.unacked.clear();
    unmark_dirty(q);
    memory_bytes_ -= std::min(memory_bytes_, q.bytes);
    auto t = topics_.find(sub.topic);
    if (t != topics_.end()) std::erase(t->second.subscribers, &sub);
  } else {
    // The consumer is gone: its unacked deliveries go back, in delivery order.
    while (!sub.unacked.empty()) return_delivery(sub, sub.unacked.begin());
    mark_dirty(q);
  }
  std::string id = sub.id;  // the key must outlive the node it lives in
  s.subs.erase(id);
}

queue& engine::impl::add_durable(const std::string& key, const std::string& client_id, const std::string& name,
                                 const std::string& topic, std::optional<selector::expression> filter) {
  auto q = std::make_unique<queue>();
  q->kind = queue_kind::durable;
  q->filter = std::move(filter);
  q->name = topic;
  q->key = key;
  q->client_id = client_id;
  q->subscription_name = name;
  auto& ref = *q;
  get_topic(topic).durable[key] = &ref;
  durables_.emplace(key, std::move(q));
  return ref;
}

void engine::impl::destroy_durable(queue& q, journal::completion done) {
  unmark_dirty(q);
  for (const auto& [seq, m] : q.memory) memory_bytes_ -= std::min(memory_bytes_, message_bytes(*m));
  if (auto t = topics_.find(q.name); t != topics_.end()) t->second.durable.erase(q.key);
  if (store_) {
    journal::durable_subscription_remove rec;
    rec.client_id = q.client_id;
    rec.subscription_name = q.subscription_name;
    rec.topic = q.name;
    if (q.filter) rec.selector = q.filter->text();
    store_->append(journal::change{std::move(rec)}, std::move(done));
  } else if (done) {
    done({}, 0);
  }
  durables_.erase(q.key);
}

}  // namespace tandem::broker
