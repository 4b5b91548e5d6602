// Duplicate detection for SENDs that carry `tandem-producer-id` and `tandem-producer-seq`
// (engine.h): a producer that resends after a failover must not duplicate what the old
// master already accepted. The engine asks ONE question, here: what became of (producer,
// seq) so far? `stored` (answer the resend with a RECEIPT marked tandem-duplicate, store
// nothing), `journaled` (the same, but the original is in the store's window: the RECEIPT
// waits for a store barrier, below), `in_flight` (its original's append is not durable yet:
// the resend waits, parked like a SEND waiting for space, and is asked again when the
// original completes), or `fresh` (store it).
//
// Why `journaled` waits (issue 12, promise.md "Long run 3" finding 4, failover.md bug 8): a
// resend answered from the store's window writes nothing, so no fdatasync-then-confirm step
// stands between it and its RECEIPT; a master stopped and resumed after a newer epoch took
// over answered such resends before its watchdog stepped it down. The engine answers it
// only when message_store::fence_barrier completes (send.cpp, receipt_duplicate), which
// confirms mastership after the resend arrived; a failed barrier answers nothing. What only
// `stored_` holds dies with this process anyway and is answered at once.
//
// The rule (issue 12, bugs 2a-2c): a seq counts as stored only once its message is, so a
// RECEIPT for a resend never comes before the original is durable, and a seq whose original
// was aborted or refused is fresh again.
//
// Who remembers what (each seq is covered by exactly one of the three, by role):
// - The store's per-producer window (journal::index::is_duplicate) covers every journaled
//   send once it is durable. It is replayed at recovery, so it survives a restart and a
//   failover: it is THE window for persistent messages. Its size is the journal's
//   producer_window (tandemd passes engine_config::dedup_window, so both are one setting).
// - `in_flight_`: journaled sends whose append is queued (begin_append), until it is
//   durable (durable: the store's window holds it from then on) or fails (failed: fresh).
// - `stored_`: what the store does not keep, for the life of this process: non-persistent
//   sends, topic sends without durable subscribers, every send of a broker without a store.
//   Such messages die with the process, so a window that dies with it is enough. Bounded
//   like the store's: the last `window` seqs per producer.
// A SEND inside a transaction is recorded nowhere until its COMMIT plans it (an ABORT
// leaves nothing behind).
//
// Threads: the io thread only (engine.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace tandem::journal {
class message_store;
}

namespace tandem::broker::detail {

class dedup {
 public:
  enum class status { fresh, in_flight, stored, journaled };

  // `store` may be null (a memory-only broker); it must outlive this object.
  // `max_producers`: producers whose `stored_` window is kept (least recently stored to
  // goes first; 0 = no bound), as the store bounds its own (journal::options::max_producers).
  dedup(std::size_t window, std::size_t max_producers, const journal::message_store* store);

  // What became of (producer, seq). An empty producer id is always fresh.
  status check(const std::string& producer, std::uint64_t seq) const;
  // A send was applied without the journal (see above): stored from now on.
  void stored(const std::string& producer, std::uint64_t seq);
  // A journaled send's append is queued: in flight until end_append().
  void begin_append(const std::string& producer, std::uint64_t seq);
  // Its append completed. Durable: the store's window holds the seq from now on (the store
  // updates its index before it runs the completion). Failed: nothing is stored, a resend
  // is fresh. Either way this object forgets it.
  void end_append(const std::string& producer, std::uint64_t seq);
  // Windows dropped at max_producers since this object was made: of non-journaled sends
  // (ours), and of journaled ones (the store's index; what its recovery replay dropped again
  // is not counted). A resend from such a producer is no longer recognised as a duplicate.
  std::uint64_t evicted_memory() const { return evicted_; }
  std::uint64_t evicted_journal() const;
  // An operator's line when windows were evicted since the last one, at most once per
  // `every` (the first at once); nullopt otherwise. Called from the engine's tick.
  std::optional<std::string> eviction_news(std::chrono::steady_clock::time_point now,
                                           std::chrono::seconds every = std::chrono::seconds(60));

 private:
  struct window {
    std::deque<std::uint64_t> order;  // oldest first
    std::unordered_set<std::uint64_t> seqs;
    std::list<std::string>::iterator recency;  // its place in recency_
  };
  std::size_t window_;
  std::size_t max_producers_;
  const journal::message_store* store_;
  std::unordered_map<std::string, window> stored_;
  std::list<std::string> recency_;  // producers of stored_, least recently stored to first
  std::uint64_t evicted_ = 0;
  std::uint64_t journal_evicted_before_ = 0;  // the store's count when we started
  std::uint64_t evicted_reported_ = 0;
  std::optional<std::chrono::steady_clock::time_point> reported_at_;
  // Count per (producer, seq): a COMMIT may carry the same pair twice (the second is
  // dropped as in flight, but the bookkeeping must not underflow).
  std::map<std::pair<std::string, std::uint64_t>, unsigned> in_flight_;
};

}  // namespace tandem::broker::detail
