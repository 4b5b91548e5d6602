// Scheduled and delayed delivery: a SEND with AMQ_SCHEDULED_* headers becomes a schedule
// entry (schedule_send), the server's one timer calls fire_due at the earliest entry's time,
// and the admin API lists and cancels entries. The pure rules are in schedule.h.
//
// Durability. An entry is a message_add on the target journal::format::scheduler_target
// whose deliver_at_ms is its next firing (format.h section 5, "Scheduled messages"). It is
// appended before the SEND's RECEIPT. A firing is ONE batch record: { remove the entry,
// add the fired message on its destination's targets (when persistent), add the entry again
// with its next state (a new msg_seq) }. After a crash or failover the log holds either the
// firing whole or none of it: the new master fires it (again, for the first time as far as
// any durable state knows), so no firing is lost or doubled. A non-persistent fired message
// is handed to its consumers only once the batch is durable, for the same reason.
// Without a store (memory-only broker) entries live in memory only.
//
// The in-memory side is schedule_table: one entry per pending schedule (seq, due, job id)
// and one heap. Bodies stay in the store and are read when an entry fires or is listed;
// at a takeover the table is built from the store's index (recover_schedules).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broker/engine/destinations.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/log.h"
#include "broker/prometheus.h"

namespace tandem::broker {

using namespace detail;

namespace {

constexpr std::string_view scheduler_key = journal::format::scheduler_target;

}  // namespace

bool engine::impl::schedule_send(session& s, stomp::frame& f, const schedule_spec& spec, transaction* tx,
                                 message&& msg) {
  const std::string destination(f.get("destination").value_or(""));
  for (auto part : split_composite(destination))
    if (part.starts_with("/temp-") || is_temporary(part)) {
      fail(s, {errc::bad_schedule, fmt::format("{} is temporary: it may be gone when the schedule fires; "
                                               "schedule to a /queue/ or /topic/.", part)}, &f);
      return true;
    }
  const std::int64_t now = wall_ms_();
  auto state = first_state(spec, now);
  if (!state) {
    fail(s, {errc::bad_schedule, fmt::format("AMQ_SCHEDULED_CRON '{}' matches no time in the next five years.",
                                             spec.cron_text)}, &f);
    return true;
  }
  if (tx) {
    // As ActiveMQ's SchedulerBroker: a transacted scheduled SEND is scheduled when the
    // transaction commits (its delay counts from the COMMIT) and dropped by ABORT.
    auto bytes = message_bytes(msg);
    tx->bytes += bytes;
    memory_bytes_ += bytes;
    tx->sends.push_back(tx_send{destination, std::move(msg), true});
    add_receipt(s, f, 0);
    return true;
  }
  msg.msg_seq = allocate_seq();
  msg.message_id = fmt::format("ID:{}-{}-{}", config_.broker_name, run_token_, msg.msg_seq);
  msg.deliver_at_ms = state->due_ms;
  msg.headers.emplace_back(std::string(header_schedule_destination), destination);
  msg.headers = entry_headers(msg.headers, *state, false);
  ++scheduled_total_;
  schedule_table::entry e{state->due_ms, msg.message_id, nullptr};
  if (!store_) {
    dedup_.stored(msg.producer_id, msg.producer_seq);
    const auto seq = msg.msg_seq;
    e.memory = std::make_shared<const message>(std::move(msg));
    schedules_.add(seq, std::move(e));
    add_receipt(s, f, 0);
    schedule_changed();
    return true;
  }
  dedup_.begin_append(msg.producer_id, msg.producer_seq);
  auto slot = add_receipt(s, f, 1);
  const auto seq = msg.msg_seq;
  auto producer = std::make_pair(msg.producer_id, msg.producer_seq);
  store_->append(journal::change{journal::message_add{std::move(msg), {std::string(scheduler_key)}}},
                 guard([this, sid = s.id, slot, seq, e = std::move(e), producer](std::error_code ec) mutable {
                   dedup_.end_append(producer.first, producer.second);
                   if (!ec) {
                     schedules_.add(seq, std::move(e));
                     schedule_changed();
                   }
                   settle_slot(sid, slot, ec, errc::message_not_stored, "scheduled message");
                 }));
  return true;
}

// The entry is written as the non-transactional path writes it, but as an item of the
// COMMIT's batch: the COMMIT's RECEIPT follows its durability, and after a failover the
// log holds the whole transaction (entry included) or none of it. The producer seq is
// in flight (dedup.h) until the caller's completion ends it, as for the COMMIT's sends.
std::optional<engine::impl::planned_schedule> engine::impl::plan_tx_schedule(tx_send& send,
                                                                            std::vector<journal::batch_item>& items) {
  message& msg = send.msg;
  auto parsed = parse_schedule(msg.headers);
  auto state = parsed.scheduled ? first_state(parsed.spec, wall_ms_()) : std::nullopt;
  if (!state) {
    // Checked at SEND; a cron that matched then matches within five years of now as well.
    log::error("engine", "scheduled SEND of a transaction has no time at COMMIT: dropped",
               {log::kv("destination", send.destination)});
    return std::nullopt;
  }
  msg.msg_seq = allocate_seq();
  msg.message_id = fmt::format("ID:{}-{}-{}", config_.broker_name, run_token_, msg.msg_seq);
  msg.deliver_at_ms = state->due_ms;
  msg.headers.emplace_back(std::string(header_schedule_destination), send.destination);
  msg.headers = entry_headers(msg.headers, *state, false);
  ++scheduled_total_;
  schedule_table::entry e{state->due_ms, msg.message_id, nullptr};
  const auto seq = msg.msg_seq;
  if (!store_) {
    dedup_.stored(msg.producer_id, msg.producer_seq);
    e.memory = std::make_shared<const message>(std::move(msg));
    schedules_.add(seq, std::move(e));
    schedule_changed();
    return std::nullopt;
  }
  dedup_.begin_append(msg.producer_id, msg.producer_seq);
  planned_schedule p{seq, std::move(e), msg.producer_id, msg.producer_seq};
  items.emplace_back(journal::message_add{std::move(msg), {std::string(scheduler_key)}});
  return p;
}

void engine::impl::schedule_changed() {
  if (schedule_listener_) schedule_listener_();
}

void engine::impl::fire_due() {
  if (shutting_down_) return;
  const std::int64_t now = wall_ms_();
  while (auto popped = schedules_.pop_due(now)) fire(popped->first, std::move(popped->second), now);
  flush();
}

// One entry is due: deliver it and/or write its next state, as one batch (file comment).
// An entry's body not in memory is read off the io thread first (body_read.cpp). Meanwhile
// the entry is out of schedules_ and its job counts as firing, so a cancel marks it
// cancelled_in_flight_ and the read's completion removes the entry instead of firing it;
// the entry stays in the store until its firing batch (or that removal) is durable, so a
// failover meanwhile makes the new master fire it, once.
void engine::impl::fire(std::uint64_t seq, schedule_table::entry e, std::int64_t now) {
  message_ptr m = e.memory;
  if (!m && store_) m = store_->cached(scheduler_key, seq);
  if (!m && store_) {
    firing_.insert(e.job_id);
    read_body_off_thread(nullptr, seq, nullptr, std::string(scheduler_key),
                         [this, seq, e = std::move(e)](queue*, body_read r) mutable {
                           const bool cancelled = cancelled_in_flight_.contains(e.job_id);
                           firing_.erase(firing_.find(e.job_id));
                           if (!firing_.contains(e.job_id)) cancelled_in_flight_.erase(e.job_id);
                           if (r.gone) return;
                           if (cancelled) {
                             std::vector<journal::batch_item> one;
                             one.emplace_back(journal::message_remove{std::string(scheduler_key), seq});
                             append_removes(std::move(one), {});
                           } else if (!r.body) {
                             // Left in the store: the next master (or restart) tries again. Not
                             // retried here, so a bad record cannot spin the timer.
                             log::error("engine", "scheduled message unreadable: not fired",
                                        {log::kv("job_id", e.job_id), log::kv("error", r.error.message())});
                           } else {
                             fire_with_body(seq, std::move(e), std::move(r.body), wall_ms_());
                           }
                           flush();
                         });
    return;
  }
  if (m) fire_with_body(seq, std::move(e), std::move(m), now);
}

void engine::impl::fire_with_body(std::uint64_t seq, schedule_table::entry e, message_ptr m, std::int64_t now) {
  auto parsed = parse_schedule(m->headers);
  std::int64_t left = 0;
  if (auto l = find_header(m->headers, header_schedule_left)) parse_number(*l, left);
  const std::string destination(find_header(m->headers, header_schedule_destination).value_or(""));
  firing_plan plan;
  if (parsed.scheduled) {
    plan = plan_firing(parsed.spec, {e.due_ms, left}, now);
  } else {
    plan.deliver = true;  // cannot happen for an entry we wrote; deliver it rather than keep it forever
  }
  ++fired_total_;
  note_lateness(now - e.due_ms);

  const bool journaled = store_ && !e.memory;
  journal::batch b;
  if (journaled) b.items.emplace_back(journal::message_remove{std::string(scheduler_key), seq});
  std::vector<planned_send> plans;
  if (plan.deliver) {
    message fired = *m;
    fired.headers = fired_headers(m->headers, e.job_id);
    fired.deliver_at_ms = 0;
    fired.redeliveries = 0;
    fired.producer_id.clear();  // the SEND's producer seq belongs to the entry, not to each firing
    fired.producer_seq = 0;
    for (const auto& [name, to_topic] : fan_out(destination)) {
      std::optional<journal::message_add> record;
      plans.push_back(plan_send(name, to_topic, message(fired), record));
      if (record) b.items.emplace_back(std::move(*record));
    }
  }
  std::vector<std::pair<std::uint64_t, schedule_table::entry>> again;
  auto requeue = [&](const schedule_state& st, bool child) {
    auto copy = std::make_shared<message>(*m);
    copy->msg_seq = allocate_seq();
    copy->deliver_at_ms = st.due_ms;
    copy->headers = entry_headers(m->headers, st, child);
    copy->producer_id.clear();
    copy->producer_seq = 0;
    if (journaled) b.items.emplace_back(journal::message_add{*copy, {std::string(scheduler_key)}});
    again.emplace_back(copy->msg_seq, schedule_table::entry{st.due_ms, e.job_id, journaled ? nullptr : copy});
  };
  if (plan.child) requeue(*plan.child, true);
  if (plan.next) requeue(*plan.next, false);

  auto finish = [this, plans = std::move(plans), again = std::move(again), job = e.job_id](std::error_code ec) mutable {
    firing_.erase(firing_.find(job));
    const bool cancelled = cancelled_in_flight_.contains(job);
    if (!firing_.contains(job)) cancelled_in_flight_.erase(job);
    if (ec) {
      for (const auto& p : plans) unplan_send(p);
      return;
    }
    for (const auto& p : plans) apply_send(p);
    if (cancelled) {
      std::vector<journal::batch_item> removes;
      for (const auto& [s, en] : again)
        if (!en.memory) removes.emplace_back(journal::message_remove{std::string(scheduler_key), s});
      if (!removes.empty()) append_removes(std::move(removes), {});
      return;
    }
    for (auto& [s, en] : again) schedules_.add(s, std::move(en));
    schedule_changed();
  };
  firing_.insert(e.job_id);
  if (!journaled) {
    finish({});
    return;
  }
  store_->append(journal::change{std::move(b)}, guard(std::move(finish)));
}

// Where a scheduled message goes when it fires, resolved then (as ActiveMQ does): each part
// of a composite destination, plus a virtual topic's consumer queues that exist by then.
std::vector<std::pair<std::string, bool>> engine::impl::fan_out(std::string_view destination) {
  std::vector<std::pair<std::string, bool>> out;
  for (auto part : split_composite(destination)) {
    const bool to_topic = is_topic(part);
    out.emplace_back(std::string(part), to_topic);
    auto vt = to_topic ? virtual_topic_name(part) : std::string_view{};
    if (!vt.empty())
      for (const auto& [qname, q] : queues_)
        if (is_virtual_topic_queue(qname, vt)) out.emplace_back(qname, false);
  }
  return out;
}

// From the index alone: it keeps each entry's due time and job id (live_index::schedules(),
// format.h section 5), so a takeover reads no entry; reading each one cost ~60 us (6 s at
// 100,000). An entry the index has no schedule for (a store that does not keep them: the
// PostgreSQL store) is read as before.
void engine::impl::recover_schedules() {
  const auto* entries = store_->index().messages(scheduler_key);
  if (!entries) return;
  const auto& known = store_->index().schedules();
  std::vector<std::uint64_t> unknown;
  auto k = known.begin();
  for (const auto& [seq, ref] : *entries) {
    while (k != known.end() && k->first < seq) ++k;  // both in msg_seq order
    if (k != known.end() && k->first == seq)
      schedules_.add(seq, {k->second.deliver_at_ms, std::string(k->second.job_id), nullptr});
    else
      unknown.push_back(seq);
  }
  for (auto seq : unknown) {
    auto r = store_->read(scheduler_key, seq);
    if (!r) {
      ++read_errors_;
      log::error("engine", "scheduled message unreadable at recovery: not scheduled",
                 {log::kv("msg_seq", seq), log::kv("error", r.error().message())});
      continue;
    }
    const auto& m = *r.value();
    schedules_.add(seq, {m.deliver_at_ms, m.message_id, nullptr});
  }
  log::info("engine", "schedules recovered",
            {log::kv("entries", schedules_.size()), log::kv("read", unknown.size())});
}

// ---- admin ----

// The page is chosen at once; the entries not in memory are read off the io thread (issue
// 17, finding 8: a page of 1,000 entries was up to 1,000 preads here), and the page is
// written when the last read is in. An entry that fired or was cancelled meanwhile keeps
// its job id and due time, without the details its body gives.
void engine::impl::scheduled_json(std::size_t offset, std::size_t limit, std::function<void(nlohmann::json)> done) {
  struct page {
    struct item {
      std::uint64_t seq;
      std::string job_id;
      std::int64_t due_ms;
      message_ptr body;
    };
    std::vector<item> items;
    std::size_t total = 0, offset = 0, limit = 0;
    std::size_t reads_pending = 1;  // 1 until every read is asked
    std::function<void(nlohmann::json)> done;
  };
  auto st = std::make_shared<page>();
  st->total = schedules_.size();
  st->offset = offset;
  st->limit = limit;
  st->done = std::move(done);
  for (const auto& [seq, e] : schedules_.page(offset, limit)) {
    message_ptr m = e->memory;
    if (!m && store_) m = store_->cached(scheduler_key, seq);
    st->items.push_back({seq, e->job_id, e->due_ms, std::move(m)});
  }
  auto finish = [st] {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : st->items) {
      nlohmann::json item{{"job_id", it.job_id}, {"next_fire_ms", it.due_ms}};
      if (const auto& m = it.body) {
        auto text = [&](std::string_view name) { return std::string(find_header(m->headers, name).value_or("")); };
        item["destination"] = text(header_schedule_destination);
        item["delay_ms"] = text(header_scheduled_delay);
        item["period_ms"] = text(header_scheduled_period);
        item["repeat"] = text(header_scheduled_repeat);
        item["cron"] = text(header_scheduled_cron);
        item["left"] = text(header_schedule_left);
        item["persistent"] = m->persistent;
        item["body_bytes"] = m->body.size();
      }
      items.push_back(std::move(item));
    }
    st->done({{"total", st->total}, {"offset", st->offset}, {"limit", st->limit}, {"items", std::move(items)}});
  };
  for (std::size_t i = 0; i < st->items.size(); ++i) {
    if (st->items[i].body || !store_) continue;
    ++st->reads_pending;
    read_body_off_thread(nullptr, st->items[i].seq, nullptr, std::string(scheduler_key),
                         [st, i, finish](queue*, body_read r) {
                           st->items[i].body = std::move(r.body);
                           if (--st->reads_pending == 0) finish();
                         });
  }
  if (--st->reads_pending == 0) finish();
}

