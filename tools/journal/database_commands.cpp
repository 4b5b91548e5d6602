// `tandem-journal summary|lock|verify|dump` on a PostgreSQL store (docs/postgresql.md): the same
// questions asked of the database, strictly read-only (the session is set read only
// before the first query, so a typo here cannot change a store a broker serves).
#include <algorithm>
#include <optional>
#include <span>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "journal/records.h"

#include "journal/errc.h"
#include "journal/pg/connection.h"
#include "journal/pg/lease.h"
#include "journal/pg/schema.h"
#include "tools/journal/detail/render.h"
#include "tools/journal/journal_tool.h"

namespace tandem::tools {

namespace pg = journal::pg;
using nlohmann::json;

namespace {

std::optional<pg::connection> open_read_only(const std::string& uri, std::ostream& err, int& rc) {
  std::string why = pg::check_conninfo(uri), error;
  if (!why.empty()) {
    err << "tandem-journal: " << why << "\n";
    rc = exit_usage;
    return std::nullopt;
  }
  auto c = pg::connection::open(uri, {std::chrono::milliseconds(30000), "tandem-journal"}, error);
  if (c && !c->exec("set session characteristics as transaction read only").ok()) c.reset();
  if (!c) {
    err << "tandem-journal: " << uri << ": cannot connect: " << error << "\n";
    rc = exit_cannot_read;
  }
  return c;
}

json lease_json(pg::connection& c, std::string& error) {
  auto h = pg::lease::query(c, error);
  if (!h) return nullptr;
  return {{"epoch", h->epoch}, {"broker_name", h->broker_name}, {"host", h->host}, {"pid", h->pid},
          {"client_url", h->client_url}, {"released", h->released}, {"expires_in_ms", h->expires_in_ms}};
}

std::string holder_line(const json& l) {
  if (l.is_null()) return "no lease row";
  if (l["epoch"] == 0) return "never held";
  return fmt::format("epoch {} held by {} (pid {} on {}, {}), {}", l["epoch"].get<std::uint64_t>(),
                     l["broker_name"].get<std::string>(), l["pid"].get<long long>(), l["host"].get<std::string>(),
                     l["client_url"].get<std::string>(),
                     l["released"].get<bool>() ? "released cleanly"
                     : l["expires_in_ms"].get<long long>() < 0
                         ? "lease expired (holder gone or paused)"
                         : fmt::format("lease valid for {} ms", l["expires_in_ms"].get<long long>()));
}

// A read-only session on a store whose schema this tool reads; nullopt and `rc` otherwise.
std::optional<pg::connection> open_store(const std::string& uri, pg::store_meta& meta, std::ostream& err, int& rc) {
  auto c = open_read_only(uri, err, rc);
  if (!c) return c;
  std::string detail;
  if (auto ec = pg::read_meta(*c, meta, detail)) {
    err << "tandem-journal: " << uri << ": " << (ec == journal::errc::not_a_store ? "not a store (no Tandem schema)" : detail)
        << "\n";
    rc = ec == journal::errc::unsupported_version ? exit_unsupported_version : exit_cannot_read;
    return std::nullopt;
  }
  return c;
}

// The tool only reads (a read-only session), so it does not upgrade a version 1 schema,
// whose tandem_subscription has no owner_login: read '' (unowned) there.
std::string subscriptions_query(const pg::store_meta& meta) {
  return fmt::format("select client_id, subscription_name, topic, selector, {} from tandem_subscription order by key",
                     meta.version >= 2 ? "owner_login" : "''::text");
}

}  // namespace

int run_database_summary(const std::string& uri, bool as_json, std::ostream& out, std::ostream& err) {
  int rc = exit_clean;
  pg::store_meta meta;
  auto c = open_store(uri, meta, err, rc);
  if (!c) return rc;
  std::string detail;
  json j{{"store", uri}, {"store_id", meta.id.to_hex()}, {"format", meta.format}, {"version", meta.version}};
  j["lease"] = lease_json(*c, detail);
  auto live = c->exec("select target, count(*), coalesce(sum(size), 0) from tandem_entry group by target order by target");
  auto counts = c->exec(
      "select (select count(*) from tandem_message), (select count(*) from tandem_destination), "
      "(select count(*) from tandem_producer), (select next_msg_seq from tandem_lease where id = 1)");
  auto subs = c->exec(subscriptions_query(meta));
  for (const auto* r : {&live, &counts, &subs}) {
    if (!r->ok()) {
      err << "tandem-journal: " << uri << ": " << r->error << "\n";
      return exit_cannot_read;
    }
  }
  j["live"] = json::object();
  for (int i = 0; i < live.rows(); ++i)
    j["live"][std::string(live.text(i, 0))] = {{"messages", live.integer(i, 1)}, {"bytes", live.integer(i, 2)}};
  j["messages"] = counts.integer(0, 0);
  j["destinations"] = counts.integer(0, 1);
  j["producer_seqs"] = counts.integer(0, 2);
  j["next_msg_seq"] = counts.integer(0, 3);
  j["durable_subscriptions"] = json::array();
  for (int i = 0; i < subs.rows(); ++i)
    j["durable_subscriptions"].push_back({{"client_id", subs.text(i, 0)}, {"subscription_name", subs.text(i, 1)},
                                          {"topic", subs.text(i, 2)}, {"selector", subs.text(i, 3)},
                                          {"owner_login", subs.text(i, 4)}});
  if (as_json) {
    out << j.dump(2) << "\n";
    return exit_clean;
  }
  out << fmt::format("store      {} ({} version {}), id {}\n", uri, meta.format, meta.version, meta.id.to_hex());
  out << "lease      " << holder_line(j["lease"]) << "\n";
  out << fmt::format("messages   {} stored, {} destinations, {} durable subscriptions, next msg_seq {}\n",
                     j["messages"].get<long long>(), j["destinations"].get<long long>(), subs.rows(),
                     j["next_msg_seq"].get<long long>());
  for (const auto& [target, v] : j["live"].items())
    out << fmt::format("  {:<40} {:>10} messages {:>14} bytes\n", target, v["messages"].get<long long>(), v["bytes"].get<long long>());
  return exit_clean;
}

int run_database_lock(const std::string& uri, bool as_json, std::ostream& out, std::ostream& err) {
  int rc = exit_clean;
  auto c = open_read_only(uri, err, rc);
  if (!c) return rc;
  std::string error;
  auto l = lease_json(*c, error);
  if (l.is_null()) {
    err << "tandem-journal: " << uri << ": cannot read the lease: " << error << "\n";
    return exit_cannot_read;
  }
  if (as_json) out << l.dump(2) << "\n";
  else out << holder_line(l) << "\n";
  return exit_clean;
}

}  // namespace tandem::tools

