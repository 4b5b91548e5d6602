// Admin snapshots: destinations_json, connections_json (and its paged parts), append_metrics (Prometheus text).
#include <algorithm>
#include <array>
#include <limits>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "broker/engine/impl.h"
#include "broker/prometheus.h"
#include "broker/stomp/utf8.h"

namespace tandem::broker {

using namespace detail;
using nlohmann::json;

namespace {

// A map's value as a reference: queues_ holds unique_ptrs, topics_ the topics themselves.
template <class T>
const T& deref(const std::unique_ptr<T>& p) { return *p; }
template <class T>
const T& deref(const T& v) { return v; }

std::string_view ack_name(ack_mode m) {
  switch (m) {
    case ack_mode::auto_ack: return "auto";
    case ack_mode::client: return "client";
    case ack_mode::client_individual: return "client-individual";
  }
  return "auto";
}

}  // namespace

json engine::destinations_json() const {
  json out = json::array();
  for (const auto& [name, q] : impl_->queues_) out.push_back(destination_json(name, false));
  for (const auto& [name, t] : impl_->topics_) out.push_back(destination_json(name, true));
  return out;
}

json engine::destination_json(std::string_view name, bool is_topic) const {
  const auto& self = *impl_;
  auto limits = [&](const queue& q) {
    return json{{"max_bytes", self.config_.max_destination_bytes},
                {"full", q.bytes >= self.config_.max_destination_bytes}};
  };
  auto queue_json = [&](const queue& q) {
    return json{{"pending", self.pending_count(q)}, {"inflight", q.inflight},     {"consumers", q.consumers.size()},
                {"enqueued", q.enqueued},           {"dequeued", q.dequeued},     {"expired", q.expired},
                {"dead_lettered", q.dead_lettered}, {"redelivered", q.redelivered}, {"bytes", q.bytes},
                {"unreadable", q.unreadable.size()}, {"limits", limits(q)},
                {"message_groups", q.groups.size()}, {"message_groups_evicted", q.groups.evicted()}};
  };
  if (!is_topic) {
    auto found = self.queues_.find(name);
    if (found == self.queues_.end()) return nullptr;
    auto j = queue_json(*found->second);
    j["name"] = stomp::printable_utf8(found->first);
    j["type"] = "queue";
    return j;
  }
  auto found = self.topics_.find(name);
  if (found == self.topics_.end()) return nullptr;
  const topic& t = found->second;
  json subs = json::array();
  std::uint64_t pending = 0, inflight = 0, dequeued = 0, bytes = 0, consumers = 0;
  auto add = [&](const queue& q, json j) {
    pending += self.pending_count(q);
    inflight += q.inflight;
    dequeued += q.dequeued;
    bytes += q.bytes;
    consumers += q.consumers.size();
    subs.push_back(std::move(j));
  };
  for (const auto& [key, q] : t.durable) {
    auto j = queue_json(*q);
    j["durable"] = true;
    j["client_id"] = stomp::printable_utf8(q->client_id);
    j["subscription_name"] = stomp::printable_utf8(q->subscription_name);
    j["active"] = !q->consumers.empty();
    add(*q, std::move(j));
  }
  for (const auto* sub : t.subscribers) {
    auto j = queue_json(*sub->q);
    j["durable"] = false;
    j["session"] = sub->owner->id;
    j["subscription_id"] = sub->id;
    add(*sub->q, std::move(j));
  }
  return json{{"name", stomp::printable_utf8(found->first)}, {"type", "topic"},       {"pending", pending},
              {"inflight", inflight}, {"consumers", consumers}, {"enqueued", t.enqueued},
              {"dequeued", dequeued}, {"bytes", bytes},
              {"limits", json{{"max_bytes", self.config_.max_destination_bytes}}},
              {"subscriptions", std::move(subs)}};
}

// The counters destination_json shows, without building it: what a page's filter and sort
// and Jolokia's broker totals need of every destination.
destination_slice engine::destination_figures_after(destination_cursor& at, std::size_t max,
                                                    std::string_view lower_filter) const {
  const auto& self = *impl_;
  destination_slice out;
  auto queue_figures = [&](const std::string& name, const queue& q) {
    destination_figures f;
    f.name = name;
    f.pending = self.pending_count(q);
    f.inflight = q.inflight;
    f.consumers = q.consumers.size();
    f.enqueued = q.enqueued;
    f.dequeued = q.dequeued;
    f.dead_lettered = q.dead_lettered;
    f.bytes = q.bytes;
    return f;
  };
  auto topic_figures = [&](const std::string& name, const topic& t) {
    destination_figures f;
    f.name = name;
    f.topic = true;
    f.enqueued = t.enqueued;
    auto add = [&](const queue& q) {
      f.pending += self.pending_count(q);
      f.inflight += q.inflight;
      f.dequeued += q.dequeued;
      f.bytes += q.bytes;
      f.consumers += q.consumers.size();
    };
    for (const auto& [key, q] : t.durable) add(*q);
    for (const auto* sub : t.subscribers) add(*sub->q);
    return f;
  };
  // One stage's destinations after at.after, up to what is left of `max`; true if it is over.
  auto walk = [&](const auto& map, auto figures) {
    auto it = at.after.empty() ? map.begin() : map.upper_bound(at.after);
    for (; it != map.end() && out.looked_at < max; ++it, ++out.looked_at) {
      at.after = it->first;
      if (destination_name_holds(it->first, lower_filter)) out.matched.push_back(figures(it->first, deref(it->second)));
    }
    return it == map.end();
  };
  if (!at.topics) {
    if (!walk(self.queues_, queue_figures)) return out;
    at.topics = true;
    at.after.clear();
  }
  if (walk(self.topics_, topic_figures)) at.done = true;
  return out;
}

json engine::connections_json() const {
  json out = json::array();
  for (const auto& [id, s] : impl_->sessions_) out.push_back(connection_json(id));
  return out;
}

namespace {

bool contains_ignoring_case(std::string_view text, std::string_view needle) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                     [&](char a, char b) { return lower(a) == lower(b); }) != text.end();
}

