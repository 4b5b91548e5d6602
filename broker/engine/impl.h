// engine::impl: the state and the operations of the engine. One file per frame family (as
// Mosquitto's handle_*.c) and one per concern of the core; broker/engine/README.md is the map.
// Threads: the io thread only (engine.h). Journal completions go through guard(): one that
// runs after the engine is gone does nothing.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "broker/engine.h"
#include "broker/engine/authorization.h"
#include "broker/engine/credentials.h"
#include "broker/engine/dedup.h"
#include "broker/engine/policy.h"
#include "broker/engine/schedule.h"
#include "broker/engine/scheduler_request.h"
#include "broker/engine/state.h"
#include "broker/errc.h"
#include "broker/memory_budget.h"
#include "journal/message_store.h"

namespace tandem::broker {

struct engine::impl {
  impl(const engine_config& config, journal::message_store* store);

  // ---- session.cpp: frame dispatch and session state ----
  detail::session* find_session(session_id id);
  void handle_frame(detail::session& s, stomp::frame&& f);
  // The frame's destination when each of its parts (composite: "a,b") names a /queue/,
  // /topic/ or temporary destination (broker/engine/destinations.h).
  result<std::string_view> checked_destination(const stomp::frame& f) const;
  // One destination as the broker keeps it: a /temp-queue/ or /temp-topic/ of this session
  // becomes its broker-wide /remote-temp-... name (made on first use); a /remote-temp-...
  // must exist, and only its own session may consume from it (`consume`).
  result<std::string> resolve_destination(detail::session& s, std::string_view dest, bool consume);
  result<std::string> resolve_composite_subscribe(detail::session& s, std::string_view dest);
  std::string temp_token(const detail::session& s) const;
  void delete_temp_destinations(detail::session& s);
  void end_session_state(detail::session& s);  // rollback and return everything; session stays
  void release_client_id(detail::session& s);  // lets another connection CONNECT with it

  // ---- connect.cpp: CONNECT / STOMP, authentication, DISCONNECT ----
  void on_connect(detail::session& s, stomp::frame& f);
  result<void> authenticate(detail::session& s, const stomp::frame& f);
  void on_disconnect(detail::session& s, stomp::frame& f);

  // ---- access.cpp: per-destination authorization (authorization.h) ----
  // `p` on `destination`, and admin too when the destination does not exist yet. The
  // failure names the login, the destination, the permission and the groups that have it.
  result<void> authorize_use(const detail::session& s, std::string_view destination, permission p);
  std::vector<std::string> session_groups(const detail::session& s) const;
  failure owned_by_other(const detail::queue& durable, const detail::session& s) const;

  // ---- login.cpp: the password check of CONNECT, off the io thread ----
  // Checks CONNECT's login and passcode (on a worker when offload_ is set; reading pauses
  // meanwhile), stores the verdict in the session, then runs on_connect.
  void check_login(detail::session& s, stomp::frame&& f);
  // The stored verdict as authenticate's answer (computed inline when there is none).
  result<void> login_result(detail::session& s, std::string_view login, std::string_view passcode);
  void resume_after_login(session_id sid, const login_verdict& verdict, stomp::frame&& connect);

  // ---- receipts.cpp: RECEIPT slots and the one ERROR path ----
  // A receipt slot for `f` (when it carries `receipt`) waiting for `waiting` completions;
  // returns its id, 0 when the frame asked for no receipt.
  // `kind` duplicate: the RECEIPT says so (tandem-duplicate:true; the SEND was a resend of a
  // message already stored, and nothing was stored for it).
  std::uint64_t add_receipt(detail::session& s, const stomp::frame& f, std::uint32_t waiting,
                            detail::receipt_kind kind = detail::receipt_kind::plain);
  void complete_slot(session_id sid, std::uint64_t slot);
  // Refuses the frame: ERROR (`why`, with the receipt id of `cause`) after the receipts
  // already owed, then the connection closes; later frames are ignored.
  void fail(detail::session& s, failure why, const stomp::frame* cause);
  // The same for a frame whose slot already waits: the slot becomes the ERROR.
  void fail_slot(session_id sid, std::uint64_t slot, failure why);
  // The journal's answer for a frame whose receipt waits for one append: the slot
  // completes, or becomes ERROR `code` ("The journal refused the <what>: <reason>.").
  void settle_slot(session_id sid, std::uint64_t slot, std::error_code ec, errc code, const char* what);
  journal::completion receipt_when_durable(session_id sid, std::uint64_t slot, errc code, const char* what);
  void flush_slots(detail::session& s);
  void send_frame(detail::session& s, const stomp::frame& f);

