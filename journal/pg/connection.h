// tandem::journal::pg::connection: one libpq connection, owned by one thread at a time,
// and the few calls the PostgreSQL store and its lease need. No ORM, no exceptions: a
// failed call answers a query_result whose `error` holds libpq's text and the SQLSTATE.
//
// Every connection the store opens adds TCP keepalives and a TCP user timeout to the
// operator's conninfo (connect(), below): a server that vanished without a FIN (power
// loss, a cut cable, a promoted standby elsewhere) must turn into an error within about
// `io_timeout`, not leave a writer or a lease renewal blocked for the kernel's 15 minutes.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <libpq-fe.h>

namespace tandem::journal::pg {

struct result_deleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

// A statement's outcome: `res` on success, else `error` (libpq's message) and `sqlstate`
// ("" when the connection itself failed: the outcome of a COMMIT is then unknown).
struct query_result {
  result_ptr res;
  std::string error;
  std::string sqlstate;
  bool ok() const { return error.empty(); }
  int rows() const { return res ? PQntuples(res.get()) : 0; }
  std::string_view text(int row, int col) const { return {PQgetvalue(res.get(), row, col), static_cast<std::size_t>(PQgetlength(res.get(), row, col))}; }
  bool is_null(int row, int col) const { return PQgetisnull(res.get(), row, col) != 0; }
  long long integer(int row, int col) const;
  // rows affected by an INSERT / UPDATE / DELETE
  long long affected() const;
};

// A parameter in text format, or a binary one (bytea), or SQL NULL.
struct param {
  std::string value;
  bool binary = false;
  bool null = false;
  static param text(std::string v) { return {std::move(v), false, false}; }
  static param bytes(std::string v) { return {std::move(v), true, false}; }
  static param number(long long v) { return {std::to_string(v), false, false}; }
  static param none() { return {{}, false, true}; }
};

// What we add to the operator's conninfo (later keywords override earlier ones).
struct connect_settings {
  std::chrono::milliseconds io_timeout{5000};  // tcp_user_timeout, statement_timeout
  std::string application_name = "tandemd";
};

class connection {
 public:
  // Connects; nullopt and `error` set on failure (libpq's text: which host, why).
  static std::optional<connection> open(const std::string& conninfo, const connect_settings& s, std::string& error);

  connection(connection&&) noexcept = default;
  connection& operator=(connection&&) noexcept = default;
  PGconn* get() const { return conn_.get(); }
  bool healthy() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  // "host:port" of the server actually connected to (a multi-host URI picks one).
  std::string server() const;

  query_result exec(std::string_view sql, const std::vector<param>& params = {});

 private:
  struct conn_deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
  };
  explicit connection(PGconn* c) : conn_(c) {}
  std::unique_ptr<PGconn, conn_deleter> conn_;
};

// Fills `r` from a PGresult (takes ownership): ok for COMMAND_OK / TUPLES_OK /
// SINGLE_TUPLE / PIPELINE_SYNC, else the error and its SQLSTATE.
query_result to_query_result(PGconn* conn, PGresult* res);

// True for "postgresql://..." and "postgres://..." (a store that is a database, not a
// directory).
bool is_database_uri(std::string_view store);
// The reason a conninfo is refused, or "" when acceptable: it does not parse, or it
// carries a password (passwords come from PGPASSFILE / ~/.pgpass or PGPASSWORD, never from
// a command line that `ps` shows to every user of the machine).
std::string check_conninfo(const std::string& conninfo);

}  // namespace tandem::journal::pg
