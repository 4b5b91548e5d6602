// Known stores for the `tandem-journal` golden tests and the golden corpus
// (tests/fixtures/journal/): each is built with the journal API (create_store, store::open,
// append, close) on a small segment size, then damaged byte-wise where the case asks.
// Built deterministically (fixed store id, created time, records), so the tool's output
// on them can be compared with committed expected files.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>


namespace tandem::fault {

// The cases, each a directory name: valid, empty, torn_tail, bad_crc_mid_log,
// unknown_version, short_header, fenced.
std::vector<std::string> fixture_names();

// Builds case `name` in memory (fault_file_system: no fsync cost, and a crash without a
// clean close is one call) and writes the resulting store to the real directory `dir`.
// Throws std::runtime_error naming the step that failed (a fixture that cannot be built
// is a broken test, not a result).
void build_fixture(std::string_view name, const std::filesystem::path& dir);

// The fixed store id every fixture uses.
inline constexpr std::string_view fixture_store_id = "0123456789abcdef0123456789abcdef";

}  // namespace tandem::fault
