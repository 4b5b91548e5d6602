// Scheduled and delayed delivery: a SEND with AMQ_SCHEDULED_* headers becomes a schedule
// entry (schedule_send), the server's one timer calls fire_due at the earliest entry's time,
// and the admin API lists and cancels entries. The pure rules are in schedule.h.
//
// Durability. An entry is a message_add on the target journal::format::scheduler_target
// whose deliver_at_ms is its next firing (format.h section 5, "Scheduled messages"). It is
// appended before the SEND's RECEIPT. A firing is part of ONE batch record: { remove the
// entry, add the fired message on its destination's targets (when persistent), add the
// entry again with its next state (a new msg_seq) }, for every entry of its round (the
// entries due at one timer expiry, at most round_max_entries / round_max_bytes). After a
// crash or failover the log holds either the round whole or none of it: the new master
// fires its entries (again, for the first time as far as any durable state knows), so no
// firing is lost or doubled. A non-persistent fired message is handed to its consumers
// only once the batch is durable, for the same reason.
// Without a store (memory-only broker) entries live in memory only.
//
// The in-memory side is schedule_table: one entry per pending schedule (seq, due, job id)
// and one heap. Bodies stay in the store and are read when an entry fires or is listed
// (not read again when the store's cache holds them: a fired message and a next state are
// offered to it as they are appended, journal::message_store::remember);
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

// Every entry due now fires, in (due, seq) order. Those whose bodies are in memory (the
// store's cache, or a memory-only entry) go into rounds at once: a round is ONE journal
// batch { for each entry: remove it, add its fired message, add its next state } and one
// completion, so N entries due at one timer expiry cost one append and one group commit
// instead of N (at 6,667 firings a second the io thread did not keep up with one append,
// one completion and one dispatch per firing). The others are read off the io thread,
// together, and fire as rounds of their own when the reads are in (read_then_fire); the
// entries due after the first of them wait with them, so the firings keep due order.
void engine::impl::fire_due() {
  if (shutting_down_) return;
  const std::int64_t now = wall_ms_();
  firing_round round;
  std::vector<std::pair<std::uint64_t, schedule_table::entry>> unread;
  while (auto popped = schedules_.pop_due(now)) {
    auto& [seq, e] = *popped;
    message_ptr m = e.memory;
    if (!m && store_) m = store_->cached(scheduler_key, seq);
    if (!m || !unread.empty()) {  // after one that waits for a read, the rest wait with it: due order
      unread.emplace_back(seq, std::move(e));
      continue;
    }
    add_firing(round, seq, std::move(e), std::move(m), now);
    if (round.jobs.size() >= round_max_entries || round.bytes >= round_max_bytes) commit_round(std::exchange(round, {}));
  }
  commit_round(std::move(round));
  if (!unread.empty()) read_then_fire(std::move(unread));
  prefetch_due_soon(now);
  flush();
}

// Bodies stay on disk (memory per schedule is the index's and the table's only), so an
// entry fires from the store's cache when something read it there: the reader thread's
// read-ahead (the entry's msg_seq neighbours, which are its due-time neighbours only when
// schedules were sent in due order), or this: every prefetch_ms / 2 at the most, the
// entries due within the next prefetch_ms are asked for, whatever their msg_seq. The
// answers are only filed in the cache; a firing that finds its body evicted reads it.
void engine::impl::prefetch_due_soon(std::int64_t now) {
  if (!store_ || !store_->reads_into_cache()) return;
  if (prefetched_until_ms_ > now + prefetch_ms) prefetched_until_ms_ = now;  // the clock went back
  if (now + prefetch_ms / 2 < prefetched_until_ms_) return;
  const auto after = std::max(prefetched_until_ms_, now);
  prefetched_until_ms_ = now + prefetch_ms;
  for (auto seq : schedules_.due_within(after, prefetched_until_ms_, prefetch_max))
    if (!store_->cached(scheduler_key, seq)) store_->read_async(scheduler_key, seq, [](auto&&) {});
}

// Meanwhile the entries are out of schedules_ and their jobs count as firing, so a cancel
// marks cancelled_in_flight_ and the reads' completion removes those entries instead of
// firing them; each entry stays in the store until its firing batch (or that removal) is
// durable, so a failover meanwhile makes the new master fire it, once. The reads are asked
// all at once (the store reads each record once however many ask, and reads ahead), and
// their entries fire together when the last is in.
void engine::impl::read_then_fire(std::vector<std::pair<std::uint64_t, schedule_table::entry>> unread) {
  struct reads {
    std::vector<std::pair<std::uint64_t, schedule_table::entry>> entries;
    std::vector<body_read> got;
    std::size_t pending = 1;  // 1 until every read is asked
  };
  auto st = std::make_shared<reads>();
  st->entries = std::move(unread);
  st->got.resize(st->entries.size());
  auto all_in = [this, st] {
    firing_round round;
    std::vector<journal::batch_item> removes;
    const std::int64_t now = wall_ms_();
    for (std::size_t i = 0; i < st->entries.size(); ++i) {
      auto& [seq, e] = st->entries[i];
      auto& r = st->got[i];
      const bool cancelled = cancelled_in_flight_.contains(e.job_id);
      firing_.erase(firing_.find(e.job_id));
      if (!firing_.contains(e.job_id)) cancelled_in_flight_.erase(e.job_id);
      if (r.gone) continue;
      if (cancelled) {
        removes.emplace_back(journal::message_remove{std::string(scheduler_key), seq});
      } else if (!r.body) {
        // Left in the store: the next master (or restart) tries again. Not retried here,
        // so a bad record cannot spin the timer.
        log::error("engine", "scheduled message unreadable: not fired",
                   {log::kv("job_id", e.job_id), log::kv("error", r.error.message())});
      } else {
        add_firing(round, seq, std::move(e), std::move(r.body), now);
        if (round.jobs.size() >= round_max_entries || round.bytes >= round_max_bytes)
          commit_round(std::exchange(round, {}));
      }
    }
    if (!removes.empty()) append_removes(std::move(removes), {});
    commit_round(std::move(round));
    flush();
  };
  for (std::size_t i = 0; i < st->entries.size(); ++i) {
    const auto& [seq, e] = st->entries[i];
    firing_.insert(e.job_id);
    ++st->pending;
    read_body_off_thread(nullptr, seq, nullptr, std::string(scheduler_key), [st, i, all_in](queue*, body_read r) {
      st->got[i] = std::move(r);
      if (--st->pending == 0) all_in();
    });
  }
  if (--st->pending == 0) all_in();  // a store without a reader thread answered inline
}

