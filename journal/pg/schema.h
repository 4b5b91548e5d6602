// The PostgreSQL store's schema: its tables, its version, and the checks a broker makes
// before it touches a database. docs/postgresql.md has the design; this header is the
// one place that says what each table and column holds.
//
//   tandem_meta          one row (id = 1): format "tandem-pg-store", version, store_id
//                        (32 hex digits, the store's identity as for a journal), created_at.
//                        A database without this table is not a store (refused as an empty
//                        directory is); another format name or a newer version is refused
//                        by name (errc::unsupported_version): upgrade the broker.
//   tandem_lease         one row (id = 1): the election and the fence. epoch (+1 per
//                        takeover), the holder (broker_name, pid, host, client_url),
//                        acquired_at, renewed_at, expires_at (the database's clock), released
//                        (true after a clean stop: the next broker need not wait), and
//                        next_msg_seq (msg_seq counter, raised by every write transaction).
//   tandem_message       msg_seq -> record: the message as the journal encodes a message_add
//                        payload (journal/format.h section 5: the message and its targets as
//                        sent), so one codec reads both stores. Deleted with its last entry.
//   tandem_entry         (target, msg_seq) live on a queue key, with what the index keeps
//                        without the body: expires_ms, priority, size (record bytes).
//   tandem_destination   name (destination_create / destination_delete)
//   tandem_subscription  key = subscription_target(client_id, name), its fields, and
//                        owner_login (version 2; '' = unowned, journal/format.h record 6)
//   tandem_producer      (producer_id, producer_seq, pos): dedup windows, in arrival order
//                        (pos); the writer prunes each producer to its last producer_window.
//   tandem_fence(e, n)   raises SQLSTATE TD001 unless tandem_lease.epoch = e (and raises
//                        next_msg_seq to n). The first statement of every write transaction:
//                        a deposed master's transaction aborts, whatever it contained.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "journal/identity.h"
#include "journal/pg/connection.h"

namespace tandem::journal::pg {

inline constexpr std::string_view schema_format = "tandem-pg-store";
// 2: tandem_subscription.owner_login. Version 1 schemas are upgraded in place by
// upgrade_schema (the broker does it at start, before the election).
inline constexpr int schema_version = 2;
// SQLSTATE that tandem_fence raises: the writer's epoch is not the store's.
inline constexpr std::string_view fenced_sqlstate = "TD001";

struct store_meta {
  std::string format;
  int version = 0;
  store_id id;
};

// Reads tandem_meta. Errors: errc::not_a_store (no such table, or no row),
// errc::unsupported_version (other format or newer version; `detail` names both),
// errc::corrupt_file (unreadable row), std::errc::io_error with libpq's text in `detail`.
std::error_code read_meta(connection& c, store_meta& out, std::string& detail);

// Brings a schema of an older version (meta.version < schema_version) to schema_version
// in one transaction, and sets meta.version. Does nothing for the current version.
// Errors: std::errc::io_error with libpq's text in `detail` (the schema is unchanged).
std::error_code upgrade_schema(connection& c, store_meta& meta, std::string& detail);

// Creates the schema (one transaction, serialised by an advisory lock, idempotent) with a
// fresh store id. Errors: std::errc::io_error with libpq's text in `detail`.
std::error_code create_schema(connection& c, std::string& detail);

}  // namespace tandem::journal::pg
