// The engine's private state: queues, subscriptions, sessions, transactions. Everything here
// lives on the broker's io thread (engine.h), so nothing is synchronised.
//
// ---------------------------------------------------------------------------------------------
// Where a pending message lives (the 128 B/message budget)
// ---------------------------------------------------------------------------------------------
// A persistent message on a queue is ONLY an entry of the journal index
// (index.messages(queue.key): msg_seq -> location, expiry): the engine keeps no per-message
// node for it, and its headers and body are read back with store::read (LRU body cache) when
// it is dispatched. What the engine adds per queue is bounded by what is in flight, not by
// what is pending:
//   cursor                every index entry with msg_seq < cursor is in flight (or gone), so
//                         dispatch resumes at index.lower_bound(cursor) instead of rescanning
//   inflight_persistent   msg_seqs delivered and not yet acked (skipped by the cursor walk)
//   unreadable            msg_seqs whose record the store cannot read (skipped likewise)
//   returned              msg_seq -> deliveries so far, for pending messages that were
//                         delivered before (NACK, a consumer closed): their redelivered flag
//                         and DLQ count; empty in the steady state (redelivery.cpp keeps it)
//   deferred              msg_seq -> ms since epoch before which it is not offered: a
//                         message put back with a redelivery delay (redelivery.cpp);
//                         empty unless a destination policy delays redeliveries
// Non-persistent messages (and everything on a non-durable topic subscription) are kept
// decoded in `memory` (msg_seq -> message): they are never on disk.
//
// Order: both sources are ordered by msg_seq (allocated when the broker accepts a SEND, or at
// COMMIT for a transaction's sends) and dispatch takes the lower of the two heads. A message
// that comes back (NACK, closed consumer, aborted transaction) therefore goes back in its
// original position: ahead of every message that arrived after it, i.e. at the front of what
// its consumers have not seen yet (ActiveMQ re-adds it to the head of the pending cursor).
//
// ---------------------------------------------------------------------------------------------
// Bytes accounting (flow control, admin)
// ---------------------------------------------------------------------------------------------
// queue::bytes = headers + body bytes of every message on the queue (pending and in flight,
// journaled or not), added when the broker accepts the message and removed when it is acked,
// expired or moved. After recover() the engine has not read the messages: each entry counts
// its journal record size (a transaction batch split evenly over its messages), an estimate
// that the exact figures replace as those messages are delivered. The counter is clamped at
// zero and reset to zero when dispatch finds the queue empty (nothing pending, in flight or
// being journaled), so the estimate cannot drift forever.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/engine.h"
#include "broker/engine/credentials.h"
#include "broker/engine/group_map.h"
#include "broker/errc.h"
#include "broker/selector/selector.h"
#include "journal/records.h"

namespace tandem::broker::detail {

// The decoded form of a message, shared by every queue that holds it in memory (a topic
// fan-out shares one copy). The store's type, so a persistent message read back from the
// store and a message kept in memory are the same thing.
using message = journal::message;
using message_ptr = std::shared_ptr<const message>;

// Bytes a message counts for (flow control): body plus header names and values.
std::uint64_t message_bytes(const message& m);

enum class ack_mode { auto_ack, client, client_individual };

struct queue;
struct subscription;
struct session;

// One MESSAGE sent to a client subscription and not yet acked.
struct delivery {
  queue* q = nullptr;
  std::uint64_t seq = 0;
  message_ptr msg;  // non-persistent only: the engine's copy while it is in flight
  std::string message_id;
  std::uint64_t bytes = 0;
  std::uint32_t deliveries = 0;  // including this one
  bool persistent = false;
  bool in_tx = false;  // acked or nacked inside a transaction not yet committed
};

enum class queue_kind {
  queue,               // /queue/NAME: competing consumers
  durable,             // a durable topic subscription: kept while its subscriber is away
  topic_subscription,  // a non-durable topic subscription's private, memory-only queue
};

// Dispatch by priority (policy prioritized_messages): for each priority, per source, a seq
// below which that source holds no pending message of that priority, so finding the next
// message walks each entry about once per priority instead of rescanning the queue. On such
// a queue `cursor` is the rewind mark instead: whatever puts a message back or adds one
// lowers it (as on every queue), and the next dispatch lowers every cursor here to it, then
// sets it to the maximum (nothing to rewind).
struct priority_cursors {
  std::array<std::uint64_t, 10> journaled{};
  std::array<std::uint64_t, 10> memory{};
};

struct queue {
  queue_kind kind = queue_kind::queue;
  std::string name;  // the destination MESSAGE frames carry: "/queue/a", or the topic
  std::string key;   // journal target key: the queue name, or subscription_target(); "" = none
  std::string client_id, subscription_name;  // durable only
  std::optional<selector::expression> filter;  // durable only: its selector (broker/engine/filter.h)
  // A temporary queue (destinations.h): the connection that owns it and the name it uses
  // (/temp-queue/x), which its MESSAGE frames show; 0 for every other queue.
  session_id temp_owner = 0;
  std::string temp_local;
  // Durable only: the login that made it, stored with it (journal/format.h record 6), or
  // the first login to subscribe to an unowned one; "" = none yet. Another login may not
  // take it over or remove it (authorization.h).
  std::string owner_login;