std::uint64_t session_figure(const session& s, std::string_view sort) {
  if (sort == "frames_in") return s.frames_in;
  if (sort == "messages_in") return s.messages_in;
  if (sort == "messages_out") return s.messages_out;
  if (sort == "backlog_bytes") return s.sink->queued_bytes();
  if (sort == "subscriptions") return s.subs.size();
  return 0;
}

}  // namespace

engine::connection_keys_slice engine::connection_keys(std::uint64_t after, std::size_t max, std::string_view filter,
                                                      std::string_view sort) const {
  const auto& sessions = impl_->sessions_;
  connection_keys_slice out;
  out.last = after;
  auto it = sessions.upper_bound(after);
  for (; it != sessions.end() && out.looked_at < max; ++it, ++out.looked_at) {
    const session& s = *it->second;
    out.last = it->first;
    if (!filter.empty() && !contains_ignoring_case(s.info.remote_endpoint, filter) &&
        !contains_ignoring_case(s.login, filter) && !contains_ignoring_case(s.client_id, filter))
      continue;
    out.matched.emplace_back(it->first, session_figure(s, sort));
  }
  out.done = it == sessions.end();
  return out;
}

json engine::connection_json(std::uint64_t session_id) const {
  auto found = impl_->sessions_.find(session_id);
  if (found == impl_->sessions_.end()) return nullptr;
  const session* s = found->second.get();
  json subs = json::array();
  for (const auto& [sid, sub] : s->subs) {
    subs.push_back(json{{"id", sid},
                        {"destination", stomp::printable_utf8(sub->destination)},
                        {"ack", ack_name(sub->mode)},
                        {"prefetch", sub->prefetch},
                        {"unacked", sub->unacked.size()},
                        {"delivered", sub->delivered},
                        {"durable", sub->durable}});
  }
  std::string state = s->state == session_state::awaiting_connect ? "connecting"
                      : s->state == session_state::connected     ? "connected"
                                                                  : "closing";
  return json{
      {"session", session_id},
      {"remote", s->info.remote_endpoint},
      {"tls", s->info.tls},
      {"transport", s->info.transport},
      {"state", state},
      {"version", std::string(stomp::version_name(s->version))},
      {"login", stomp::printable_utf8(s->login)},
      {"client_id", stomp::printable_utf8(s->client_id)},
      {"connected_ms", std::chrono::duration_cast<std::chrono::milliseconds>(s->opened_at.time_since_epoch()).count()},
      {"frames_in", s->frames_in},
      {"messages_in", s->messages_in},
      {"messages_out", s->messages_out},
      {"transactions", s->txs.size()},
      {"blocked", !s->parked.empty()},
      {"blocked_on", s->parked.empty() ? std::string() : s->blocked_on.detail},
      {"slow_consumer", s->backlogged},
      {"backlog_bytes", s->sink->queued_bytes()},
      {"subscriptions", std::move(subs)},
  };
}

void engine::append_metrics(std::string& text) const {
  prometheus::writer out(text);
  append_metrics(out);
}

void engine::append_metrics(prometheus::writer& out) const {
  prometheus::sliced_families scrape;
  append_metrics(out, scrape);
}