namespace tandem::tools {

// What a store must hold for a broker to load it and deliver every live entry: each entry's
// message row exists, its record decodes as a message_add of that msg_seq naming the entry's
// target, and the entry's size is the record's length. Rows no entry refers to are a leak
// (a broker never reads them), reported but not corruption. One snapshot (repeatable read),
// so a broker serving the store meanwhile cannot make it look inconsistent.
int run_database_verify(const std::string& uri, bool as_json, std::ostream& out, std::ostream& err) {
  int rc = exit_clean;
  pg::store_meta meta;
  auto c = open_store(uri, meta, err, rc);
  if (!c) return rc;
  auto snapshot = c->exec("begin isolation level repeatable read");
  // Binary results: the record (bytea) as its bytes; the numbers cast to text read as text.
  auto rows = pg::to_query_result(
      c->get(), PQexecParams(c->get(),
                             "select e.target, e.msg_seq::text, e.size::text, m.record from tandem_entry e "
                             "left join tandem_message m using (msg_seq) order by e.msg_seq, e.target",
                             0, nullptr, nullptr, nullptr, nullptr, 1));
  auto unreferenced = c->exec(
      "select count(*) from tandem_message m where not exists (select 1 from tandem_entry e where e.msg_seq = m.msg_seq)");
  for (const auto* r : {&snapshot, &rows, &unreferenced}) {
    if (!r->ok()) {
      err << "tandem-journal: " << uri << ": " << r->error << "\n";
      return exit_cannot_read;
    }
  }
  json problems = json::array();
  for (int i = 0; i < rows.rows(); ++i) {
    const std::string target(rows.text(i, 0));
    const auto seq = static_cast<std::uint64_t>(rows.integer(i, 1));
    auto problem = [&](std::string what) { problems.push_back({{"target", target}, {"msg_seq", seq}, {"problem", std::move(what)}}); };
    if (rows.is_null(i, 3)) {
      problem("no tandem_message row: the body is gone");
      continue;
    }
    const auto rec = rows.text(i, 3);
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(rec.data()), rec.size());
    auto decoded = journal::decode_payload(journal::record_type::message_add, bytes);
    if (!decoded) {
      problem("the record does not decode as a message_add: " + decoded.error().message());
      continue;
    }
    const auto& m = std::get<journal::message_add>(decoded.value());
    if (m.msg_seq != seq) problem(fmt::format("the record carries msg_seq {}", m.msg_seq));
    if (std::find(m.targets.begin(), m.targets.end(), target) == m.targets.end()) problem("the record does not name this target");
    if (rows.integer(i, 2) != static_cast<long long>(rec.size()))
      problem(fmt::format("size {} but the record has {} bytes", rows.integer(i, 2), rec.size()));
  }
  const long long leaked = unreferenced.integer(0, 0);
  const int status = problems.empty() ? exit_clean : exit_corrupt;
  if (as_json) {
    out << json{{"store", uri}, {"entries", rows.rows()}, {"problems", problems}, {"unreferenced_messages", leaked},
                {"clean", problems.empty()}}.dump(2)
        << "\n";
    return status;
  }
  out << fmt::format("store      {} ({} version {}), id {}\n", uri, meta.format, meta.version, meta.id.to_hex());
  out << fmt::format("entries    {} checked, {} problems, {} message rows no entry refers to\n", rows.rows(), problems.size(),
                     leaked);
  for (const auto& p : problems)
    out << fmt::format("  {} msg_seq {}: {}\n", p["target"].get<std::string>(), p["msg_seq"].get<std::uint64_t>(),
                       p["problem"].get<std::string>());
  out << (problems.empty() ? "clean\n" : "CORRUPT: a broker would fail to deliver these entries\n");
  return status;
}

}  // namespace tandem::tools