  std::map<std::uint64_t, message_ptr> memory;  // pending messages held in RAM
  std::uint64_t cursor = 0;                      // see the file comment
  // Queues with selector consumers (dispatch_selected): every pending msg_seq below it is
  // matched by no consumer's selector, so a walk starts there instead of at the head. Back
  // to 0 when a consumer joins; lowered when a message comes back or lands below it.
  std::uint64_t unmatched_below = 0;
  std::unordered_set<std::uint64_t> inflight_persistent;
  // Journaled messages the store cannot read back (unreadable.cpp): skipped like those in
  // flight, kept in the store; empty unless a record is damaged.
  std::unordered_set<std::uint64_t> unreadable;
  // Journaled bodies dispatch waits for (fetch.cpp): being read off the io thread, and read
  // but not delivered yet (a body larger than the store's cache is held only here).
  std::unordered_set<std::uint64_t> fetching;
  std::map<std::uint64_t, message_ptr> fetched;
  // Journaled messages on their way out or being moved whose body is being read off the io
  // thread (body_read.cpp): an expiry's advisory or dead-letter copy (expiry.cpp), a dead
  // letter or a delayed redelivery's copy (redelivery.cpp). Skipped like those in flight
  // until the read completes, so no consumer gets a message that has already left.
  std::unordered_set<std::uint64_t> leaving;
  std::unordered_map<std::uint64_t, std::uint32_t> returned;
  // Put back with a delay (redelivery.cpp): due time by msg_seq. A journaled one stays in
  // the index and dispatch skips it until it is due; a memory one waits in deferred_memory,
  // out of `memory`, and moves there when due. next_due = the earliest due time, 0 = none.
  std::map<std::uint64_t, std::int64_t> deferred;
  std::map<std::uint64_t, message_ptr> deferred_memory;
  std::int64_t next_due = 0;
  // The destination policy (policy.h) that applies, looked up once (policy_resolved).
  const destination_policy* policy = nullptr;
  bool policy_resolved = false;
  // A prioritized queue's (policy prioritized_messages) dispatch state; null otherwise.
  std::unique_ptr<priority_cursors> by_priority;

  std::vector<subscription*> consumers;
  std::size_t next_consumer = 0;  // round robin
  // Consumer rules (consumers.cpp): `ranked` when some consumer is exclusive or has a
  // priority other than 0 (pick_consumer takes its slower path only then); the exclusive
  // consumer that gets everything, if any; message group (JMSXGroupID) -> its consumer.
  // None of it is persisted: ActiveMQ rebuilds group owners as messages are dispatched.
  // The groups are bounded by the policy's message_group_map_cache_size (group_map.h).
  bool ranked = false;
  subscription* exclusive_owner = nullptr;
  group_map groups;
  std::uint64_t inflight = 0;     // deliveries not yet acked
  std::uint64_t bytes = 0;        // see the file comment
  std::int64_t earliest_expiry = 0;  // ms since epoch of the earliest known expiry; 0 = none
  bool dirty = false;                // queued for dispatch in engine::impl::dirty_
  bool create_journaled = false;     // destination_create appended (queues)
  std::uint64_t pending_appends = 0; // journaled adds to this queue not yet durable
  std::int64_t last_expiry_scan = 0; // ms; tick scans a queue at most once a second
  // Queues only: when the garbage collector (gc.cpp) first saw it unused and empty; {} = in use.
  std::chrono::steady_clock::time_point idle_since{};