namespace {

// The families with a sample per queue and per durable subscription, in exposition order;
// tandem_messages_in_total (the first) has one per topic as well.
struct destination_family {
  std::string_view name;
  prometheus::metric_type type;
  std::string_view help;
};
constexpr destination_family destination_families[] = {
    {"tandem_messages_in_total", prometheus::metric_type::counter, "Messages accepted for the destination."},
    {"tandem_messages_out_total", prometheus::metric_type::counter, "Messages acked, expired or removed from the destination."},
    {"tandem_messages_pending", prometheus::metric_type::gauge, "Messages waiting for a consumer."},
    {"tandem_messages_inflight", prometheus::metric_type::gauge, "Messages delivered and not yet acked."},
    {"tandem_messages_expired_total", prometheus::metric_type::counter, "Messages that expired before delivery."},
    {"tandem_messages_dead_lettered_total", prometheus::metric_type::counter, "Messages moved to a DLQ (or dropped from one)."},
    {"tandem_destination_bytes", prometheus::metric_type::gauge, "Bytes of messages on the destination."},
    {"tandem_message_groups", prometheus::metric_type::gauge, "Message groups (JMSXGroupID) pinned to a consumer of the queue."},
    {"tandem_message_groups_evicted_total", prometheus::metric_type::counter,
     "Message groups dropped because more than message_group_map_cache_size were pinned."},
    {"tandem_destination_consumers", prometheus::metric_type::gauge, "Subscriptions consuming from the destination."},
};

// Stages of a sliced scrape (prometheus::sliced_families::stage).
enum : int { stage_queues = 0, stage_durables = 1, stage_topics = 2, stage_done = 3 };

// The entries of `map` after key `after` ("" = from the first): map keys are never empty.
template <class Map>
auto entries_after(const Map& map, const std::string& after) {
  return after.empty() ? map.begin() : map.upper_bound(after);
}

}  // namespace

// Label values are names as clients sent them; bytes that are not UTF-8 (names journaled
// before issue 17 may hold them) show as \xNN, since the text format must be UTF-8. The
// writer escapes the rest.
bool engine::append_destination_metrics(prometheus::sliced_families& scrape, std::size_t max) const {
  const auto& self = *impl_;
  if (scrape.families.empty())
    for (const auto& f : destination_families) scrape.families.push_back({f.name, f.type, f.help, {}});
  auto values = [&](const queue& q) {
    return std::array<std::uint64_t, std::size(destination_families)>{
        q.enqueued, q.dequeued, std::uint64_t(self.pending_count(q)), std::uint64_t(q.inflight),
        std::uint64_t(q.expired), std::uint64_t(q.dead_lettered), std::uint64_t(q.bytes),
        std::uint64_t(q.groups.size()), q.groups.evicted(), std::uint64_t(q.consumers.size())};
  };
  auto rows = [&](const std::string& destination, const std::string& subscription, const queue& q) {
    const auto v = values(q);
    for (std::size_t i = 0; i < v.size(); ++i) {
      prometheus::writer w(scrape.families[i].samples);
      if (subscription.empty())
        w.sample(destination_families[i].name, {{"destination", destination}}, v[i]);
      else
        w.sample(destination_families[i].name, {{"destination", destination}, {"subscription", subscription}}, v[i]);
    }
  };
  std::size_t rendered = 0;
  // One stage's entries after scrape.after, up to what is left of `max`; true if the stage is over.
  auto walk = [&](const auto& map, auto render) {
    auto it = entries_after(map, scrape.after);
    for (; it != map.end() && rendered < max; ++it, ++rendered) {
      render(it->first, it->second);
      scrape.after = it->first;
    }
    if (it != map.end()) return false;
    ++scrape.stage;
    scrape.after.clear();
    return true;
  };
  if (scrape.stage == stage_queues &&
      !walk(self.queues_, [&](const std::string& name, const auto& q) { rows(stomp::printable_utf8(name), {}, *q); }))
    return false;
  if (scrape.stage == stage_durables &&
      !walk(self.durables_, [&](const std::string&, const auto& q) {
        rows(stomp::printable_utf8(q->name),
             stomp::printable_utf8(q->client_id) + ":" + stomp::printable_utf8(q->subscription_name), *q);
      }))
    return false;
  if (scrape.stage == stage_topics && !walk(self.topics_, [&](const std::string& name, const topic& t) {
        prometheus::writer(scrape.families.front().samples)
            .sample(destination_families[0].name, {{"destination", stomp::printable_utf8(name)}}, t.enqueued);
      }))
    return false;
  scrape.done = true;
  return true;
}

