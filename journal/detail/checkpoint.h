// Checkpoint files (format.h section 6): the index serialised with the log position it
// reflects, so recovery replays only the tail.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "journal/detail/journal_walk.h"
#include "journal/fs/file_system.h"
#include "journal/identity.h"
#include "journal/index.h"

namespace tandem::journal::detail {

struct checkpoint_meta {
  store_id id;
  std::uint64_t lsn = 0;
  position replay;
  std::uint64_t next_msg_seq = 1;
  std::uint64_t max_epoch = 0;
  position cut;
  std::uint64_t live_messages = 0;  // decode only
};

// Serialises `idx` with `meta` into a complete checkpoint file image.
std::vector<std::byte> encode_checkpoint(const checkpoint_meta& meta, const index& idx);

// The same in two steps, so the owner thread only walks the index: encode_unsealed()
// replaces the contents of `out` with the image minus its checksum trailer (reusing the
// capacity `out` already has: no page faults on a buffer kept between checkpoints), then
// seal() appends the trailer on whichever thread writes the file.
void encode_checkpoint_unsealed(const checkpoint_meta& meta, const index& idx, std::vector<std::byte>& out);
// Roughly the bytes of `idx`'s checkpoint image (for sizing the buffer ahead of time).
std::size_t checkpoint_size_estimate(const index& idx);
void seal_checkpoint(std::vector<std::byte>& image);

// Validates and decodes a checkpoint image. With `out` non-null the index is loaded into
// it (it must be empty). On failure returns errc::corrupt_file / unsupported_version /
// wrong_store and sets `reason`.
result<checkpoint_meta> decode_checkpoint(std::span<const std::byte> image, const store_id& expected,
                                          index* out, std::string& reason);

// Reads checkpoint file `path` whole into `image` (replacing its contents). The memory asks
// for huge pages (huge_pages.h) and is reserved half as large again as the file: the store
// keeps it afterwards as the buffer it encodes checkpoints into, so the pages this read
// faults in serve the next checkpoint too instead of being freed and faulted in afresh.
std::error_code read_checkpoint_image(fs::file_system& fs, const std::filesystem::path& path,
                                      std::vector<std::byte>& image);

// Checks checkpoint file `path` without loading it: its header (magic, version, store id),
// its length against the file size and its XXH3 trailer, read in 1 MiB pieces (no buffer
// of the file's size). What decode_checkpoint would also check, the body's structure, is
// left to when the file is loaded (a checksum that verifies over a body that does not
// parse would be a writer's bug, not damage). Recovery checks the fallback checkpoint this
// way: reading and decoding all of it again cost 2 s at 10 million messages. On failure
// returns errc::corrupt_file / unsupported_version / wrong_store (or an OS error) and sets
// `reason`; the meta's live_messages stays 0.
result<checkpoint_meta> verify_checkpoint_file(fs::file_system& fs, const std::filesystem::path& path,
                                               const store_id& expected, std::string& reason);

}  // namespace tandem::journal::detail
