// Advisory topics (issue 16): what ActiveMQ publishes on ActiveMQ.Advisory.* about
// connections, consumers, producers, destinations, expired and dead-lettered messages, as
// non-persistent topic messages with a JSON body (content-type:application/json) that any
// STOMP client can subscribe to, plus Tandem's own master-change advisory. The topics, the
// fields and what "producer" means: docs/compatibility.md, "Advisory topics".
//
// Cost: every hook in the frame files is `if (advising()) ...`, a compare of a count of the
// subscriptions that could receive an advisory (a topic under ActiveMQ.Advisory., or any
// wildcard topic); with none, no name is built and nothing is published. Producers are
// tracked only while someone listens (session::produced_to).
//
// Publishing goes through plan_send / apply_send like a non-persistent SEND to a topic, so
// wildcards, selectors and slow-consumer limits apply as to any topic message. No advisory
// is published about an advisory topic itself (as ActiveMQ), so publishing never recurses.
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "broker/engine/destinations.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;
using nlohmann::json;

namespace {

constexpr std::string_view advisory_prefix = "/topic/ActiveMQ.Advisory.";
constexpr std::string_view master_change_topic = "Tandem.MasterChange";

bool is_advisory(std::string_view destination) { return destination.starts_with(advisory_prefix); }

// "/queue/orders" -> "Queue.orders", as ActiveMQ names a destination in an advisory topic.
std::string advisory_suffix(std::string_view destination) {
  for (auto [prefix, kind] : {std::pair{"/queue/", "Queue."}, {"/topic/", "Topic."}, {"/remote-temp-queue/", "TempQueue."},
                              {"/remote-temp-topic/", "TempTopic."}})
    if (destination.starts_with(prefix)) return kind + std::string(destination.substr(std::string_view(prefix).size()));
  return std::string(destination);
}

std::string connection_id(const engine_config& config, const session& s) {
  return fmt::format("{}-{}", config.broker_name, s.id);
}

}  // namespace

void engine::impl::count_advisory_listener(const subscription& sub, int delta) {
  if (sub.topic.empty() || (!is_advisory(sub.topic) && !has_wildcard(sub.topic))) return;
  if (delta > 0) ++advisory_listeners_;
  else if (advisory_listeners_ > 0) --advisory_listeners_;
}

void engine::impl::advise(std::string_view topic, std::string body_json, std::vector<stomp::header> props,
                          subscription* only) {
  // A wildcard or composite consumer (/queue/a.>, /queue/a,/queue/b), or a destination
  // literally named so: its name would make the advisory topic a wildcard or composite.
  if (has_wildcard(topic) || topic.find(',') != std::string_view::npos) return;
  const auto full = fmt::format("{}{}", advisory_prefix, topic);
  if (only && !subscription_covers(only->topic, full)) return;
  message m;
  m.persistent = false;
  m.headers.emplace_back("content-type", "application/json");
  m.headers.emplace_back("type", "Advisory");
  m.headers.emplace_back("timestamp", std::to_string(wall_ms_()));
  for (auto& h : props) m.headers.push_back(std::move(h));
  m.body = std::move(body_json);
  if (only) {
    m.message_id = fmt::format("ID:{}-{}-{}", config_.broker_name, run_token_, allocate_seq());
    m.headers.emplace_back("destination", full);  // deliver() shows it as the MESSAGE's destination
    hand_to(*only, std::make_shared<const message>(std::move(m)));
    return;
  }
  std::optional<journal::message_add> never;  // non-persistent: nothing is journaled
  apply_send(plan_send(full, true, std::move(m), never));
}

void engine::impl::advise_connection(const session& s, bool added, subscription* only) {
  json body{{"event", added ? "added" : "removed"},
            {"connectionId", connection_id(config_, s)},
            {"clientId", s.client_id},
            {"userName", s.login},
            {"remoteAddress", s.info.remote_endpoint}};
  advise("Connection", body.dump(), {}, only);
}

