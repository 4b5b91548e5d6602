// The index-relevant prefix of a message_add payload, decoded without copying: recovery
// and compaction use it so replaying a million messages never touches headers or bodies.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/detail/codec.h"

namespace tandem::journal::detail {

struct message_view {
  std::uint64_t msg_seq = 0;
  std::vector<std::string_view> targets;  // views into the payload
  std::string_view producer_id;
  std::uint64_t producer_seq = 0;
  std::int64_t expires_ms = 0;
  std::uint8_t priority = 0;
  bool compaction_copy = false;  // flags bit 1: a copy, not a new send (format.h section 5)
  std::string_view message_id;   // a scheduler entry's job id (index::schedules())
  std::int64_t deliver_at_ms = 0;  // flags bit 2, else 0
};

// Decodes the prefix of a message_add payload (format.h section 5) into `out` (reusing its
// vector). Returns false if the prefix is malformed. Does not validate headers/body: the
// record checksum already covers them and read() decodes them fully.
inline bool decode_message_view(std::span<const std::byte> payload, message_view& out) {
  decoder d(payload);
  out.msg_seq = d.u64();
  std::uint32_t n = d.count(4);
  out.targets.clear();
  for (std::uint32_t i = 0; i < n && d.ok(); ++i) out.targets.push_back(d.str_view());
  out.message_id = d.str_view();
  out.producer_id = d.str_view();
  out.producer_seq = d.u64();
  out.expires_ms = d.i64();
  out.priority = d.u8();
  const std::uint8_t flags = d.u8();
  out.compaction_copy = (flags & 0x02) != 0;
  out.deliver_at_ms = (flags & 0x04) != 0 ? d.i64() : 0;
  return d.ok() && n != 0;
}

}  // namespace tandem::journal::detail
