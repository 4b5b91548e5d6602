#include "journal/pg/connection.h"

#include <cstdlib>

#include <fmt/format.h>

namespace tandem::journal::pg {

long long query_result::integer(int row, int col) const {
  return std::strtoll(PQgetvalue(res.get(), row, col), nullptr, 10);
}

long long query_result::affected() const {
  const char* n = res ? PQcmdTuples(res.get()) : "";
  return *n ? std::strtoll(n, nullptr, 10) : 0;
}

std::optional<connection> connection::open(const std::string& conninfo, const connect_settings& s, std::string& error) {
  const auto timeout_ms = std::to_string(s.io_timeout.count());
  const auto idle_s = std::to_string(std::max<long long>(1, s.io_timeout.count() / 3000));
  const auto options = fmt::format("-c statement_timeout={} -c idle_in_transaction_session_timeout={}", timeout_ms, timeout_ms);
  // dbname first (expanded as the operator's conninfo or URI), then what we add.
  const char* keys[] = {"dbname", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "connect_timeout", "application_name", "options", nullptr};
  const char* values[] = {conninfo.c_str(), "1", idle_s.c_str(), "1", "3", timeout_ms.c_str(), "3",
                          s.application_name.c_str(), options.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, 1);
  if (!c) {
    error = "out of memory";
    return std::nullopt;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
    PQfinish(c);
    return std::nullopt;
  }
  return connection(c);
}

std::string connection::server() const {
  if (!conn_) return "";
  return fmt::format("{}:{}", PQhost(conn_.get()), PQport(conn_.get()));
}

query_result to_query_result(PGconn* conn, PGresult* res) {
  query_result r;
  r.res.reset(res);
  const auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE || st == PGRES_PIPELINE_SYNC) return r;
  r.error = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  while (!r.error.empty() && (r.error.back() == '\n' || r.error.back() == ' ')) r.error.pop_back();
  if (r.error.empty()) r.error = st == PGRES_PIPELINE_ABORTED ? "pipeline aborted by an earlier error" : "no answer from the server";
  if (const char* s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr) r.sqlstate = s;
  return r;
}

query_result connection::exec(std::string_view sql, const std::vector<param>& params) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const auto& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  const std::string text(sql);
  PGresult* res = PQexecParams(conn_.get(), text.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                               lengths.data(), formats.data(), 0);
  return to_query_result(conn_.get(), res);
}

bool is_database_uri(std::string_view store) {
  return store.starts_with("postgresql://") || store.starts_with("postgres://");
}

std::string check_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    std::string why = err ? err : "cannot parse";
    if (err) PQfreemem(err);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return "not a valid PostgreSQL connection URI: " + why;
  }
  std::string why;
  for (auto* o = opts; o->keyword; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val && *o->val)
      why = "the store URI carries a password: remove it and give it in a password file (PGPASSFILE, ~/.pgpass) "
            "or the PGPASSWORD environment variable";
  }
  PQconninfoFree(opts);
  return why;
}

}  // namespace tandem::journal::pg
