// What a slave's checkpoint_preloader (journal/standby.h) hands to store::open: the newest
// checkpoint decoded, and enough of it and of the one before to tell, with one small read
// each, that the files on disk are still the ones read.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "journal/detail/checkpoint.h"
#include "journal/detail/journal_walk.h"
#include "journal/detail/sealed_capture.h"
#include "journal/format.h"
#include "journal/fs/file_system.h"
#include "journal/index.h"

namespace tandem::journal::detail {

// A checkpoint file as read: its size, its header and its trailer (the XXH3-64 of every
// byte before it, format.h section 6). A file whose size, header and trailer read back
// equal holds the same bytes, short of a 64-bit checksum collision: a file of the same
// name written anew (a deposed master's, or the next master's after a fence) differs in
// its checksum.
struct checkpoint_fingerprint {
  std::uint64_t lsn = 0;
  std::uint64_t size = 0;
  std::array<std::byte, format::checkpoint_header_bytes> header{};
  std::array<std::byte, 8> trailer{};

  static checkpoint_fingerprint of(std::uint64_t lsn, std::span<const std::byte> image);
  bool operator==(const checkpoint_fingerprint&) const = default;
};

// Reads the fingerprint of checkpoint file `path` (open, size, two small reads). Errors:
// OS errors; errc::corrupt_file when it is shorter than a header and a trailer.
result<checkpoint_fingerprint> read_fingerprint(fs::file_system& fs, const std::filesystem::path& path,
                                                std::uint64_t lsn);

struct verified_checkpoint {
  checkpoint_fingerprint file;
  checkpoint_meta meta;
};

// True when the file at `path` still has the fingerprint `known` (read_fingerprint); a
// file that cannot be read counts as changed.
bool still_the_file(fs::file_system& fs, const std::filesystem::path& path, const checkpoint_fingerprint& known);

struct preloaded_checkpoint {
  preloaded_checkpoint(std::size_t producer_window, std::size_t max_producers)
      : producer_window(producer_window), max_producers(max_producers), idx(producer_window, max_producers) {}
  store_id id;
  std::size_t producer_window;  // the index was built with these; open uses it only when its
  std::size_t max_producers;    // options are the same
  verified_checkpoint newest;   // decoded into idx
  index idx;
  // The newest file's bytes as read: the store keeps this memory as the buffer it encodes
  // its checkpoints into (detail::read_checkpoint_image), faulted in already.
  std::vector<std::byte> image;
  // The one before, checked whole (checksum) when it was the newest or by verify at load:
  // recovery's fallback, which open then checks by its fingerprint alone.
  std::optional<verified_checkpoint> previous;
  // The settled first records of the segments before the last (fence points), so open
  // reads only those of segments that appeared or settled since. The segments a master
  // wrote last are the ones whose open waits on a network file system (CephFS: for the old
  // client's caps). Never the last segment: the master writes it (standby.cpp says why).
  known_segment_starts segment_starts;
  // The sealed segments of the log after the newest checkpoint's replay position, as read
  // (sealed_capture.h): open's walk takes them from here and reads only the last segment.
  captured_segments sealed;
  bool consumed = false;        // open moved idx out
};

}  // namespace tandem::journal::detail
