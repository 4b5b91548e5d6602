// Artemis's duplicate detection header for STOMP, `_AMQ_DUPL_ID: <id>` (a unique string per
// message, remembered per address), mapped onto Tandem's producer windows (dedup.h): the
// "producer" is "_AMQ_DUPL_ID:" + destination, the seq the FNV-1a 64-bit hash of the id. So
// it is stored with the message, replayed at recovery and survives a takeover exactly like
// tandem-producer-id / -seq, and its window per destination is `dedup_window` ids.
//
// The hash is fixed forever: it is journaled, and a new master must compute the same seq
// for a resend. Two different ids of one destination collide with probability about
// window / 2^64 per SEND. A SEND carrying tandem-producer-id as well uses that instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::broker::detail {

inline constexpr std::string_view amq_dupl_header = "_AMQ_DUPL_ID";

std::string amq_dupl_producer(std::string_view destination);
std::uint64_t amq_dupl_seq(std::string_view id);

}  // namespace tandem::broker::detail
