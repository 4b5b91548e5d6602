// The commands of `tandem-journal` as functions (main.cpp only parses the command line), so
// tests can run them in-process as well as through the binary. A file per command
// (summary_command.cpp, dump_command.cpp, verify_command.cpp, lock_command.cpp); what they
// share is in detail/ (render: text and JSON of records and damage; open_store: the
// identity and error messages naming the file).
//
// Every command is strictly read-only: it takes no lock, opens files O_RDONLY through
// read_only_file_system, and writes nothing to the store, so it is safe on a store that a
// running broker is serving (a tail still being written then shows up as end of data or
// a torn tail; the tool never "fixes" anything).
//
// Output: text for people by default, JSON with `json = true` (one object for summary,
// verify and lock; one object per line for dump). Problems name the file and offset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "journal/fs/file_system.h"

namespace tandem::tools {

// Exit codes (documented in `tandem-journal --help`).
inline constexpr int exit_clean = 0;
inline constexpr int exit_cannot_read = 1;       // not a store, I/O error, bad arguments
inline constexpr int exit_torn_tail = 2;         // verify: only a torn tail (recovery truncates it)
inline constexpr int exit_corrupt = 3;           // verify: mid-log corruption (recovery refuses)
inline constexpr int exit_unsupported_version = 4;  // a file of a newer format: upgrade the tool
inline constexpr int exit_usage = 64;            // EX_USAGE: bad command line

struct dump_filter {
  std::optional<std::string> destination;  // records that touch this destination/target
  std::optional<std::uint64_t> from_segment;
  std::uint64_t from_offset = 0;           // with from_segment: skip records before it
  std::optional<std::uint64_t> from_lsn;   // records with lsn >= this
};

// Parses "SEG:OFF" (SEG in hex as in segment file names, OFF decimal). False if malformed.
bool parse_position(std::string_view text, std::uint64_t& segment, std::uint64_t& offset);

int run_summary(fs::file_system& fs, const std::filesystem::path& dir, bool json, std::ostream& out,
                std::ostream& err);
int run_dump(fs::file_system& fs, const std::filesystem::path& dir, const dump_filter& filter, bool json,
             std::ostream& out, std::ostream& err);
int run_verify(fs::file_system& fs, const std::filesystem::path& dir, bool json, std::ostream& out,
               std::ostream& err);
// Whether DIR/lock is held and by whom (holder.json, epoch), via lockmgr::query: opens the
// lock file read-only and asks with F_OFD_GETLK, never acquiring. Exit 0 whether held or
// not; exit_cannot_read when DIR cannot be queried.
int run_lock(fs::file_system& fs, const std::filesystem::path& dir, bool json, std::ostream& out,
             std::ostream& err);

// The same questions of a PostgreSQL store (DIR is a postgresql:// URI), in a read-only
// session: database_commands.cpp.
int run_database_summary(const std::string& uri, bool json, std::ostream& out, std::ostream& err);
int run_database_lock(const std::string& uri, bool json, std::ostream& out, std::ostream& err);
// exit_clean, or exit_corrupt when a live entry's message row is missing or does not match.
int run_database_verify(const std::string& uri, bool json, std::ostream& out, std::ostream& err);
// One snapshot of the store as records (destination_create, durable_subscription_create,
// message_add with the targets still live, index_state for the dedup windows), one line or
// JSON object each; only those touching `destination` when given. exit_clean once read.
int run_database_dump(const std::string& uri, const std::optional<std::string>& destination, bool json,
                      std::ostream& out, std::ostream& err);

}  // namespace tandem::tools
