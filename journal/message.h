// tandem::journal::message: a stored message as every message store keeps it and gives it
// back (message_store::read). The broker's engine holds its in-memory messages in this
// type too, so a message read back from a store and one kept in RAM are the same thing.
//
// It says nothing about where the message is queued: the record that stores it
// (message_add, records.h) adds its targets on top, and the live index says which targets
// still hold it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tandem::journal {

struct message {
  std::uint64_t msg_seq = 0;       // store-wide unique, never reused (allocate_msg_seq)
  std::string message_id;          // the STOMP message-id
  std::string producer_id;         // "" when absent (no duplicate detection)
  std::uint64_t producer_seq = 0;  // 0 when absent
  std::int64_t expires_ms = 0;     // ms since Unix epoch, 0 = never
  std::uint8_t priority = 4;       // 0..9, JMS order
  bool persistent = true;
  std::vector<std::pair<std::string, std::string>> headers;  // arrival order
  std::string body;                                          // may hold NULs
  // Delivery state of a message put back with a delay (redelivery policy, broker/engine/
  // redelivery.cpp): not offered to consumers before deliver_at_ms (ms since Unix epoch,
  // 0 = at once), and delivered `redeliveries` times already (its next delivery carries
  // redelivered:true and counts on from there). Both 0 for a message as sent.
  std::int64_t deliver_at_ms = 0;
  std::uint32_t redeliveries = 0;
  friend bool operator==(const message&, const message&) = default;
};

}  // namespace tandem::journal