  // ---- send.cpp: SEND, flow control, plan_send / apply_send ----
  void on_send(detail::session& s, stomp::frame&& f);
  struct send_request;
  result<send_request> read_send(detail::session& s, const stomp::frame& f);
  // Whether a SEND to `destination` may go ahead now, or why it must wait.
  result<void> check_space(std::string_view destination, bool to_topic, bool persistent);
  void park(detail::session& s, stomp::frame&& f, failure why);
  void retry_blocked();
  void time_out_blocked(std::chrono::steady_clock::time_point now);
  // Decides where `msg` goes; moves it into `journal_add` when it must be journaled.
  detail::planned_send plan_send(std::string_view destination, bool to_topic, detail::message&& msg,
                                 std::optional<journal::message_add>& journal_add);
  // Carries out a plan: at once when nothing is journaled, else once the append is durable.
  void apply_send(const detail::planned_send& p);
  // Undoes what plan_send reserved when the append failed.
  void unplan_send(const detail::planned_send& p);
  // Why a resend waits for its in-flight original (dedup.h), and whether it still must.
  static failure original_in_flight(const std::string& producer, std::uint64_t seq);
  bool original_still_in_flight(const stomp::frame& f) const;
  // ---- duplicate_receipt.cpp: a resend's RECEIPT, through the fence when the store has it ----
  void answer_duplicate(detail::session& s, const stomp::frame& f, detail::dedup::status seen);
  journal::completion receipt_when_fenced(session_id sid, std::uint64_t slot);

  // ---- subscribe.cpp: SUBSCRIBE, UNSUBSCRIBE, durable subscriptions ----
  void on_subscribe(detail::session& s, stomp::frame& f);
  void on_unsubscribe(detail::session& s, stomp::frame& f);
  void remove_subscription(detail::session& s, detail::subscription& sub);
  // The queue of durable subscription `key` (subscription_target(client_id, name)) on `topic`.
  detail::queue& add_durable(const std::string& key, const std::string& client_id, const std::string& name,
                             const std::string& topic, std::optional<selector::expression> filter);
  void destroy_durable(detail::queue& q, journal::completion done);
  // ---- browse.cpp: SUBSCRIBE browser:true, the admin browse ----
  // Takes a snapshot of what is pending and sends it; bodies not in memory are read off
  // the io thread, one at a time, so the copies keep queue order (browse_step).
  void browse(detail::session& s, detail::queue& q, detail::subscription& sub);
  struct browse_state;
  void browse_step(const std::shared_ptr<browse_state>& st);
  // Calls visit(seq, persistent) for each message pending on `q` with seq > after, in queue
  // order (journal and memory merged; in flight, unreadable, deferred and leaving ones skipped) until
  // it returns false. Reads no body.
  void for_each_pending(detail::queue& q, std::uint64_t after, const std::function<bool(std::uint64_t, bool)>& visit);

  // ---- ack.cpp: ACK, NACK ----
  void on_ack(detail::session& s, stomp::frame& f, bool nack);
  using unacked_iterator = std::map<std::uint64_t, detail::delivery>::iterator;
  struct delivery_ref {
    detail::subscription* sub;
    std::uint64_t tag;
  };
  result<delivery_ref> find_delivery(detail::session& s, const stomp::frame& f, bool nack);
  void ack_delivery(detail::subscription& sub, unacked_iterator it, std::vector<journal::batch_item>* removes);

  // ---- transactions.cpp: BEGIN, COMMIT, ABORT ----
  void on_begin(detail::session& s, stomp::frame& f);
  void on_commit(detail::session& s, stomp::frame& f);
  void on_abort(detail::session& s, stomp::frame& f);
  // The transaction a SEND or ACK names; nullptr when it names none.
  result<detail::transaction*> find_transaction(detail::session& s, const stomp::frame& f);
  result<detail::transaction> take_transaction(detail::session& s, const stomp::frame& f);
  void rollback(detail::session& s, detail::transaction& tx);

