// Settings of the broker engine (messaging semantics and limits). Part of the broker's JSON
// configuration (broker/config.h embeds it); every field has a config key of the same name.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tandem::broker {

struct user_account {
  std::string login;
  std::string password_hash;  // "pbkdf2-sha256:<iterations>:<salt>:<key>" (broker/engine/auth.h)
  // Groups the user is in: "admin" (the admin port's state-changing requests and its
  // reads), "metrics" (the admin port's reads), and any group the destination
  // authorization entries name (broker/engine/authorization.h).
  std::vector<std::string> groups;
};

// One entry of "authorization" (broker/engine/authorization.h says how they are applied).
struct authorization_entry {
  bool topic = false;    // "topic": pattern, else "queue": pattern
  std::string pattern;   // ActiveMQ wildcards: '*' one element, '>' the rest
  std::vector<std::string> read, write, admin;  // groups
};

// A destination policy's redelivery settings (ActiveMQ's RedeliveryPolicy as its
// redeliveryPlugin applies it; the config keys say which ActiveMQ name each one is). A NACK
// on a destination with these settings puts the message back after a delay instead of
// dead-lettering it at once, until it has been redelivered maximum_redeliveries times
// (broker/engine/redelivery.cpp; the delay of each attempt: policy.h redelivery_delay).
struct redelivery_settings {
  std::int64_t maximum_redeliveries = 6;                       // -1 = no maximum
  std::chrono::milliseconds initial_redelivery_delay{1000};    // before the first redelivery
  std::chrono::milliseconds redelivery_delay{1000};            // before each later one
  bool use_exponential_back_off = false;                       // multiply the previous delay ...
  double back_off_multiplier = 5.0;                            // ... by this (> 1 to take effect)
  std::chrono::milliseconds maximum_redelivery_delay{-1};      // cap of a backed-off delay; -1 = none
  friend bool operator==(const redelivery_settings&, const redelivery_settings&) = default;
};

// One entry of "destination_policies" (ActiveMQ's policyEntry): the destinations a pattern
// matches (the same wildcards as authorization_entry) and what applies to them. A queue
// takes the most specific matching entry (broker/engine/policy.h).
struct destination_policy {
  bool topic = false;   // "topic": pattern, else "queue": pattern
  std::string pattern;  // '*' one element, '>' the rest
  std::optional<redelivery_settings> redelivery;  // unset: NACK dead-letters at once
  // ActiveMQ's prioritizedMessages: pending messages go out by priority (9 first, the STOMP
  // `priority` header, 4 when absent), FIFO within a priority (broker/engine/dispatch.cpp).
  bool prioritized_messages = false;
  // ActiveMQ's messageGroupMapFactory cacheSize: the message groups (JMSXGroupID) a queue
  // keeps pinned to a consumer; one more evicts the least recently used (group_map.h).
  std::uint32_t message_group_map_cache_size = 1024;
};

struct engine_config {
  std::string broker_name = "tandem";
  bool allow_anonymous = false;
  std::vector<user_account> users;
  // Per-destination authorization; unset = not checked (authorization.h).
  std::optional<std::vector<authorization_entry>> authorization;

