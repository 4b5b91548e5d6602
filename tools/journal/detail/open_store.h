// Opening a store for a tandem-journal command: the identity, and error messages that
// name the file to look at and the exit code that goes with them.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <system_error>

#include "journal/fs/file_system.h"
#include "journal/identity.h"

namespace tandem::tools::detail {

struct opened {
  journal::identity id;
};

// The exit code for a journal error (journal_tool.h).
int exit_for(std::error_code ec);
// Reads DIR/identity; on failure writes what is wrong and where to `err`, sets `code`.
std::optional<opened> open_store(fs::file_system& fs, const std::filesystem::path& dir, std::ostream& err,
                                 int& code);
// Reports a failed scan of DIR, naming the segment at fault when it can be found; returns
// the exit code.
int scan_failed(fs::file_system& fs, const std::filesystem::path& dir, const journal::store_id& id,
                std::error_code ec, std::ostream& err);

}  // namespace tandem::tools::detail