// One entry's firing, added to round `r` (file comment): its fired message planned on each
// destination, its next state (a cron run's child, the next period), its job held as firing.
void engine::impl::add_firing(firing_round& r, std::uint64_t seq, schedule_table::entry e, message_ptr m,
                              std::int64_t now) {
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
  const std::uint64_t size = message_bytes(*m);
  if (journaled) r.b.items.emplace_back(journal::message_remove{std::string(scheduler_key), seq});
  if (plan.deliver) {
    message fired = *m;
    fired.headers = fired_headers(m->headers, e.job_id);
    fired.deliver_at_ms = 0;
    fired.redeliveries = 0;
    fired.producer_id.clear();  // the SEND's producer seq belongs to the entry, not to each firing
    fired.producer_seq = 0;
    for (const auto& [name, to_topic] : fan_out(destination)) {
      std::optional<journal::message_add> record;
      r.plans.push_back(plan_send(name, to_topic, message(fired), record));
      if (record) {
        // Its consumers are usually waiting: the store keeps the decoded copy, so the
        // delivery reads nothing back (journal::message_store::remember). Not a large one:
        // copying it costs the io thread more than the reader thread's read.
        if (size <= remember_max_bytes)
          store_->remember(record->msg_seq, std::make_shared<const message>(static_cast<const message&>(*record)));
        r.b.items.emplace_back(std::move(*record));
        r.bytes += size;
      }
    }
  }
  auto requeue = [&](const schedule_state& st, bool child) {
    auto copy = std::make_shared<message>(*m);
    copy->msg_seq = allocate_seq();
    copy->deliver_at_ms = st.due_ms;
    copy->headers = entry_headers(m->headers, st, child);
    copy->producer_id.clear();
    copy->producer_seq = 0;
    if (journaled) {
      r.b.items.emplace_back(journal::message_add{*copy, {std::string(scheduler_key)}});
      r.bytes += size;
      if (size <= remember_max_bytes) store_->remember(copy->msg_seq, copy);
    }
    r.again.emplace_back(copy->msg_seq, schedule_table::entry{st.due_ms, e.job_id, journaled ? nullptr : copy});
  };
  if (plan.child) requeue(*plan.child, true);
  if (plan.next) requeue(*plan.next, false);
  r.bytes += 64;
  firing_.insert(e.job_id);
  r.jobs.push_back(std::move(e.job_id));
}

// The round's batch is durable (or not): its messages go to their consumers and its next
// states into the table, except those of a job cancelled meanwhile, whose next states are
// removed again (cancel_schedules). An empty batch (memory-only entries) completes at once.
void engine::impl::commit_round(firing_round&& r) {
  if (r.jobs.empty()) return;
  auto finish = [this, plans = std::move(r.plans), again = std::move(r.again),
                 jobs = std::move(r.jobs)](std::error_code ec) mutable {
    std::set<std::string_view> cancelled;
    for (const auto& job : jobs) {
      firing_.erase(firing_.find(job));
      if (cancelled_in_flight_.contains(job)) cancelled.insert(job);
      if (!firing_.contains(job)) cancelled_in_flight_.erase(job);
    }
    if (ec) {
      for (const auto& p : plans) unplan_send(p);
      return;
    }
    for (const auto& p : plans) apply_send(p);
    std::vector<journal::batch_item> removes;
    bool added = false;
    for (auto& [s, en] : again) {
      if (cancelled.contains(en.job_id)) {
        if (!en.memory) removes.emplace_back(journal::message_remove{std::string(scheduler_key), s});
        continue;
      }
      schedules_.add(s, std::move(en));
      added = true;
    }
    if (!removes.empty()) append_removes(std::move(removes), {});
    if (added) schedule_changed();
  };
  if (r.b.items.empty()) {
    finish({});
    return;
  }
  store_->append(journal::change{std::move(r.b)}, guard(std::move(finish)));
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
// 100,000). Both stores fill it at open (the PostgreSQL store from one streamed query). An
// entry the index has no schedule for (its record did not decode) is read and logged.
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

std::optional<std::int64_t> engine::next_wake_ms() {
  auto due = impl_->schedules_.earliest();
  // fire_schedules then reads ahead and moves prefetched_until_ms_ past *due (prefetch_due_soon).
  if (due && impl_->store_ && impl_->store_->reads_into_cache() && *due > impl_->prefetched_until_ms_)
    return *due - impl::prefetch_ms / 2;
  return due;
}

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
