// Reads tandemd logs (broker/log.h: "<UTC ms> <level> <component> <message> key=value ...")
// for the life-cycle lines the drill reports and checks:
//
//   ... info  main master epoch=5 recovered=100000 took_ms=41 records_replayed=12 ...
//   ... error main stepping down: mastership lost reason=... epoch=5 exit_code=75
//
// From every incarnation's log the drill collects the "master" lines; across the whole run
// the epochs they name must be unique and, in time order, strictly increasing (a broker that
// served with an epoch lower than an earlier master's was a stale master). The timestamps are
// UTC wall-clock milliseconds from processes on one host, so they order correctly; equal
// timestamps are ordered by epoch and never count as a decrease.
//
// Threads: plain functions, no state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::drill {

struct master_line {
  std::string utc;  // "2026-11-25T10:42:32.123Z": sorts as text
  std::uint64_t epoch = 0;
  std::optional<std::uint64_t> took_ms;           // lock acquired -> serving
  std::optional<std::uint64_t> recovered;         // live messages after recovery
  std::optional<std::uint64_t> records_replayed;  // journal records replayed past the checkpoint
  std::optional<std::uint64_t> journal_ms;        // journal recovery alone
  std::uint32_t slot = 0;
  std::uint64_t incarnation = 0;
};

struct step_down_line {
  std::string utc;
  std::string reason;
  std::uint32_t slot = 0;
  std::uint64_t incarnation = 0;
};

struct log_facts {
  std::vector<master_line> masters;
  std::vector<step_down_line> step_downs;
};

// The value of `key=` in a log line ("" and false when absent; quotes removed).
bool log_field(std::string_view line, std::string_view key, std::string& value);

// Scans one log. `slot` and `incarnation` are copied into each fact.
void scan_log(std::istream& in, std::uint32_t slot, std::uint64_t incarnation, log_facts& out);
void scan_log_file(const std::filesystem::path& file, std::uint32_t slot, std::uint64_t incarnation, log_facts& out);

// The last line of level "error" in a log (a broker that cannot start says why in one:
// "... error main cannot read the store identity store=... error=..."); nullopt when none.
std::optional<std::string> last_error_line(std::istream& in);
std::optional<std::string> last_error_line_of(const std::filesystem::path& file);

// Problems with the master lines of a whole run, one sentence each (empty: consistent).
// `check_time_order` false skips the time-order check: after a clock-jump run the brokers'
// UTC timestamps do not order their lines.
std::vector<std::string> check_master_epochs(std::vector<master_line> masters, bool check_time_order = true);

}  // namespace tandem::drill
