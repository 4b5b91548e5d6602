// The store identity (format.h section 2) and the explicit creation of a store.
// Thread-safe free functions; all I/O goes through the given file_system.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "journal/fs/file_system.h"

namespace tandem::journal {

template <class T>
using result = boost::outcome_v2::std_result<T>;

// 128 random bits naming a store; stamped in every segment and checkpoint.
struct store_id {
  std::array<std::uint8_t, 16> bytes{};

  static store_id generate();                                   // from std::random_device
  static std::optional<store_id> parse(std::string_view hex);   // exactly 32 hex digits
  std::string to_hex() const;                                   // 32 lowercase hex digits
  friend bool operator==(const store_id&, const store_id&) = default;
};

struct identity {
  std::string format;         // format::identity_format_name
  std::uint32_t version = 0;  // format::identity_version
  store_id id;
  std::int64_t created_ms = 0;  // ms since Unix epoch
};

// Reads and validates DIR/identity. Errors: errc::not_a_store (no file),
// errc::unsupported_version (other format name / version), errc::corrupt_file (unparsable),
// or the OS error. Writes nothing; needs no lock (the tool uses it).
result<identity> read_identity(fs::file_system& fs, const std::filesystem::path& dir);

// Creates a store in DIR (created if missing): DIR/journal/ and DIR/identity (atomically,
// last, so a crash mid-create leaves "not a store" rather than half a store). Refuses with
// std::errc::file_exists when DIR/identity already exists. `id` defaults to a fresh random
// id. The caller should hold the lockmgr lock or otherwise be sure no broker runs on DIR.
result<identity> create_store(fs::file_system& fs, const std::filesystem::path& dir,
                              std::optional<store_id> id = std::nullopt);

}  // namespace tandem::journal