void engine::impl::advise_consumer(const subscription& sub, bool added, subscription* only) {
  const std::string& destination = sub.topic.empty() ? sub.destination : sub.topic;
  if (is_advisory(destination)) return;
  // Counted before the change is undone: a consumer that goes is still listed.
  std::uint64_t count = 0;
  if (auto q = queues_.find(destination); q != queues_.end()) count = q->second->consumers.size();
  if (auto t = topics_.find(destination); t != topics_.end()) {
    count = t->second.subscribers.size();
    for (const auto& [key, q] : t->second.durable) count += q->consumers.size();
  }
  if (!added && count > 0) --count;
  json body{{"event", added ? "added" : "removed"},
            {"consumerId", fmt::format("{}:{}", connection_id(config_, *sub.owner), sub.id)},
            {"connectionId", connection_id(config_, *sub.owner)},
            {"destination", destination},
            {"consumerCount", count},
            {"selector", sub.filter ? sub.filter->text() : std::string()},
            {"durable", sub.durable},
            {"exclusive", sub.exclusive},
            {"priority", sub.priority},
            {"prefetchSize", sub.prefetch}};
  advise("Consumer." + advisory_suffix(destination), body.dump(), {{"consumerCount", std::to_string(count)}}, only);
}

void engine::impl::advise_producer(session& s, std::string_view destination) {
  if (is_advisory(destination) || !s.produced_to.emplace(destination).second) return;
  auto count = ++producers_[std::string(destination)];
  json body{{"event", "added"},
            {"producerId", connection_id(config_, s)},
            {"destination", destination},
            {"producerCount", count}};
  advise("Producer." + advisory_suffix(destination), body.dump(), {{"producerCount", std::to_string(count)}});
}

void engine::impl::advise_producers_gone(session& s) {
  for (const auto& destination : s.produced_to) {
    std::uint64_t count = 0;
    if (auto it = producers_.find(destination); it != producers_.end()) {
      count = --it->second;
      if (count == 0) producers_.erase(it);
    }
    if (!advising()) continue;
    json body{{"event", "removed"},
              {"producerId", connection_id(config_, s)},
              {"destination", destination},
              {"producerCount", count}};
    advise("Producer." + advisory_suffix(destination), body.dump(), {{"producerCount", std::to_string(count)}});
  }
  s.produced_to.clear();
}

void engine::impl::advise_destination(std::string_view destination, bool created, subscription* only) {
  if (is_advisory(destination) || has_wildcard(destination)) return;
  auto suffix = advisory_suffix(destination);
  auto kind = suffix.substr(0, suffix.find('.'));  // Queue, Topic, TempQueue, TempTopic
  json body{{"event", created ? "created" : "deleted"}, {"destination", destination}};
  advise(kind, body.dump(), {}, only);
}

void engine::impl::advise_message(std::string_view kind, const queue& q, const message* m, std::string_view why) {
  std::string destination = q.name;
  if (m)
    for (const auto& [name, value] : m->headers)
      if (name == "destination") destination = value;  // a wildcard subscriber's topic message
  if (is_advisory(destination)) return;
  std::string id = m ? m->message_id : std::string();
  json body{{"messageId", id}, {"destination", destination}, {"reason", why},
            {"expires", m ? m->expires_ms : 0}};
  advise(fmt::format("{}.{}", kind, advisory_suffix(destination)), body.dump(), {{"orignalMessageId", id}});
}

void engine::impl::announce_master(const master_change& c) {
  json body{{"broker", c.broker},
            {"previousBroker", c.previous_broker},
            {"epoch", c.epoch},
            {"previousEpoch", c.previous_epoch},
            {"failoverMs", c.took_ms},
            {"at", c.at_ms}};
  auto m = std::make_shared<message>();
  m->persistent = false;
  m->message_id = fmt::format("ID:{}-master-{}", c.broker, c.epoch);
  m->headers = {{"content-type", "application/json"}, {"type", "Advisory"},
                {"timestamp", std::to_string(c.at_ms)}, {"epoch", std::to_string(c.epoch)},
                // deliver() shows it as the MESSAGE's destination (a wildcard subscriber's too).
                {"destination", fmt::format("{}{}", advisory_prefix, master_change_topic)}};
  m->body = body.dump();
  master_change_ = m;
  if (advising()) advise(master_change_topic, m->body, {{"epoch", std::to_string(c.epoch)}});
}

void engine::impl::deliver_retained(subscription& sub) {
  const auto topic = fmt::format("{}{}", advisory_prefix, master_change_topic);
  if (sub.topic.empty() || !subscription_covers(sub.topic, topic)) return;
  hand_to(sub, master_change_);
}

void engine::impl::hand_to(subscription& sub, message_ptr m) {
  if (!sub.q) return;
  auto& q = *sub.q;
  const auto seq = allocate_seq();
  const auto bytes = message_bytes(*m);
  q.memory.emplace(seq, std::move(m));
  q.bytes += bytes;
  memory_bytes_ += bytes;
  note_added(q, seq, 0);
}

}  // namespace tandem::broker
