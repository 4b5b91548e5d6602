// In-memory forms of the journal's records and headers, and their codecs.
// The byte layouts (and why they look like this) are in journal/format.h.
//
// Codecs are pure functions (no I/O, no allocation beyond the output), safe on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <boost/outcome/std_result.hpp>

#include "journal/format.h"
#include "journal/identity.h"
#include "journal/message.h"

namespace tandem::journal {

using format::record_type;

// A message and the targets (queue keys) it is stored for. The message's own fields are
// the base's, so `add.body`, `add.msg_seq` read as before; the encoding puts the targets
// right after msg_seq (format.h section 5).
struct message_add : message {
  std::vector<std::string> targets;  // >= 1 queue keys
  friend bool operator==(const message_add&, const message_add&) = default;
};

struct message_remove {
  std::string target;
  std::uint64_t msg_seq = 0;
  friend bool operator==(const message_remove&, const message_remove&) = default;
};

struct destination_create {
  std::string name;
  friend bool operator==(const destination_create&, const destination_create&) = default;
};

struct destination_delete {
  std::string name;
  friend bool operator==(const destination_delete&, const destination_delete&) = default;
};

struct durable_subscription {
  std::string client_id;
  std::string subscription_name;
  std::string topic;
  std::string selector;
  // The login that made it ("" = unowned: a record written before owners were kept, or
  // by an anonymous session). Only record 6 carries it (journal/format.h section 5).
  // "= {}" lets the many {client_id, name, topic, selector} initialisers leave it out
  // without -Wmissing-field-initializers.
  std::string owner_login = {};
  friend bool operator==(const durable_subscription&, const durable_subscription&) = default;
};
struct durable_subscription_create : durable_subscription {};
struct durable_subscription_remove : durable_subscription {};

struct epoch_start {
  std::uint64_t epoch = 0;
  std::uint64_t cut_segment = 0;  // end of the last valid record recovered
  std::uint64_t cut_offset = 0;
  std::uint64_t last_lsn = 0;
  std::string broker_name;
  friend bool operator==(const epoch_start&, const epoch_start&) = default;
};

struct checkpoint_record {
  std::uint64_t lsn = 0;
  std::string file_name;
  friend bool operator==(const checkpoint_record&, const checkpoint_record&) = default;
};

// The parts of the index that no live record implies: the msg_seq counter and the
// producers' dedup windows. The store writes it (it is not appendable) before GC deletes
// segments whose records were the only evidence of them, so a full replay still ends with
// the state a checkpoint would hold. Replay: next_msg_seq = max(current, next_msg_seq);
// each listed window replaces the producer's window, or with `extend` is appended to it
// (a window too long for one record continues in the next); producers not listed keep
// theirs.
struct index_state {
  struct window {
    std::string producer_id;
    bool extend = false;
    std::vector<std::uint64_t> seqs;  // oldest first
    friend bool operator==(const window&, const window&) = default;
  };
  std::uint64_t next_msg_seq = 0;
  std::vector<window> windows;
  friend bool operator==(const index_state&, const index_state&) = default;
};

using batch_item = std::variant<message_add, message_remove>;

// A transaction's SENDs and ACKs, written as one record (atomic after a crash).
struct batch {
  std::vector<batch_item> items;
  friend bool operator==(const batch&, const batch&) = default;
};

using record = std::variant<message_add, message_remove, batch, destination_create,
                            destination_delete, durable_subscription_create,
                            durable_subscription_remove, epoch_start, checkpoint_record,
                            index_state>;

record_type type_of(const record& r) noexcept;
std::string_view to_string(record_type t) noexcept;  // "message_add", ...; "unknown"

// The target key under which a durable subscription's messages are enqueued. The broker
// uses it when it picks a message's targets; durable_subscription_remove drops that key.
std::string subscription_target(std::string_view client_id, std::string_view subscription_name);

// Appends the payload encoding of `r` (format.h section 5) to `out`. Errors:
// errc::invalid_argument (nested batch is impossible by type; empty target list, a string
// longer than 4 GiB).
std::error_code encode_payload(const record& r, std::vector<std::byte>& out);
// Decodes a payload of the given type; the span must be consumed exactly.
// Errors: errc::corrupt_file (malformed, unknown type), never throws.
boost::outcome_v2::std_result<record> decode_payload(record_type type,
                                                     std::span<const std::byte> payload);
// Appends the payload of a compaction copy of `m`: encode_payload's message_add with the
// copy flag set (format.h section 5), so replay does not count the copy as a new send in
// its producer's dedup window. decode_payload accepts the flag and drops it: a copy reads
// back equal to the original. Errors as encode_payload.
std::error_code encode_compaction_copy(const message_add& m, std::vector<std::byte>& out);

struct segment_header {
  std::uint32_t version = format::segment_format_version;
  store_id store;
  std::uint64_t seq = 0;
  std::uint64_t epoch = 0;
  std::uint64_t capacity = 0;
};
// Writes exactly format::segment_header_bytes, checksum included.
void encode_segment_header(const segment_header& h, std::span<std::byte, format::segment_header_bytes> out);
// Accepts versions oldest_segment_format_version..segment_format_version (the caller
// applies the rules of h.version, format.h section 7). Errors: errc::corrupt_file (magic,
// checksum, reserved), errc::unsupported_version (any other version).
boost::outcome_v2::std_result<segment_header> decode_segment_header(
    std::span<const std::byte, format::segment_header_bytes> in);

struct record_header {
  std::uint64_t checksum = 0;
  std::uint32_t length = 0;  // payload bytes
  record_type type{};
  std::uint8_t flags = 0;    // format::record_flag_group_start (version 2 segments)
  std::uint64_t lsn = 0;
  std::uint64_t epoch = 0;
  bool group_start() const noexcept { return (flags & format::record_flag_group_start) != 0; }
};
// Fills the 32 header bytes for `payload` (computing the checksum) into `out`.
void encode_record_header(record_type type, std::uint64_t lsn, std::uint64_t epoch,
                          std::span<const std::byte> payload,
                          std::span<std::byte, format::record_header_bytes> out, std::uint8_t flags = 0);
// Parses the header fields without validating anything.
record_header parse_record_header(std::span<const std::byte, format::record_header_bytes> in) noexcept;
bool is_zero_header(std::span<const std::byte, format::record_header_bytes> in) noexcept;
// Checks type, flags (only known_record_flags may be set; a version 1 segment allows none,
// which its reader checks), reserved and the checksum over header[8,32) + payload. On failure
// returns a short reason ("checksum mismatch", "unknown record type 17", ...), else "".
std::string_view verify_record(std::span<const std::byte, format::record_header_bytes> header,
                               std::span<const std::byte> payload) noexcept;

}  // namespace tandem::journal