std::uint64_t engine::impl::cancel_scheduled(std::string_view job_id,
                                             std::function<void(std::error_code, std::uint64_t)> done) {
  schedule_selection which;
  if (!job_id.empty()) which.job_id = job_id;
  return cancel_schedules(which, std::move(done));
}

// The one cancel path (the admin API, ActiveMQ.Scheduler.Management's REMOVE and REMOVEALL):
// the chosen entries leave the table at once and their removal is journaled as one record;
// a job whose firing is being made durable is marked so that its completion removes what it
// wrote instead of scheduling it again (fire_with_body).
std::uint64_t engine::impl::cancel_schedules(const schedule_selection& which,
                                             std::function<void(std::error_code, std::uint64_t)> done) {
  std::vector<journal::batch_item> removes;
  std::vector<std::uint64_t> chosen;
  for (const auto& [seq, e] : schedules_.entries()) {
    if (which.job_id && e.job_id != *which.job_id) continue;
    if (which.due_range && (e.due_ms < which.due_range->first || e.due_ms > which.due_range->second)) continue;
    chosen.push_back(seq);
  }
  std::uint64_t cancelled = 0;
  for (auto seq : chosen) {  // a job has one entry, plus the children of its cron runs
    const auto* e = schedules_.find(seq);
    if (!e->memory && store_) removes.emplace_back(journal::message_remove{std::string(scheduler_key), seq});
    schedules_.remove(seq);
    ++cancelled;
  }
  // A job whose firing is under way has left the table: a time range, which selects by the
  // table's next firing times (as ActiveMQ's index), does not reach it; the rest do.
  if (!which.due_range) {
    if (!which.job_id) {
      for (const auto& job : firing_) cancelled_in_flight_.insert(job), ++cancelled;
    } else if (firing_.contains(std::string(*which.job_id))) {
      cancelled_in_flight_.insert(std::string(*which.job_id));
      ++cancelled;
    }
  }
  if (removes.empty()) {
    if (done) done({}, cancelled);
  } else {
    append_removes(std::move(removes), [done = std::move(done), cancelled](std::error_code ec, std::uint64_t) {
      if (done) done(ec, cancelled);
    });
  }
  return cancelled;
}