  // ---- redelivery.cpp: a delivery coming back ----
  // Takes delivery `it` out of its subscription (its ack tag goes too).
  detail::delivery take_delivery(detail::subscription& sub, unacked_iterator it);
  // Puts delivery `it` back on its queue (rollback, consumer gone): redelivered in its
  // original place, or dead-lettered after max_deliveries.
  void return_delivery(detail::subscription& sub, unacked_iterator it);
  // NACK (a poison ack, as ActiveMQ's): delivery `it` goes to the dead letter queue at once,
  // or, when the queue's policy has redelivery settings, back to its queue after a delay
  // until it has been redelivered maximum_redeliveries times.
  // `done` (may be empty) runs once the move is durable (at once when nothing is journaled).
  void nack_delivery(detail::subscription& sub, unacked_iterator it, journal::completion done = {});
  // Puts `d` (taken out of its subscription) back on its queue as a copy with a new msg_seq
  // that is not offered before `delay` has passed (journaled: remove + add in one batch).
  void redeliver_later(detail::delivery&& d, std::chrono::milliseconds delay, journal::completion done);
  // The rest of redeliver_later once the body is in (null: unreadable, put back as it is).
  void redeliver_with_body(detail::delivery&& d, detail::message_ptr m, std::chrono::milliseconds delay,
                           journal::completion done);
  // Remembers that `seq` on `q` waits until `due_ms` (dispatch skips it).
  void defer(detail::queue& q, std::uint64_t seq, std::int64_t due_ms);
  // A recovered message dispatch is about to deliver whose delay has not passed (its
  // deliver_at_ms, read with it): deferred instead; true when so.
  bool hold_if_deferred(detail::queue& q, std::uint64_t seq, bool persistent, const detail::message& m);
  // Offers again what has waited long enough (tick).
  void release_deferred(detail::queue& q, std::int64_t now_ms);
  const destination_policy* policy_of(detail::queue& q);
  // How many times `seq` has been delivered counting this delivery, and whether the
  // MESSAGE carries redelivered:true. `m` is the message (its redeliveries count).
  struct delivery_count {
    std::uint32_t count;
    bool redelivered;
  };
  delivery_count count_delivery(detail::queue& q, std::uint64_t seq, bool persistent, const detail::message& m);
  // `done` (may be empty) runs once the move is durable (at once when nothing is journaled).
  // A journaled body not in memory is read off the io thread first (body_read.cpp).
  void dead_letter(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m,
                   std::uint64_t bytes, std::string_view reason, journal::completion done = {});
  // The rest of dead_letter once the body is in (null: unreadable, dropped).
  void dead_letter_with_body(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m,
                             std::uint64_t bytes, std::string_view reason, journal::completion done);
  std::string dlq_name(const detail::queue& q) const;

