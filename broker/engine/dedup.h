// Duplicate detection for SENDs that carry `tandem-producer-id` and `tandem-producer-seq`
// (engine.h): a producer that resends after a failover must not duplicate what the old
// master already accepted. The engine asks ONE question, here: was (producer, seq) accepted
// before?
//
// Who remembers what (each seq is covered by exactly one of the two, by role):
// - The store's per-producer window (journal::index::is_duplicate) covers every journaled
//   send once it is durable. It is replayed at recovery, so it survives a restart and a
//   failover: it is THE window for persistent messages. Its size is the journal's
//   producer_window (tandemd passes engine_config::dedup_window, so both are one setting).
// - `accepted_` covers what the store does not know (yet), for the life of this process:
//   * journaled sends whose append is in flight (the store records a seq only once durable),
//     until `now_durable` hands them over;
//   * sends inside a transaction (held in memory until COMMIT, journaled then);
//   * non-persistent sends, and every send of a broker without a store: such messages die
//     with the process, so a window that dies with it is enough.
//   Bounded like the store's: the last `window` seqs per producer.
//
// Known gaps, kept as they are for issue 12 to close (the places to change are marked in
// dedup.cpp): a seq stays in `accepted_` when its transaction aborts or its append fails, so
// a resend is then dropped although nothing was stored; a duplicate of an in-flight
// original is receipted at once, before the original is durable.
//
// Threads: the io thread only (engine.h).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace tandem::journal {
class message_store;
}

namespace tandem::broker::detail {

class dedup {
 public:
  // `store` may be null (a memory-only broker); it must outlive this object.
  dedup(std::size_t window, const journal::message_store* store) : window_(window), store_(store) {}

  // True when (producer, seq) was accepted before. An empty producer id never is.
  bool seen(const std::string& producer, std::uint64_t seq) const;
  // The broker accepted a SEND with these ids (whatever becomes of its message).
  void accepted(const std::string& producer, std::uint64_t seq);
  // A journaled send's append is durable: the store's window holds the seq from now on.
  void now_durable(const std::string& producer, std::uint64_t seq);

 private:
  struct window {
    std::deque<std::uint64_t> order;  // oldest first
    std::unordered_set<std::uint64_t> seqs;
  };
  std::size_t window_;
  const journal::message_store* store_;
  std::unordered_map<std::string, window> accepted_;
};

}  // namespace tandem::broker::detail
