#include "journal/pg/replication.h"

namespace tandem::journal::pg {

std::optional<replication> replication_status(connection& c, std::string& error) {
  auto r = c.exec(
      "select current_setting('synchronous_standby_names'), current_setting('synchronous_commit'), "
      "coalesce((select string_agg(application_name || ':' || coalesce(sync_state, '?'), ',') from pg_stat_replication), ''), "
      "exists (select 1 from pg_stat_replication where sync_state in ('sync', 'quorum'))");
  if (!r.ok() || r.rows() != 1) {
    error = r.ok() ? "no row" : r.error;
    return std::nullopt;
  }
  replication out;
  out.standby_names = std::string(r.text(0, 0));
  out.synchronous_commit = std::string(r.text(0, 1));
  out.standbys = std::string(r.text(0, 2));
  const bool waits = out.synchronous_commit == "on" || out.synchronous_commit == "remote_write" ||
                     out.synchronous_commit == "remote_apply";
  out.synchronous = !out.standby_names.empty() && waits && r.text(0, 3) == "t";
  return out;
}

}  // namespace tandem::journal::pg