  // ---- dispatch.cpp: queues, dispatch, removal ----
  detail::queue& get_queue(std::string_view name);  // /queue/NAME, created on first use
  detail::topic& get_topic(std::string_view name);
  // The topic itself and every wildcard topic (a subscription's "/topic/a.*") matching it.
  std::vector<detail::topic*> topics_for(std::string_view destination);
  detail::queue* find_queue_by_key(std::string_view key);
  void mark_dirty(detail::queue& q);
  // Every queue `sub` consumes from may dispatch again (a prefetch slot freed).
  void mark_consumer_dirty(detail::subscription& sub);
  void unmark_dirty(detail::queue& q);
  void flush();  // dispatch dirty queues, retry blocked producers, until stable
  void dispatch(detail::queue& q);
  void dispatch_selected(detail::queue& q);  // a queue with a selector among its consumers
  bool matched_by_any(const detail::queue& q, const detail::message& m, std::uint32_t redeliveries) const;
  detail::subscription* pick_consumer(detail::queue& q);
  // The same for message `m` (nullptr: any): its selector must match too.
  detail::subscription* pick_consumer(detail::queue& q, const detail::message* m, std::uint32_t redeliveries);
  bool consumer_ready(detail::subscription& sub);
  // Delivers the message (seq, from the journal or memory) to `sub`; false when the queue
  // must stop dispatching for now (the store could not read the message).
  bool deliver(detail::queue& q, std::uint64_t seq, bool persistent, detail::subscription& sub);
  // Removes an acked / expired message from its queue; a journaled one adds a
  // message_remove to `removes` (the caller appends them) or appends it at once.
  void remove_message(detail::queue& q, std::uint64_t seq, bool persistent, std::uint64_t bytes,
                      std::vector<journal::batch_item>* removes);
  // The body of a pending message, reading a journaled one inline on a cache miss (a
  // blocking pread: nothing calls it for a journaled one any more; body_read.cpp reads off
  // the io thread).
  detail::message_ptr load(detail::queue& q, std::uint64_t seq, bool persistent);
  // The body of journaled message `seq` of `q` if it is in memory; otherwise nullptr, and
  // the store reads it off the io thread, after which `q` is dispatched again (fetch.cpp).
  detail::message_ptr fetch(detail::queue& q, std::uint64_t seq);
  // A read error that will not go away (the store's own errc: the record does not verify,
  // or is not the message): logs, counts and skips (q.unreadable); true. False for an OS
  // error, which leaves the message pending. unreadable.cpp.
  bool set_aside_if_unreadable(detail::queue& q, std::uint64_t seq, std::error_code ec);
  void note_added(detail::queue& q, std::uint64_t seq, std::int64_t expires_ms);
  void ensure_destination_journaled(detail::queue& q);
  // Appends removes as one record (a message_remove or a batch); `done` may be empty.
  void append_removes(std::vector<journal::batch_item>&& removes, journal::completion done);
  std::uint64_t allocate_seq();
  std::uint64_t pending_count(const detail::queue& q) const;
  std::uint64_t store_bytes() const;
  std::size_t store_reads_in_flight() const;  // body_read.cpp

  // ---- body_read.cpp: a journaled body read off the io thread (issue 17, finding 8) ----
  // What such a read hands back, on the io thread.
  struct body_read {
    detail::message_ptr body;  // null on error (or gone)
    std::error_code error;     // the store's read error (counted in read_errors_)
    bool set_aside = false;    // the error is for good: the message is in q.unreadable now
    // The message left its target meanwhile (acked, purged, expired, moved; a new master),
    // or its queue or waiting set no longer holds it: nothing to do but finish.
    bool gone = false;
  };
  // A queue's set that holds a msg_seq while its body is read (queue::fetching, ::leaving).
  using body_waiters = std::unordered_set<std::uint64_t> detail::queue::*;
  using body_callback = std::function<void(detail::queue* q, body_read r)>;
  // Journaled message `seq` of `q` when it is in memory now (q.fetched, the store's cache).
  detail::message_ptr body_in_memory(detail::queue& q, std::uint64_t seq);
  // Reads journaled message `seq` of target `key` on the store's reader thread and runs
  // `then` once on the io thread with it, q = the queue whose key it is (null for the
  // scheduler's target, or a queue gone). With `waiters` (q must be the queue of `key`),
  // `seq` stays in q->*waiters until then, and a second ask for it meanwhile returns false
  // and asks nothing (`then` will not run for it). Nothing runs once the engine is gone.
  bool read_body_off_thread(detail::queue* q, std::uint64_t seq, body_waiters waiters, std::string key,
                            body_callback then);
  void on_fetched(detail::queue* q, std::uint64_t seq, body_read r);  // fetch.cpp