  // Delivery.
  std::uint32_t default_prefetch = 1000;        // per subscription unless activemq.prefetchSize
  // A message is delivered at most max_deliveries times: when it comes back (its consumer
  // closed, its ack rolled back) after the max_deliveries-th delivery it moves to the dead
  // letter queue instead. 7 = ActiveMQ's maximumRedeliveries 6 plus the first delivery. A
  // NACK does not count: it moves the message to the DLQ at once, unless the destination's
  // policy (destination_policies, redelivery) redelivers it after a delay (redelivery.cpp). The
  // first delivery after a restart does not count (see engine.h). A message that fails
  // again in a DLQ is dropped (ActiveMQ does not dead-letter its DLQ).
  std::uint32_t max_deliveries = 7;
  // Where dead letters go:
  //   "shared"      /queue/ActiveMQ.DLQ for every destination (ActiveMQ's default)
  //   "individual"  /queue/DLQ.<name>, <name> without its /queue/ or /topic/ prefix (a
  //                 durable subscription's letters go to the DLQ of its topic's name), as
  //                 ActiveMQ's individualDeadLetterStrategy with queuePrefix "DLQ."
  // A dead letter keeps its headers and body, loses `expires` (kept until someone reads it),
  // and gains `original-destination` and `dlqDeliveryFailureCause` ("delivered 7 times",
  // "NACK from the consumer ...", "expired"). Persistent letters are moved with one journal
  // batch (remove + add).
  std::string dead_letter_strategy = "shared";
  bool expired_to_dlq = false;                  // false: expired messages are dropped
  // Per-destination policies (policy.h); empty = every destination as described above.
  std::vector<destination_policy> destination_policies;

  // Limits and flow control.
  std::uint64_t max_destination_bytes = 256ull << 20;   // pending bytes per destination before producers block
  std::uint64_t max_memory_bytes = 1024ull << 20;       // broker-wide bytes of messages held in RAM
                                                        // (non-persistent, transactions); non-persistent
                                                        // SENDs wait above it
  // Count the process's own RSS when it starts serving in max_memory_bytes (memory_budget.h
  // "baseline"); false: only bytes held for clients. Neither bounds RSS (docs/operations.md).
  bool max_memory_counts_baseline = false;
  std::uint64_t max_store_bytes = 64ull << 30;          // journal live bytes before persistent SENDs wait
  std::chrono::milliseconds send_timeout{30000};        // a blocked producer gets ERROR after this
  std::uint64_t max_session_backlog_bytes = 4ull << 20; // stop dispatching to a slow consumer
  // Largest frame a client may send (command + headers + body), as ActiveMQ's STOMP
  // transport (maxFrameSize, 100 MiB). The connection's parser enforces it; its ERROR names
  // the key.
  std::uint64_t max_frame_bytes = 100ull << 20;
  std::uint32_t max_connections = 10000;
  std::uint32_t max_subscriptions_per_session = 1000;
  std::uint32_t max_transactions_per_session = 100;
  // A destination name longer than this (bytes, with its /queue/ or /topic/ prefix) is refused
  // with an ERROR, as is one that is not valid UTF-8 (issue 17).
  std::uint32_t max_destination_name_bytes = 1024;
  // Destinations the broker holds at most (queues plus topics): a SEND or SUBSCRIBE that would
  // create one more gets an ERROR. With destination_gc, a queue or topic with no subscriber,
  // no message and no journal record is dropped after that long unused (ActiveMQ's
  // gcInactiveDestinations; issue 17: 100,000 SUBSCRIBE/UNSUBSCRIBE pairs kept 100 MB for
  // good). 0 = never dropped.
  std::uint32_t max_destinations = 10000;
  std::chrono::milliseconds destination_gc{60000};

  // Heart-beats: the client's requested periods are served, raised to these floors (0 turns
  // that direction off); a client silent for its negotiated period times the grace is
  // dropped (broker/connection.cpp). ActiveMQ serves what the client asks, with grace 1.5.
  std::chrono::milliseconds heartbeat_send{100};
  std::chrono::milliseconds heartbeat_expect{100};
  double heartbeat_grace = 1.5;

  // Duplicate detection (producer resends after failover, engine.h): seqs remembered per
  // producer id. Give the journal the same value (journal::options::producer_window): once a
  // journaled send is durable only the store's window remembers it (broker/engine/dedup.h).
  std::uint32_t dedup_window = 1024;
  // Producer ids that keep a window (journal::options::max_producers, and the engine's own
  // window for what the store does not keep): one more drops the window of the producer
  // that sent least recently. 0 = no bound (every producer id ever seen keeps one).
  std::uint32_t dedup_max_producers = 10000;
};

}  // namespace tandem::broker
