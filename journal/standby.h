// A slave's head start on a takeover (docs/failover.md section 1, "A slave's head start").
//
// While another broker is master, a slave can read and decode each new checkpoint of the
// store (format.h section 6) as it appears. Checkpoint files are written whole and renamed
// into place, and never written again under that name by the same master, so what a slave
// read stays true; when the slave takes over, store::open (options::preloaded) checks with
// one small read that the newest file is still the one preloaded and then replays only the
// log after it, instead of reading and decoding the whole file on the takeover's critical
// path. It checks the fallback (the one before) the same way instead of reading it whole.
//
// Read-only: the preloader never writes, takes no lock and opens no segment, so it is safe
// beside a live master on any file system the store is safe on. Its cost is the slave's
// memory (a decoded index, about what the master holds: <= 128 B per pending message) and
// one read of each checkpoint file the master writes.
//
// It also reads the first record of each segment once the master has moved on to a newer
// one (the fence points, format.h section 7), so the takeover's open reads only those of
// the last segments, and it reads the sealed segments of the log after the held
// checkpoint (detail/sealed_capture.h: a segment before the last is never rewritten), so
// the takeover replays them from memory and reads only the last segment. That costs the
// slave the memory of those segments' data, at most `sealed_bytes` (constructor). It never
// reads the segment the master is appending to: a network file system's client cache may
// keep what it read while the master writes on.
//
// Threads: refresh() on one thread at a time (a slave's own thread); take() from any
// thread, once the refreshing thread is done with it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "journal/fs/file_system.h"
#include "journal/identity.h"

namespace tandem::journal {

namespace detail {
struct preloaded_checkpoint;
struct walk_input;
}
using preloaded_checkpoint = detail::preloaded_checkpoint;

class checkpoint_preloader {
 public:
  // `dir` is the store directory (the one holding DIR/identity and DIR/journal). The two
  // sizes must be the ones the broker will open the store with (options::producer_window,
  // max_producers); store::open ignores a preload built with others.
  // `sealed_bytes`: the most it holds of sealed segments (0 = none).
  checkpoint_preloader(std::filesystem::path dir, std::size_t producer_window, std::size_t max_producers,
                       fs::file_system* fs = nullptr, std::uint64_t sealed_bytes = default_sealed_bytes);
  ~checkpoint_preloader();
  checkpoint_preloader(const checkpoint_preloader&) = delete;
  checkpoint_preloader& operator=(const checkpoint_preloader&) = delete;

  struct outcome {
    std::uint64_t lsn = 0;            // the checkpoint held after this call, 0 = none
    bool loaded_now = false;          // this call read and decoded it
    std::uint64_t live_messages = 0;  // in the checkpoint held
    std::uint64_t bytes = 0;          // its file size
    std::chrono::milliseconds took{0};
    // A newest checkpoint that could not be used (and is not held), in an operator's words;
    // the next refresh tries it again only once a newer one appears.
    std::string skipped;
    // Sealed segments held after the checkpoint, and their bytes in memory.
    std::uint64_t sealed_segments = 0;
    std::uint64_t sealed_bytes = 0;
    // Bytes of segments already held that this call's reading of sealed segments went over
    // again (from memory). 0 when it went on from where the last complete reading ended.
    std::uint64_t sealed_bytes_read_again = 0;
  };

  // The default of `sealed_bytes`: at most this many bytes of sealed segments are held
  // (beyond it the takeover reads the rest itself). The log after a checkpoint is at most
  // checkpoint_every_bytes of appends (64 MiB by default) plus what compaction copies.
  static constexpr std::uint64_t default_sealed_bytes = 128ull << 20;

  // Loads the store's newest checkpoint when it is not the one held. Errors: the store has
  // no identity yet (errc::not_a_store), the journal directory cannot be listed (OS
  // errors); a checkpoint that cannot be read or decoded is not an error (outcome::skipped).
  result<outcome> refresh();

  // The checkpoint held, for options::preloaded; the preloader holds none afterwards.
  std::shared_ptr<preloaded_checkpoint> take();

  // Ends a reading of sealed segments in progress at its next read (it keeps nothing of
  // that round), so that a takeover never waits for it; a checkpoint being decoded is
  // finished. Any thread. Later refreshes read no sealed segments.
  void stop_capturing() { stop_capturing_.store(true); }

 private:
  std::filesystem::path dir_;
  std::size_t producer_window_;
  std::size_t max_producers_;
  fs::file_system& fs_;
  std::uint64_t sealed_bytes_;
  std::mutex mutex_;  // guards held_ (take() may come from another thread)
  std::shared_ptr<preloaded_checkpoint> held_;
  void learn_segment_starts(const store_id& id, const std::filesystem::path& jdir,
                            const std::vector<std::uint64_t>& segments);
  std::uint64_t capture_sealed_segments(const store_id& id, const std::filesystem::path& jdir,
                                        const std::vector<std::uint64_t>& segments, const preloaded_checkpoint& held);
  void go_on_from_last_capture(const std::vector<std::uint64_t>& sealed, detail::walk_input& in) const;
  void hand_over(preloaded_checkpoint& held, outcome& out) const;
  std::uint64_t skipped_lsn_ = 0;  // refresh's own
  struct segment_starts;
  std::unique_ptr<segment_starts> starts_;  // refresh's own; a copy goes with held_
  std::atomic<bool> stop_capturing_{false};
};

}  // namespace tandem::journal
