// The bytes of sealed segments as a slave's preload read them (journal/standby.h), and the
// file-system view through which a takeover's recovery reads them from memory.
//
// Why: after the newest checkpoint, a takeover replays the log to its end. On a network
// file system most of that time is reading segments the old master wrote (CephFS: each
// read of a file another client wrote waits for that client's caps, then for the OSDs).
// Every segment before the last is sealed: its master has moved on to a newer segment, and
// nothing rewrites a segment once a newer one exists (recovery repairs and re-syncs only
// the last segment, before it creates the next; the writer appends only to the last). A
// deposed master may still append to its segment after a newer master's cut, and those
// records are fenced (format.h section 7), so a copy taken before or after them replays to
// the same index. So a slave can read the sealed segments of the tail while it waits, and
// the takeover reads only the segment the old master was appending to.
//
// The last segment is never captured: a slave must not read a file another client is
// writing (standby.cpp, bug 9 of docs/failover.md section 4).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "journal/fs/file_system.h"

namespace tandem::journal::detail {

// What was read of one segment file: its size and the byte ranges read, by offset.
struct captured_segment {
  std::uint64_t file_size = 0;
  std::map<std::uint64_t, std::vector<std::byte>> ranges;  // non-overlapping

  std::uint64_t bytes() const;
  // Copies [offset, offset + out.size()) into `out` when one range holds all of it.
  bool read(std::span<std::byte> out, std::uint64_t offset) const;
  // Adds bytes read at `offset`, joining the range that ends there.
  void add(std::span<const std::byte> data, std::uint64_t offset);
};

// By segment seq. Shared, immutable once built: a preload hands a snapshot to open.
using captured_segments = std::map<std::uint64_t, std::shared_ptr<const captured_segment>>;

// `base`, except that a read-only open of a segment of `journal_dir` found in `serve`
// returns a file answering from memory: its size as captured, and reads that a captured
// range holds. Any other read of it goes to the file itself, opened then. With `record`,
// the read-only opens of other segments of `journal_dir` are recorded there (what they
// read, while the total recorded stays within `budget` bytes).
class sealed_capture_fs : public fs::forwarding_file_system {
 public:
  struct recording {
    std::map<std::uint64_t, std::shared_ptr<captured_segment>> segments;
    std::uint64_t budget = 0;  // bytes left to record
    // When set, every read through a recorded file fails (errc operation_canceled).
    const std::atomic<bool>* stop = nullptr;
  };
  sealed_capture_fs(fs::file_system& base, std::filesystem::path journal_dir, const captured_segments* serve,
                    recording* record = nullptr);

  fs::result<std::unique_ptr<fs::file>> open(const std::filesystem::path& path, fs::open_mode mode) override;

  // Bytes the served files answered from memory (single-threaded use, like recovery's walk).
  std::uint64_t served_bytes() const { return served_bytes_; }

 private:
  std::optional<std::uint64_t> segment_of(const std::filesystem::path& path) const;

  std::filesystem::path journal_dir_;
  const captured_segments* serve_;
  recording* record_;
  std::uint64_t served_bytes_ = 0;
};

}  // namespace tandem::journal::detail
