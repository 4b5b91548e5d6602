// engine::impl: the state and the operations of the engine. One file per frame family (as
// Mosquitto's handle_*.c) and one per concern of the core; broker/engine/README.md is the map.
// Threads: the io thread only (engine.h). Journal completions go through guard(): one that
// runs after the engine is gone does nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/engine.h"
#include "broker/engine/dedup.h"
#include "broker/engine/state.h"
#include "broker/errc.h"
#include "journal/message_store.h"

namespace tandem::broker {

struct engine::impl {
  impl(const engine_config& config, journal::message_store* store);

  // ---- session.cpp: frame dispatch and session state ----
  detail::session* find_session(session_id id);
  void handle_frame(detail::session& s, stomp::frame&& f);
  // The frame's destination when it names a /queue/ or /topic/.
  result<std::string_view> checked_destination(const stomp::frame& f) const;
  void end_session_state(detail::session& s);  // rollback and return everything; session stays
  void release_client_id(detail::session& s);  // lets another connection CONNECT with it

  // ---- connect.cpp: CONNECT / STOMP, authentication, DISCONNECT ----
  void on_connect(detail::session& s, stomp::frame& f);
  result<void> authenticate(detail::session& s, const stomp::frame& f);
  void on_disconnect(detail::session& s, stomp::frame& f);

  // ---- receipts.cpp: RECEIPT slots and the one ERROR path ----
  // A receipt slot for `f` (when it carries `receipt`) waiting for `waiting` completions;
  // returns its id, 0 when the frame asked for no receipt.
  std::uint64_t add_receipt(detail::session& s, const stomp::frame& f, std::uint32_t waiting);
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

  // ---- subscribe.cpp: SUBSCRIBE, UNSUBSCRIBE, durable subscriptions ----
  void on_subscribe(detail::session& s, stomp::frame& f);
  void on_unsubscribe(detail::session& s, stomp::frame& f);
  void remove_subscription(detail::session& s, detail::subscription& sub);
  // The queue of durable subscription `key` (subscription_target(client_id, name)) on `topic`.
  detail::queue& add_durable(const std::string& key, const std::string& client_id, const std::string& name,
                             const std::string& topic);
  void destroy_durable(detail::queue& q, journal::completion done);

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
  // Puts delivery `it` back on its queue (NACK, rollback, a NACK at COMMIT, consumer gone):
  // redelivered in its original place, or dead-lettered after max_deliveries.
  void return_delivery(detail::subscription& sub, unacked_iterator it);
  // How many times `seq` has been delivered counting this delivery, and whether the
  // MESSAGE carries redelivered:true.
  struct delivery_count {
    std::uint32_t count;
    bool redelivered;
  };
  delivery_count count_delivery(detail::queue& q, std::uint64_t seq, bool persistent);
  void dead_letter(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m,
                   std::uint64_t bytes, std::string_view reason);
  std::string dlq_name(const detail::queue& q) const;

  // ---- dispatch.cpp: queues, dispatch, removal ----
  detail::queue& get_queue(std::string_view name);  // /queue/NAME, created on first use
  detail::topic& get_topic(std::string_view name);
  detail::queue* find_queue_by_key(std::string_view key);
  void mark_dirty(detail::queue& q);
  void unmark_dirty(detail::queue& q);
  void flush();  // dispatch dirty queues, retry blocked producers, until stable
  void dispatch(detail::queue& q);
  detail::subscription* pick_consumer(detail::queue& q);
  bool consumer_ready(detail::subscription& sub);
  // Delivers the message (seq, from the journal or memory) to `sub`; false when the queue
  // must stop dispatching for now (the store could not read the message).
  bool deliver(detail::queue& q, std::uint64_t seq, bool persistent, detail::subscription& sub);
  // Removes an acked / expired message from its queue; a journaled one adds a
  // message_remove to `removes` (the caller appends them) or appends it at once.
  void remove_message(detail::queue& q, std::uint64_t seq, bool persistent, std::uint64_t bytes,
                      std::vector<journal::batch_item>* removes);
  detail::message_ptr load(detail::queue& q, std::uint64_t seq, bool persistent);
  void note_added(detail::queue& q, std::uint64_t seq, std::int64_t expires_ms);
  void ensure_destination_journaled(detail::queue& q);
  // Appends removes as one record (a message_remove or a batch); `done` may be empty.
  void append_removes(std::vector<journal::batch_item>&& removes, journal::completion done);
  std::uint64_t allocate_seq();
  std::uint64_t pending_count(const detail::queue& q) const;
  std::uint64_t store_bytes() const;

  // ---- expiry.cpp ----
  void expire(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m);
  void expire_scan(detail::queue& q, std::int64_t now_ms);
  void expire_all(std::int64_t now_ms);

  // ---- recover.cpp ----
  void recover();

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
  bool in_flush_ = false;

  session_id next_session_ = 1;
  std::map<session_id, std::unique_ptr<detail::session>> sessions_;
  std::map<std::string, session_id> client_ids_;
  std::set<session_id> blocked_;

  std::map<std::string, std::unique_ptr<detail::queue>, std::less<>> queues_;   // /queue/..
  std::map<std::string, std::unique_ptr<detail::queue>, std::less<>> durables_; // by key
  std::map<std::string, detail::topic, std::less<>> topics_;
  std::vector<detail::queue*> dirty_;
  detail::dedup dedup_;

  std::uint64_t memory_bytes_ = 0;
  std::uint64_t appending_bytes_ = 0;  // journaled, not yet durable
  std::uint64_t duplicates_ = 0, read_errors_ = 0, send_timeouts_ = 0, unknown_targets_ = 0;
  std::uint64_t connections_total_ = 0, auth_failures_ = 0;
};

}  // namespace tandem::broker
