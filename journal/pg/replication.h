// What the store's database says about its replication: whether a COMMIT waits for a
// standby (synchronous_standby_names set, synchronous_commit on / remote_write /
// remote_apply, and at least one standby streaming in state sync or quorum). Reading
// pg_stat_replication's sync_state needs the pg_monitor role (docs/postgresql.md); without
// it the standbys column is empty and the answer is "not synchronous", the safe side.
#pragma once

#include <optional>
#include <string>

#include "journal/pg/connection.h"

namespace tandem::journal::pg {

struct replication {
  bool synchronous = false;
  std::string standby_names;       // synchronous_standby_names
  std::string synchronous_commit;  // its setting
  std::string standbys;            // "name:sync_state,..." from pg_stat_replication
};

std::optional<replication> replication_status(connection& c, std::string& error);

}  // namespace tandem::journal::pg