void engine::append_metrics(prometheus::writer& out, prometheus::sliced_families& scrape) const {
  const auto& self = *impl_;
  while (!append_destination_metrics(scrape, std::numeric_limits<std::size_t>::max())) {
  }
  for (auto& f : scrape.families) out.family(f);

  std::uint64_t subscriptions = 0, connected = 0;
  for (const auto& [id, s] : self.sessions_) {
    subscriptions += s->subs.size();
    if (s->state == session_state::connected) ++connected;
  }
  auto gauge = [&](std::string_view name, std::string_view help, std::uint64_t v) { out.gauge(name, help, v); };
  auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v) { out.counter(name, help, v); };
  gauge("tandem_connections", "Open STOMP connections (sessions).", self.sessions_.size());
  gauge("tandem_connections_connected", "Sessions past CONNECT.", connected);
  counter("tandem_connections_total", "Sessions opened since start.", self.connections_total_);
  counter("tandem_auth_failures_total", "CONNECTs refused for bad credentials.", self.auth_failures_);
  counter("tandem_login_throttled_total",
          "Logins (STOMP and admin) refused at once: their peer address or login failed too often.",
          self.credentials_->throttled());
  gauge("tandem_destinations", "Queues and topics the broker holds.", self.queues_.size() + self.topics_.size());
  gauge("tandem_destinations_limit", "max_destinations.", self.config_.max_destinations);
  counter("tandem_destinations_collected_total", "Unused empty destinations dropped (destination_gc_ms).",
          self.destinations_collected_);
  counter("tandem_destinations_refused_total", "SENDs and SUBSCRIBEs refused at max_destinations.",
          self.destinations_refused_);
  counter("tandem_authorization_denials_total", "SENDs and SUBSCRIBEs refused by the authorization entries.",
          self.authorization_denials_);
  out.family("tandem_dedup_producers_evicted_total", prometheus::metric_type::counter,
             "Producer dedup windows dropped at dedup_max_producers since this broker became master (journal: "
             "persistent sends; memory: the others); such a producer's resend is stored again.");
  out.sample("tandem_dedup_producers_evicted_total", {{"window", "journal"}}, self.dedup_.evicted_journal());
  out.sample("tandem_dedup_producers_evicted_total", {{"window", "memory"}}, self.dedup_.evicted_memory());
  gauge("tandem_subscriptions", "Client subscriptions.", subscriptions);
  gauge("tandem_destination_limit_bytes", "max_destination_bytes: producers wait above it.",
        self.config_.max_destination_bytes);
  gauge("tandem_memory_bytes", "Bytes of messages held in memory.", self.memory_bytes_);
  gauge("tandem_memory_limit_bytes", "max_memory_bytes.", self.config_.max_memory_bytes);
  gauge("tandem_memory_partial_frame_bytes", "Bytes of frames begun and not finished, counted in max_memory_bytes.",
        self.budget_.partial_frame_bytes());
  gauge("tandem_memory_read_buffer_bytes",
        "Bytes of connections' socket read buffers (4 KiB each, 64 KiB while a client streams), counted in "
        "max_memory_bytes.",
        self.budget_.read_buffer_bytes());
  gauge("tandem_memory_transport_buffer_bytes",
        "Bytes TLS and WebSocket connections hold in their transports' buffers (68 KiB per TLS connection; 64 KiB "
        "per WebSocket connection after its first read), counted in max_memory_bytes.",
        self.budget_.transport_buffer_bytes());
  gauge("tandem_memory_write_queue_bytes", "Bytes queued to clients and not yet written, counted in max_memory_bytes.",
        self.budget_.write_queue_bytes());
  gauge("tandem_memory_baseline_bytes",
        "The process's RSS when it started serving, counted in max_memory_bytes (max_memory_counts_baseline; 0 when off).",
        self.budget_.baseline_bytes());
  gauge("tandem_memory_budget_waiting", "Connections that stopped reading mid-frame until memory is freed.",
        self.budget_.waiting());
  counter("tandem_memory_budget_waits_total", "Times a connection stopped reading mid-frame at max_memory_bytes.",
          self.budget_.waits_total());
  gauge("tandem_store_bytes", "Live journal bytes plus appends in flight.", self.store_bytes());
  gauge("tandem_store_limit_bytes", "max_store_bytes.", self.config_.max_store_bytes);
  gauge("tandem_producers_blocked", "Connections whose SEND waits for space.", self.blocked_.size());
  counter("tandem_send_timeouts_total", "SENDs refused after send_timeout.", self.send_timeouts_);
  counter("tandem_duplicates_dropped_total", "Resent messages dropped by duplicate detection.", self.duplicates_);
  counter("tandem_store_read_errors_total", "Messages the store could not read at dispatch.", self.read_errors_);
  gauge("tandem_store_reads_in_flight",
        "Pending message bodies being read from the store off the io thread; one that stays up means the store "
        "does not answer reads.",
        self.store_reads_in_flight());
  counter("tandem_selector_skips_total",
          "Pending messages a queue with selector consumers looked at and left (no ready consumer matches).",
          self.selector_skips_);
  counter("tandem_store_unreadable_messages_total",
          "Messages set aside because their record in the store is damaged (kept in the store, skipped).",
          self.unreadable_);
  self.append_schedule_metrics(out);
}

}  // namespace tandem::broker
