// The checks on a PostgreSQL store URI that run before any connection (journal/pg/connection.h):
// a password is refused wherever the URI or key/value string carries it.
#include <doctest/doctest.h>

#include "journal/pg/connection.h"

using namespace tandem::journal::pg;

TEST_CASE("a postgresql:// or postgres:// store is a database, a path is not") {
  CHECK(is_database_uri("postgresql://tandem@db1,db2/tandem?target_session_attrs=read-write"));
  CHECK(is_database_uri("postgres://db/tandem"));
  CHECK_FALSE(is_database_uri("/srv/tandem/store"));
  CHECK_FALSE(is_database_uri("postgresql:/relative"));
}

TEST_CASE("a URI without a password is accepted") {
  CHECK(check_conninfo("postgresql://tandem@127.0.0.1:5432,127.0.0.1:5433/tandem?target_session_attrs=read-write") == "");
  CHECK(check_conninfo("host=db user=tandem dbname=tandem") == "");
}

TEST_CASE("a password in the URI, its query or a key/value string is refused and the remedy named") {
  for (const char* s : {"postgresql://tandem:secret@db/tandem", "postgresql://tandem@db/tandem?password=secret",
                        "host=db user=tandem password=secret"}) {
    CAPTURE(s);
    const auto why = check_conninfo(s);
    CHECK(why.find("password") != std::string::npos);
    CHECK(why.find("PGPASSFILE") != std::string::npos);
  }
}

TEST_CASE("a URI libpq cannot parse is refused with libpq's reason") {
  const auto why = check_conninfo("postgresql://db/tandem?no_such_option=1");
  CHECK(why.find("not a valid PostgreSQL connection URI") != std::string::npos);
}