  std::uint64_t enqueued = 0, dequeued = 0, expired = 0, dead_lettered = 0, redelivered = 0;
};

struct subscription {
  session* owner = nullptr;
  std::string id;
  std::string destination;  // as given on SUBSCRIBE
  ack_mode mode = ack_mode::auto_ack;
  std::uint32_t prefetch = 0;
  queue* q = nullptr;
  std::unique_ptr<queue> own;  // the private queue of a non-durable topic subscription
  std::string topic;           // topic subscriptions (durable or not)
  bool durable = false;
  std::optional<selector::expression> filter;  // SUBSCRIBE's selector (broker/engine/filter.h)
  bool exclusive = false;   // activemq.exclusive:true (consumers.cpp)
  std::uint8_t priority = 0;  // activemq.priority, 0-127: higher is offered first
  // A consumer of several queues: a wildcard (/queue/a.>: every matching queue, those that
  // exist and those made later) or a composite (/queue/a,/queue/b); `q` is then an empty
  // queue of its own and `sources` the queues it consumes from.
  bool wildcard_queue = false;
  std::vector<queue*> sources;
  std::map<std::uint64_t, delivery> unacked;  // by ack tag = delivery order
  std::uint64_t delivered = 0;
};

// A RECEIPT (or ERROR) waiting for its turn: receipts go out in frame order, and a frame's
// slot is ready when its effect is applied (`waiting` journal appends completed). What it
// sends is encoded when it leaves (broker/engine/receipts.cpp), so an ERROR that replaces a
// RECEIPT still knows the receipt id it answers.
enum class receipt_kind { plain, duplicate };

struct receipt_slot {
  std::uint64_t id = 0;
  receipt_kind kind = receipt_kind::plain;
  std::optional<std::string> receipt_id;  // the frame's `receipt` header, if it asked for one
  std::optional<failure> error;           // send this ERROR (with receipt_id) instead, then close
  std::uint32_t waiting = 0;
  bool close = false;  // close the connection once this is flushed
};

struct tx_send {
  std::string destination;
  message msg;
  // An AMQ_SCHEDULED_* SEND: becomes a schedule entry at COMMIT (scheduled.cpp,
  // plan_tx_schedule); `destination` is then the SEND's whole (maybe composite) address.
  bool scheduled = false;
};
struct tx_ack {
  std::string subscription_id;
  std::uint64_t tag = 0;
  bool nack = false;
};
struct transaction {
  std::vector<tx_send> sends;
  std::vector<tx_ack> acks;
  std::uint64_t bytes = 0;  // held in memory until COMMIT / ABORT
  // A SEND dropped as a resend of a message the store holds: the COMMIT's RECEIPT then
  // passes the fence like the resend's own would (duplicate_receipt.cpp).
  bool dropped_journaled_resend = false;
};

enum class session_state { awaiting_connect, connected, closing };

struct session {
  session_id id = 0;
  session_sink* sink = nullptr;
  session_info info;
  session_state state = session_state::awaiting_connect;
  stomp::version version = stomp::version::v1_0;
  std::string login, client_id;
  std::chrono::system_clock::time_point opened_at;
  // Temporary destinations this connection made (their broker-wide names), deleted with it.
  std::vector<std::string> temp_destinations;

  std::map<std::string, std::unique_ptr<subscription>> subs;
  std::unordered_map<std::uint64_t, subscription*> tags;  // ack tag -> its subscription
  std::uint64_t next_tag = 0;
  std::map<std::string, transaction> txs;

  std::deque<receipt_slot> slots;
  std::uint64_t next_slot = 1;

  // Flow control: frames held while a SEND waits for space (in arrival order).
  std::deque<stomp::frame> parked;
  std::chrono::steady_clock::time_point blocked_since{};
  failure blocked_on;  // why, for admin and the timeout ERROR
  bool backlogged = false;  // the sink's backlog is over the limit: no dispatch to it

  // CONNECT's password check (login.cpp): its verdict, and frames that came meanwhile.
  std::optional<login_verdict> login_checked;
  bool verifying_login = false;
  std::vector<stomp::frame> held_for_login;

  std::uint64_t frames_in = 0, messages_in = 0, messages_out = 0;
  // Destinations this session sent to while someone listened to advisories (advisory.cpp):
  // it is their producer until it ends.
  std::set<std::string, std::less<>> produced_to;
};

struct topic {
  std::string name;
  std::vector<subscription*> subscribers;  // non-durable
  std::map<std::string, queue*> durable;   // key -> durable subscription queue
  std::uint64_t enqueued = 0;
  std::chrono::steady_clock::time_point idle_since{};  // see queue::idle_since
};

// Where a message accepted by the broker goes, decided when it is accepted and carried out
// once it is durable (or at once when nothing is journaled).
struct planned_send {
  bool to_topic = false;
  std::string destination;
  std::uint64_t seq = 0;
  std::uint64_t bytes = 0;
  std::int64_t expires_ms = 0;
  bool journaled = false;
  std::vector<std::string> targets;  // journaled targets (queue key or durable keys)
  message_ptr copy;                  // for queues that hold it in memory
  std::string producer_id;           // duplicate detection (dedup.h); "" when absent
  std::uint64_t producer_seq = 0;
};

}  // namespace tandem::broker::detail