  // ---- consumers.cpp: exclusive consumers, consumer priority, message groups ----
  // `sub` starts consuming from `q` (already in q.consumers): it may become the exclusive
  // consumer, and the queue may need the ranked pick.
  void consumer_joined(detail::queue& q, detail::subscription& sub);
  // `sub` stops consuming from `q` (already out of q.consumers), before its unacked
  // deliveries go back: the next exclusive consumer takes over and its groups are freed, so
  // what comes back goes to the new owners in queue order.
  void consumer_left(detail::queue& q, detail::subscription& sub);
  // The ready consumer of a ranked queue that gets the next message (`m` when known, for
  // the selectors): the exclusive consumer only, else the highest priority, round robin
  // among equals.
  detail::subscription* pick_ranked(detail::queue& q, const detail::message* m, std::uint32_t redeliveries);
  // A queue message's group (JMSXGroupID) is pinned to `sub` as it is delivered: true when
  // `sub` is its new owner (the MESSAGE carries JMSXGroupFirstForConsumer:true). A message
  // with JMSXGroupSeq:-1 closes its group.
  bool claim_group(detail::queue& q, const detail::message& m, detail::subscription& sub);
  // Who may take message `m` of a grouped queue: its group's owner, or (no group, no owner
  // yet, or JMSXGroupSeq:1 which starts the group anew) whoever pick_consumer gives.
  detail::subscription* pick_for_group(detail::queue& q, const detail::message& m, std::uint32_t redeliveries);

  // ---- advisory.cpp: the ActiveMQ.Advisory.* topics ----
  // Subscriptions that may receive advisories (a topic under ActiveMQ.Advisory., or a
  // wildcard topic): every hook checks this count first, so advisories cost one compare on
  // the hot paths while nobody listens.
  bool advising() const { return advisory_listeners_ != 0; }
  void count_advisory_listener(const detail::subscription& sub, int delta);
  // Publishes a non-persistent JSON message on /topic/ActiveMQ.Advisory.<topic>; with
  // `only`, hands it to that subscription alone, if its topic covers it (a replay).
  void advise(std::string_view topic, std::string body_json, std::vector<stomp::header> props = {},
              detail::subscription* only = nullptr);
  void advise_connection(const detail::session& s, bool added, detail::subscription* only = nullptr);
  void advise_consumer(const detail::subscription& sub, bool added, detail::subscription* only = nullptr);
  void advise_producer(detail::session& s, std::string_view destination);  // a SEND
  void advise_producers_gone(detail::session& s);
  void advise_destination(std::string_view destination, bool created, detail::subscription* only = nullptr);
  // Puts message `m` on subscription `sub`'s own queue, for it alone.
  void hand_to(detail::subscription& sub, detail::message_ptr m);
  // advisory_replay.cpp: a new subscription to advisory topics learns the current state, as
  // ActiveMQ's: an `added` / `created` advisory for each connection, consumer and destination
  // that exists, to it alone.
  void replay_advisories(detail::subscription& sub);
  // kind: "Expired" or "MessageDLQd"; `m` may be null (unreadable).
  void advise_message(std::string_view kind, const detail::queue& q, const detail::message* m, std::string_view why);
  // A new subscriber of the master-change topic gets the retained announcement.
  void deliver_retained(detail::subscription& sub);
  void announce_master(const master_change& change);

  // ---- expiry.cpp ----
  void expire(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m);
  void expire_with_body(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m);
  void on_leaving_read(detail::queue* q, std::uint64_t seq, body_read r);
  void expire_scan(detail::queue& q, std::int64_t now_ms);
  void expire_all(std::int64_t now_ms);
  // Every queue the engine holds (queues, durable subscriptions, non-durable topic
  // subscriptions' own queues).
  template <class F>
  void for_each_queue(F f) {
    for (auto& [name, q] : queues_) f(*q);
    for (auto& [key, q] : durables_) f(*q);
    for (auto& [sid, s] : sessions_)
      for (auto& [id, sub] : s->subs)
        if (sub->own) f(*sub->own);
  }

  // ---- gc.cpp: unused empty destinations (engine_config::destination_gc) ----
  void collect_inactive(std::chrono::steady_clock::time_point now);

  // ---- recover.cpp ----
  void recover();

  // ---- scheduler_management.cpp: SEND to ActiveMQ.Scheduler.Management (scheduler_request.h) ----
  // The request acts at once: BROWSE copies entries to its reply-to, REMOVE / REMOVEALL go
  // through cancel_schedules; its RECEIPT follows the copies or the durable removal.
  void on_scheduler_management(detail::session& s, stomp::frame& f);
  result<void> authorize_scheduler_management(const detail::session& s);
  struct scheduler_browse;
  void browse_schedules(detail::session& s, stomp::frame& f, const detail::scheduler_request& r);
  // Sends the copies of st's entries from st->next on; an entry whose body is not in memory
  // is read off the io thread, and the walk goes on from its callback.
  void scheduler_browse_step(const std::shared_ptr<scheduler_browse>& st);

