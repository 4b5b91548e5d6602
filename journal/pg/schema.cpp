#include "journal/pg/schema.h"

#include <fmt/format.h>

#include "journal/errc.h"

namespace tandem::journal::pg {

namespace {

constexpr std::string_view undefined_table = "42P01";

// Version 2 (version 1 + tandem_subscription.owner_login). A later version adds a
// migration step to migration_sql and bumps schema_version; a broker never runs on a
// schema newer than its own.
std::string schema_sql(const store_id& id) {
  return fmt::format(R"sql(
select pg_advisory_xact_lock(5430173);
create table if not exists tandem_meta (
  id int primary key check (id = 1),
  format text not null,
  version int not null,
  store_id text not null,
  created_at timestamptz not null default now());
create table if not exists tandem_lease (
  id int primary key check (id = 1),
  epoch bigint not null,
  next_msg_seq bigint not null default 1,
  broker_name text, pid int, host text, client_url text,
  acquired_at timestamptz, renewed_at timestamptz,
  expires_at timestamptz not null default '-infinity',
  released boolean not null default true);
create table if not exists tandem_message (
  msg_seq bigint primary key,
  record bytea not null);
create table if not exists tandem_entry (
  target text not null,
  msg_seq bigint not null,
  expires_ms bigint not null,
  priority smallint not null,
  size int not null,
  primary key (target, msg_seq));
create index if not exists tandem_entry_msg_seq on tandem_entry (msg_seq);
create table if not exists tandem_destination (name text primary key);
create table if not exists tandem_subscription (
  key text primary key,
  client_id text not null,
  subscription_name text not null,
  topic text not null,
  selector text not null,
  owner_login text not null default '');
create table if not exists tandem_producer (
  producer_id text not null,
  producer_seq bigint not null,
  pos bigserial,
  primary key (producer_id, producer_seq));
create or replace function tandem_fence(mine bigint, next_seq bigint) returns void language plpgsql as $f$
begin
  update tandem_lease set next_msg_seq = greatest(next_msg_seq, next_seq) where id = 1 and epoch = mine;
  if not found then
    raise exception 'tandem: epoch % is no longer the epoch of this store: a newer master exists', mine
      using errcode = '{}';
  end if;
end $f$;
insert into tandem_lease (id, epoch) values (1, 0) on conflict do nothing;
insert into tandem_meta (id, format, version, store_id) values (1, '{}', {}, '{}') on conflict do nothing;
)sql",
                     fenced_sqlstate, schema_format, schema_version, id.to_hex());
}

// From version `from` to schema_version, in one transaction under the creation lock, so
// brokers starting together upgrade once and a failed step leaves version `from` whole.
// Version 1 -> 2: durable subscriptions keep their owner (issue 17); existing rows get ''
// (unowned: the first login that subscribes claims it, as before). A broker of version 1
// keeps working on the upgraded schema until it stops (its inserts leave the column to
// its default), and refuses to start on it ("newer version"), which is the point.
std::string migration_sql(int from) {
  std::string sql = "begin;\nselect pg_advisory_xact_lock(5430173);\n";
  if (from < 2)
    sql += "alter table tandem_subscription add column if not exists owner_login text not null default '';\n";
  sql += fmt::format("update tandem_meta set version = {0} where id = 1 and version < {0};\ncommit;\n", schema_version);
  return sql;
}

}  // namespace

std::error_code upgrade_schema(connection& c, store_meta& meta, std::string& detail) {
  if (meta.version >= schema_version) return {};
  auto r = to_query_result(c.get(), PQexec(c.get(), migration_sql(meta.version).c_str()));
  if (!r.ok()) {
    detail = fmt::format("cannot upgrade the schema from version {} to {}: {}", meta.version, schema_version, r.error);
    (void)c.exec("rollback");
    return std::make_error_code(std::errc::io_error);
  }
  meta.version = schema_version;
  return {};
}

std::error_code read_meta(connection& c, store_meta& out, std::string& detail) {
  auto r = c.exec("select format, version, store_id from tandem_meta where id = 1");
  if (!r.ok()) {
    if (r.sqlstate == undefined_table) return errc::not_a_store;
    detail = r.error;
    return std::make_error_code(std::errc::io_error);
  }
  if (r.rows() != 1) return errc::not_a_store;
  out.format = std::string(r.text(0, 0));
  out.version = static_cast<int>(r.integer(0, 1));
  if (out.format != schema_format || out.version > schema_version) {
    detail = fmt::format("the database holds a \"{}\" schema version {}; this broker reads \"{}\" up to version {}",
                         out.format, out.version, schema_format, schema_version);
    return errc::unsupported_version;
  }
  auto id = store_id::parse(r.text(0, 2));
  if (!id) {
    detail = fmt::format("tandem_meta.store_id \"{}\" is not 32 hex digits", r.text(0, 2));
    return errc::corrupt_file;
  }
  out.id = *id;
  return {};
}

std::error_code create_schema(connection& c, std::string& detail) {
  auto r = to_query_result(c.get(), PQexec(c.get(), schema_sql(store_id::generate()).c_str()));
  if (!r.ok()) {
    detail = r.error;
    return std::make_error_code(std::errc::io_error);
  }
  return {};
}

}  // namespace tandem::journal::pg