void engine::impl::note_lateness(std::int64_t late_ms) {
  const double late = static_cast<double>(std::max<std::int64_t>(0, late_ms));
  std::size_t i = 0;
  while (i < lateness_bounds_ms.size() && late > lateness_bounds_ms[i]) ++i;
  ++lateness_buckets_[i];
  lateness_sum_ms_ += late;
}

void engine::impl::append_schedule_metrics(prometheus::writer& out) const {
  out.gauge("tandem_scheduled_pending", "Schedule entries (AMQ_SCHEDULED_*) waiting for their time.", schedules_.size());
  out.counter("tandem_scheduled_total", "SENDs accepted as schedules.", scheduled_total_);
  out.counter("tandem_scheduled_fired_total", "Schedule entries fired (deliveries and cron runs started).",
              fired_total_);
  out.histogram("tandem_scheduled_fire_lateness_ms",
                "How long after its due time (wall clock) an entry fired, before the journal commit.",
                lateness_bounds_ms, lateness_buckets_, lateness_sum_ms_);
}

// ---- the engine's API (engine.h) ----

std::optional<std::int64_t> engine::next_schedule_ms() { return impl_->schedules_.earliest(); }

void engine::fire_schedules() { impl_->fire_due(); }

void engine::set_schedule_listener(std::function<void()> changed) { impl_->schedule_listener_ = std::move(changed); }

void engine::scheduled_json(std::size_t offset, std::size_t limit, std::function<void(nlohmann::json)> done) {
  impl_->scheduled_json(offset, limit, std::move(done));
}

std::uint64_t engine::cancel_scheduled(std::string_view job_id,
                                       std::function<void(std::error_code, std::uint64_t)> done) {
  return impl_->cancel_scheduled(job_id, std::move(done));
}

}  // namespace tandem::broker