  // ---- scheduled.cpp: AMQ_SCHEDULED_* (schedule.h) ----
  // Takes a SEND whose headers ask for a schedule: stores the entry (RECEIPT once durable),
  // holds it in `tx` until COMMIT, or refuses the frame. `msg` is the message as on_send built it.
  bool schedule_send(detail::session& s, stomp::frame& f, const detail::schedule_spec& spec, detail::transaction* tx,
                     detail::message&& msg);
  // COMMIT of a transaction holding a scheduled SEND: the entry goes into the COMMIT's batch
  // (`items`, or at once without a store). The result is what to add to schedules_ once the
  // batch is durable.
  struct planned_schedule {
    std::uint64_t seq = 0;
    detail::schedule_table::entry e;
    std::string producer_id;  // in flight (dedup.h) until the batch completes
    std::uint64_t producer_seq = 0;
  };
  std::optional<planned_schedule> plan_tx_schedule(detail::tx_send& send, std::vector<journal::batch_item>& items);
  void fire_due();  // the timer: fires every entry due now
  // Firings that go to the journal together: one batch record, one completion (scheduled.cpp).
  struct firing_round {
    journal::batch b;
    std::vector<detail::planned_send> plans;
    std::vector<std::pair<std::uint64_t, detail::schedule_table::entry>> again;  // next states
    std::vector<std::string> jobs;  // one per entry fired, each held in firing_ until done
    std::uint64_t bytes = 0;        // about what the batch record will take
  };
  // Bounds of one round's batch: it must fit in a journal segment (1 MiB at the least).
  static constexpr std::size_t round_max_entries = 1024;
  static constexpr std::uint64_t round_max_bytes = 256u << 10;
  // A fired message or next state up to this size is offered to the store's cache as it is
  // appended (journal::message_store::remember).
  static constexpr std::uint64_t remember_max_bytes = 64u << 10;
  void add_firing(firing_round& r, std::uint64_t seq, detail::schedule_table::entry e, detail::message_ptr m,
                  std::int64_t now_ms);
  void commit_round(firing_round&& r);
  // Entries due whose bodies are not in memory: read off the io thread, then fired as rounds.
  void read_then_fire(std::vector<std::pair<std::uint64_t, detail::schedule_table::entry>> unread);
  // Asks the store to read (into its cache) the entries due within prefetch_ms of now, so
  // that they fire without waiting for a read; at most prefetch_max at a time.
  void prefetch_due_soon(std::int64_t now_ms);
  static constexpr std::int64_t prefetch_ms = 100;
  static constexpr std::size_t prefetch_max = 4096;
  std::vector<std::pair<std::string, bool>> fan_out(std::string_view destination);  // (name, to_topic)
  void recover_schedules();
  void schedule_changed();  // the earliest due time may have moved: tell the server's timer
  void scheduled_json(std::size_t offset, std::size_t limit, std::function<void(nlohmann::json)> done);
  // Cancels a job (every entry with its job id) or, with "", every job. Returns how many.
  std::uint64_t cancel_scheduled(std::string_view job_id, std::function<void(std::error_code, std::uint64_t)> done);
  // Which entries cancel_schedules takes: all of them, narrowed by job id and/or by next
  // firing time in [first, last].
  struct schedule_selection {
    std::optional<std::string_view> job_id;
    std::optional<std::pair<std::int64_t, std::int64_t>> due_range;
  };
  // The one cancel path: removes the selected entries, journaled as one record; `done`
  // (may be empty) gets the count once that is durable. Returns the count.
  std::uint64_t cancel_schedules(const schedule_selection& which,
                                 std::function<void(std::error_code, std::uint64_t)> done);
  void note_lateness(std::int64_t late_ms);
  void append_schedule_metrics(prometheus::writer& out) const;

