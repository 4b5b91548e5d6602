// UTF-8 checks for names that leave the broker in JSON and Prometheus text (issue 17,
// finding 5: a destination name with invalid UTF-8 was journaled; afterwards GET
// /api/destinations closed the connection unanswered, since nlohmann::json refuses to dump
// it, and /metrics emitted invalid UTF-8).
//
// valid_utf8 is strict (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing
// above U+10FFFF, no truncated sequence. The STOMP grammar says header values are UTF-8; the
// broker refuses a destination that is not (ERROR), and printable_utf8 shows the names that
// older versions journaled before that check.
#pragma once

#include <string>
#include <string_view>

namespace tandem::stomp {

bool valid_utf8(std::string_view text);

// `text` with every byte that is not part of a valid UTF-8 sequence written as "\xNN" (two
// lowercase hex digits); valid text comes back unchanged.
std::string printable_utf8(std::string_view text);

}  // namespace tandem::stomp
