// engine::impl: the state and the operations of the engine, split over
//   broker/engine.cpp            public API, sessions, CONNECT, frame handlers, receipts
//   broker/engine/dispatch.cpp   queues, dispatch, acks, redelivery, DLQ, expiry, sends
//   broker/engine/admin.cpp      destinations_json, connections_json, append_metrics
// Threads: the io thread only (engine.h). Journal completions capture `life_` weakly: a
// completion posted after the engine is gone does nothing.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/engine.h"
#include "broker/engine/state.h"
#include "journal/store.h"

namespace tandem::broker {

struct engine::impl {
  impl(const engine_config& config, journal::store* store);

  // ---- sessions and frames (engine.cpp) ----
  void handle_frame(detail::session& s, stomp::frame&& f);
  void on_connect(detail::session& s, stomp::frame& f);
  void on_send(detail::session& s, stomp::frame&& f);
  void on_subscribe(detail::session& s, stomp::frame& f);
  void on_unsubscribe(detail::session& s, stomp::frame& f);
  void on_ack(detail::session& s, stomp::frame& f, bool nack);
  void on_begin(detail::session& s, stomp::frame& f);
  void on_commit(detail::session& s, stomp::frame& f);
  void on_abort(detail::session& s, stomp::frame& f);
  std::optional<detail::transaction> take_transaction(detail::session& s, stomp::frame& f);
  std::optional<std::string_view> checked_destination(detail::session& s, stomp::frame& f);
  void on_disconnect(detail::session& s, stomp::frame& f);

  detail::session* find_session(session_id id);
  // Sends ERROR (message header, receipt-id of `cause`, detail body) after the receipts
  // already owed, then closes the connection; later frames are ignored.
  void fail(detail::session& s, std::string_view message, std::string_view detail, const stomp::frame* cause);
  // A receipt slot for `f` (when it carries `receipt`) waiting for `waiting` completions;
  // returns its id, 0 when the frame asked for no receipt.
  std::uint64_t add_receipt(detail::session& s, const stomp::frame& f, std::uint32_t waiting);
  void complete_slot(session_id sid, std::uint64_t slot);
  void fail_slot(session_id sid, std::uint64_t slot, std::string_view message, std::string_view detail);
  void flush_slots(detail::session& s);
  void send_frame(detail::session& s, const stomp::frame& f);
  void end_session_state(detail::session& s);  // rollback and return everything; session stays
  void release_client_id(detail::session& s);  // lets another connection CONNECT with it
  void remove_subscription(detail::session& s, detail::subscription& sub);
  void rollback(detail::session& s, detail::transaction& tx);
  // The delivery an ACK / NACK names, or an error text.
  std::string find_delivery(detail::session& s, const stomp::frame& f, detail::subscription*& sub,
                            std::uint64_t& tag);
  // Why a SEND to `destination` must wait ("" = it may go ahead).
  std::string send_blocked(std::string_view destination, bool to_topic, bool persistent);
  void park(detail::session& s, stomp::frame&& f, std::string reason);
  void retry_blocked();

  // ---- queues, dispatch, acks (dispatch.cpp) ----
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
  // Puts an unacked delivery back (NACK, consumer gone, rollback): redelivered later, or to
  // the DLQ when it has been delivered max_deliveries times.
  void return_delivery(detail::delivery&& d);
  void dead_letter(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m,
                   std::uint64_t bytes, std::string_view reason);
  void expire(detail::queue& q, std::uint64_t seq, bool persistent, detail::message_ptr m);
  void expire_scan(detail::queue& q, std::int64_t now_ms);
  detail::message_ptr load(detail::queue& q, std::uint64_t seq, bool persistent);
  void note_added(detail::queue& q, std::uint64_t seq, std::int64_t expires_ms);
  void ensure_destination_journaled(detail::queue& q);
  // Appends removes as one record (a message_remove or a batch); `done` may be empty.
  void append_removes(std::vector<journal::batch_item>&& removes, journal::completion done);
  std::uint64_t allocate_seq();
  // Decides where `msg` goes; moves it into `journal_add` when it must be journaled.
  detail::planned_send plan_send(std::string_view destination, bool to_topic, detail::message&& msg,
                                 std::optional<detail::message>& journal_add);
  void apply_send(const detail::planned_send& p);
  void ack_delivery(detail::subscription& sub, std::map<std::uint64_t, detail::delivery>::iterator it,
                    std::vector<journal::batch_item>* removes);
  void destroy_durable(detail::queue& q, journal::completion done);
  std::string dlq_name(const detail::queue& q) const;
  std::uint64_t pending_count(const detail::queue& q) const;
  std::uint64_t store_bytes() const;
  journal::completion guard(std::function<void(std::error_code)> f);

  // ---- state ----
  engine_config config_;
  journal::store* store_;
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
  detail::dedup_window dedup_;

  std::uint64_t memory_bytes_ = 0;
  std::uint64_t appending_bytes_ = 0;  // journaled, not yet durable
  std::uint64_t duplicates_ = 0, read_errors_ = 0, send_timeouts_ = 0, unknown_targets_ = 0;
  std::uint64_t connections_total_ = 0, auth_failures_ = 0;
};

}  // namespace tandem::broker