namespace tandem::tools {

namespace {

// One record of a database dump: text `TABLE [msg_seq=N bytes=B ]TYPE FIELDS[ live=[...]]`,
// the journal dump's line with the table in place of SEG:OFF lsn= epoch=, which a database
// store does not have; JSON with "table" in place of "file"/"segment"/"offset"/"lsn".
struct dump_line {
  std::string_view table;
  std::optional<std::uint64_t> msg_seq;
  std::optional<std::size_t> bytes;
  const journal::record* record = nullptr;  // null: the row did not decode
  std::string decode_error;
  std::optional<json> live;  // tandem_message: the targets it is still live on
};

void print_dump_line(const dump_line& l, bool as_json, std::ostream& out) {
  if (as_json) {
    json j{{"kind", "record"}, {"table", l.table}};
    if (l.msg_seq) j["msg_seq"] = *l.msg_seq;
    if (l.bytes) j["bytes"] = *l.bytes;
    j["type"] = l.record ? journal::to_string(journal::type_of(*l.record)) : "message_add";
    if (l.record) j["record"] = detail::json_of(*l.record);
    else j["decode_error"] = l.decode_error;
    if (l.live) j["live"] = *l.live;
    out << detail::dump_json(j) << '\n';
    return;
  }
  out << l.table << ' ';
  if (l.msg_seq) out << fmt::format("msg_seq={} ", *l.msg_seq);
  if (l.bytes) out << fmt::format("bytes={} ", *l.bytes);
  if (l.record) out << journal::to_string(journal::type_of(*l.record)) << ' ' << detail::text_of(*l.record);
  else out << "message_add (payload does not decode: " << l.decode_error << ")";
  if (l.live) {
    out << " live=[";
    for (std::size_t i = 0; i < l.live->size(); ++i) out << (i ? ", " : "") << detail::escaped((*l.live)[i].get<std::string>());
    out << ']';
  }
  out << '\n';
}

}  // namespace

// The store as the records that would rebuild it, read in one snapshot (repeatable read,
// read-only session): its destinations, durable subscriptions, every stored message in
// msg_seq order with the targets it is still live on, and the producers' dedup windows as
// one index_state. A database keeps no history: an acked entry is gone, not a
// message_remove. Message rows are fetched through a cursor, 256 at a time, so a long
// backlog is never all in memory.
int run_database_dump(const std::string& uri, const std::optional<std::string>& destination, bool as_json,
                      std::ostream& out, std::ostream& err) {
  int rc = exit_clean;
  pg::store_meta meta;
  auto c = open_store(uri, meta, err, rc);
  if (!c) return rc;
  auto failed = [&](const pg::query_result& r) {
    err << "tandem-journal: " << uri << ": " << r.error << "\n";
    return exit_cannot_read;
  };
  if (auto r = c->exec("begin isolation level repeatable read"); !r.ok()) return failed(r);
  std::string detail;
  const json lease = lease_json(*c, detail);
  if (as_json)
    out << detail::dump_json({{"kind", "store"}, {"store", uri}, {"format", meta.format}, {"version", meta.version},
                              {"store_id", meta.id.to_hex()}, {"lease", lease}})
        << '\n';
  else
    out << fmt::format("# store {} ({} version {}) id={} lease: {}\n", uri, meta.format, meta.version, meta.id.to_hex(),
                       holder_line(lease));
  auto wanted = [&](const journal::record& r, const json* live) {
    if (!destination) return true;
    if (detail::touches(r, *destination)) return true;
    return live && std::find(live->begin(), live->end(), *destination) != live->end();
  };

  auto names = c->exec("select name from tandem_destination order by name");
  if (!names.ok()) return failed(names);
  for (int i = 0; i < names.rows(); ++i) {
    const journal::record r = journal::destination_create{std::string(names.text(i, 0))};
    if (wanted(r, nullptr)) print_dump_line({"tandem_destination", {}, {}, &r, {}, {}}, as_json, out);
  }
  auto subs = c->exec(subscriptions_query(meta));
  if (!subs.ok()) return failed(subs);
  for (int i = 0; i < subs.rows(); ++i) {
    journal::durable_subscription_create s;
    s.client_id = subs.text(i, 0);
    s.subscription_name = subs.text(i, 1);
    s.topic = subs.text(i, 2);
    s.selector = subs.text(i, 3);
    s.owner_login = subs.text(i, 4);
    const journal::record r = s;
    if (wanted(r, nullptr)) print_dump_line({"tandem_subscription", {}, {}, &r, {}, {}}, as_json, out);
  }

  auto cursor = c->exec(
      "declare dump no scroll cursor for select m.msg_seq::text, m.record, "
      "array_to_json(array(select e.target from tandem_entry e where e.msg_seq = m.msg_seq order by e.target))::text "
      "from tandem_message m order by m.msg_seq");
  if (!cursor.ok()) return failed(cursor);
  for (;;) {
    // Binary results: the record as its bytes; the other columns are text cast by the query.
    auto rows = pg::to_query_result(c->get(), PQexecParams(c->get(), "fetch 256 from dump", 0, nullptr, nullptr, nullptr,
                                                           nullptr, 1));
    if (!rows.ok()) return failed(rows);
    if (rows.rows() == 0) break;
    for (int i = 0; i < rows.rows(); ++i) {
      const auto rec = rows.text(i, 1);
      const json live = json::parse(rows.text(i, 2), nullptr, false);
      auto decoded = journal::decode_payload(
          journal::record_type::message_add,
          std::span<const std::byte>(reinterpret_cast<const std::byte*>(rec.data()), rec.size()));
      dump_line l{"tandem_message", static_cast<std::uint64_t>(rows.integer(i, 0)), rec.size(), nullptr, {}, live};
      if (decoded) l.record = &decoded.value();
      else l.decode_error = decoded.error().message();
      if (!decoded || wanted(decoded.value(), &live)) print_dump_line(l, as_json, out);
    }
  }

  auto producers = c->exec("select producer_id, producer_seq::text from tandem_producer order by producer_id, pos");
  auto next = c->exec("select next_msg_seq::text from tandem_lease where id = 1");
  if (!producers.ok()) return failed(producers);
  if (!next.ok()) return failed(next);
  journal::index_state windows;
  windows.next_msg_seq = next.rows() ? static_cast<std::uint64_t>(next.integer(0, 0)) : 0;
  for (int i = 0; i < producers.rows(); ++i) {
    const auto id = producers.text(i, 0);
    if (windows.windows.empty() || windows.windows.back().producer_id != id) windows.windows.push_back({std::string(id), false, {}});
    windows.windows.back().seqs.push_back(static_cast<std::uint64_t>(producers.integer(i, 1)));
  }
  const journal::record r = windows;
  if (wanted(r, nullptr)) print_dump_line({"tandem_producer", {}, {}, &r, {}, {}}, as_json, out);
  c->exec("commit");
  return exit_clean;
}

}  // namespace tandem::tools
