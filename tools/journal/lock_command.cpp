// `tandem-journal lock DIR`: who holds the store, asked through lockmgr::query, which opens
// the lock file read-only and uses F_OFD_GETLK (a question, never a try-lock), so asking
// cannot disturb an election in progress.
#include <fmt/format.h>

#include "lockmgr/query.h"
#include "tools/journal/journal_tool.h"
#include "tools/journal/read_only_file_system.h"

namespace tandem::tools {

int run_lock(fs::file_system& base, const std::filesystem::path& dir, bool as_json, std::ostream& out,
             std::ostream& err) {
  read_only_file_system fs(base);
  auto st = lockmgr::query(dir, fs);
  if (!st) {
    err << "tandem-journal: " << (dir / "lock").string() << ": cannot query the lock: " << st.error().message()
        << '\n';
    return exit_cannot_read;
  }
  const auto& s = st.value();
  auto j = lockmgr::to_json(s);
  if (as_json) {
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return exit_clean;
  }
  out << fmt::format("lock file    {}{}\n", (dir / "lock").string(), s.lock_file_exists ? "" : " (absent: never used)");
  out << fmt::format("state        {}\n", j.value("state", s.held ? "held" : "free"));
  if (s.epoch)
    out << fmt::format("epoch        {}\n", *s.epoch);
  else
    out << fmt::format("epoch        none{}\n", s.epoch_error.empty() ? "" : " (" + s.epoch_error + ")");
  if (s.holder) {
    const auto& h = *s.holder;
    out << fmt::format("holder       {} on {} pid {} epoch {}{}\n", h.broker_name, h.host, h.pid, h.epoch,
                       s.epoch && *s.epoch != h.epoch ? " (stale: a newer epoch exists)" : "");
    out << fmt::format("acquired_at  {}\n", h.acquired_at);
    out << fmt::format("client_url   {}\n", h.client_url);
    out << fmt::format("version      {}\n", h.software_version);
    out << fmt::format("released     {}\n", h.clean_release ? "cleanly at " + h.released_at.value_or("?") : "no");
  } else {
    out << fmt::format("holder       none{}\n", s.holder_error.empty() ? "" : " (" + s.holder_error + ")");
  }
  return exit_clean;
}

}  // namespace tandem::tools