  // A journal completion that runs `f(ec)` on this engine, then flush(); nothing once the
  // engine is gone (the store may outlive it). One callable type per call site, so the
  // journal::completion that holds it needs no std::function inside.
  template <class F>
  struct guarded {
    impl* self;
    std::weak_ptr<int> life;
    F f;
    void operator()(std::error_code ec, std::uint64_t) {
      if (life.expired()) return;
      f(ec);
      self->flush();
    }
  };
  template <class F>
  journal::completion guard(F f) {
    return guarded<F>{this, life_, std::move(f)};
  }

  // ---- state ----
  engine_config config_;
  journal::message_store* store_;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
  std::function<std::int64_t()> wall_ms_;
  std::string run_token_;  // makes message ids of this run unique
  std::uint64_t next_seq_ = 1;  // memory-only brokers
  std::uint64_t recovered_below_ = 0;  // persistent messages below were recovered: redelivered
  bool shutting_down_ = false;
  std::optional<std::string> disk_full_;  // engine::set_disk_full
  bool in_flush_ = false;

  session_id next_session_ = 1;
  std::map<session_id, std::unique_ptr<detail::session>> sessions_;
  std::map<std::string, session_id> client_ids_;
  std::set<session_id> blocked_;

  std::map<std::string, std::unique_ptr<detail::queue>, std::less<>> queues_;   // /queue/..
  std::map<std::string, std::unique_ptr<detail::queue>, std::less<>> durables_; // by key
  std::map<std::string, detail::topic, std::less<>> topics_;
  std::set<std::string, std::less<>> wildcard_topics_;  // keys of topics_ with a '*' or '>' element
  std::vector<detail::subscription*> wildcard_queue_subs_;  // joined by every new matching queue
  std::vector<detail::queue*> dirty_;
  detail::dedup dedup_;
  std::shared_ptr<credential_checker> credentials_;
  std::optional<authorization_map> authz_;  // unset: no authorization configured
  policy_map policies_;
  // Password checks on the worker, by login + '\0' + passcode: the sessions waiting for each.
  std::map<std::string, std::vector<std::pair<session_id, std::shared_ptr<stomp::frame>>>> logins_in_flight_;
  std::uint64_t authorization_denials_ = 0;
  std::uint64_t destinations_refused_ = 0, destinations_collected_ = 0;
  std::chrono::steady_clock::time_point last_gc_{};
  engine::offload_fn offload_;

  std::size_t advisory_listeners_ = 0;  // advisory.cpp
  std::map<std::string, std::uint64_t, std::less<>> producers_;  // destination -> sessions (advisory.cpp)
  detail::message_ptr master_change_;  // the retained master-change advisory
  std::uint64_t memory_bytes_ = 0;
  // max_memory_bytes over memory_bytes_ and the connections' buffers (broker/memory_budget.h).
  memory_budget budget_{config_.max_memory_bytes, [this] { return memory_bytes_; }};
  std::uint64_t appending_bytes_ = 0;  // journaled, not yet durable
  std::uint64_t selector_skips_ = 0;  // dispatch_selected: pending messages looked at and left
  std::size_t body_reads_in_flight_ = 0;  // body_read.cpp
  std::uint64_t duplicates_ = 0, read_errors_ = 0, send_timeouts_ = 0, unknown_targets_ = 0;
  std::uint64_t unreadable_ = 0;  // messages set aside by set_aside_if_unreadable
  std::uint64_t connections_total_ = 0, auth_failures_ = 0;

  detail::schedule_table schedules_;
  std::function<void()> schedule_listener_;
  std::multiset<std::string> firing_;  // job ids whose firing batch is being made durable
  std::set<std::string> cancelled_in_flight_;  // of those, cancelled meanwhile
  std::uint64_t scheduled_total_ = 0, fired_total_ = 0;
  std::int64_t prefetched_until_ms_ = 0;  // entries due by then were asked for (prefetch_due_soon)
  // How late firings ran (now - due, ms): a histogram with these upper bounds, then +Inf.
  static constexpr std::array<double, 8> lateness_bounds_ms{1, 2, 5, 10, 20, 50, 100, 1000};
  std::array<std::uint64_t, lateness_bounds_ms.size() + 1> lateness_buckets_{};
  double lateness_sum_ms_ = 0;
};

}  // namespace tandem::broker
