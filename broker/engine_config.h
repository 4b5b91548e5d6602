// Settings of the broker engine (messaging semantics and limits). Part of the broker's JSON
// configuration (broker/config.h embeds it); every field has a config key of the same name.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tandem::broker {

struct user_account {
  std::string login;
  std::string password_hash;  // "sha256:<salt hex>:<digest hex>" (see broker/auth.h)
};

struct engine_config {
  std::string broker_name = "tandem";
  bool allow_anonymous = false;
  std::vector<user_account> users;

  // Delivery.
  std::uint32_t default_prefetch = 1000;        // per subscription unless activemq.prefetchSize
  std::uint32_t max_deliveries = 6;             // then the message moves to the DLQ (ActiveMQ: 6 redeliveries)
  std::string dead_letter_strategy = "individual";  // "individual": /queue/DLQ.<name>; "shared": /queue/ActiveMQ.DLQ
  bool expired_to_dlq = false;                  // expired messages are dropped (ActiveMQ default for non-persistent)

  // Limits and flow control.
  std::uint64_t max_destination_bytes = 256ull << 20;   // pending bytes per destination before producers block
  std::uint64_t max_memory_bytes = 1024ull << 20;       // broker-wide non-persistent + in-flight bytes
  std::uint64_t max_store_bytes = 64ull << 30;          // journal size before producers block
  std::chrono::milliseconds send_timeout{30000};        // a blocked producer gets ERROR after this
  std::uint64_t max_session_backlog_bytes = 4ull << 20; // stop dispatching to a slow consumer
  std::uint32_t max_connections = 10000;
  std::uint32_t max_subscriptions_per_session = 1000;
  std::uint32_t max_transactions_per_session = 100;

  // Heart-beats: what the broker asks for / offers, and the grace factor on client silence.
  std::chrono::milliseconds heartbeat_send{10000};
  std::chrono::milliseconds heartbeat_expect{10000};
  double heartbeat_grace = 1.5;

  // Duplicate detection (producer resends after failover).
  std::uint32_t dedup_window = 1024;
};

}  // namespace tandem::broker
