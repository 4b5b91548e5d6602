// tandem-journal: inspect a Tandem store without touching it (see --help).
#include <iostream>

#include <CLI/CLI.hpp>

#include "journal/fs/file_system.h"
#include "journal/pg/connection.h"
#include "tools/journal/journal_tool.h"

namespace {

constexpr const char* description = R"(tandem-journal - inspect a Tandem store without touching it

SYNOPSIS
  tandem-journal summary DIR [--json]
  tandem-journal dump    DIR [--json] [--destination NAME] [--from SEG:OFF] [--lsn N]
  tandem-journal verify  DIR [--json]
  tandem-journal lock    DIR [--json]
  tandem-journal summary|lock|verify postgresql://... [--json]
  tandem-journal dump    postgresql://... [--json] [--destination NAME])";

constexpr const char* footer = R"(DESCRIPTION
  DIR is a store directory (it holds `identity` and `journal/`). Every command is
  strictly read-only: it takes no lock, opens every file read-only and writes
  nothing, so it is safe to run against a store a broker is serving (a segment
  still being written may then show a torn tail; nothing is ever repaired).

  summary  Store id, segments, bytes, records by type, epochs seen, the newest
           valid checkpoint, damage and fenced records; and what a broker would
           recover, built by the broker's own recovery code without writing
           anything: live messages and bytes per queue key, destinations, durable
           subscriptions, next msg_seq and a digest of the whole index. If the
           default recovery mode would refuse the store, it says where and shows
           what salvage mode would recover.
  dump     One line per record: SEG:OFF lsn= epoch= bytes= type fields. Message
           bodies are never printed, only their size. Damaged ranges are shown as
           DAMAGE lines, records of a deposed master as FENCED. Filters:
             --destination NAME  records that touch NAME (a destination or queue key)
             --from SEG:OFF      start at segment SEG (hex, as in the file name),
                                 byte offset OFF (decimal), e.g. --from 2:4096
             --lsn N             records with lsn >= N
  verify   Checks every record's checksum, type and lsn sequence and classifies
           damage as recovery would: a torn tail (written after the last
           completed fdatasync; recovery truncates it) or mid-log corruption
           (synced data damaged; a broker refuses the store). Lists records fenced off as
           written by a deposed master, and checkpoint validity. Every problem
           names the file and the byte offset.

  lock     Whether DIR/lock is held now and the holder record (broker, host,
           pid, epoch, acquired time, client URL, whether it released cleanly),
           asked with F_OFD_GETLK on a read-only descriptor: it never takes the
           lock, so it cannot delay a takeover.

  DIR may also be a PostgreSQL store's URI (docs/postgresql.md): summary then
  shows the schema, the lease (holder, epoch) and live messages per queue key,
  lock the lease, verify each live entry's body, and dump the store as records
  read in one snapshot: TABLE [msg_seq= bytes=] type fields [live=[targets]]
  (destinations, durable subscriptions, each stored message with the queue keys
  it is still live on, the dedup windows as one index_state); a database keeps
  no history, so acked entries are gone rather than shown as message_remove.
  All in a read-only session.

  --json prints one JSON object (dump: one object per line).

EXIT STATUS
  0   success (verify: the store is clean; lock: held or not)
  1   DIR is not a store, or it cannot be read (I/O error)
  2   verify: a torn tail only (safe: recovery truncates it)
  3   verify: corruption (mid-log damage, a segment of another store, a
      malformed identity); the broker will refuse this store
  4   a file has a format version this tool does not read; use the
      tandem-journal of the broker version that wrote it
  64  bad command line

EXAMPLES
  tandem-journal verify /var/lib/tandem/store
  tandem-journal dump /var/lib/tandem/store --destination /queue/orders --lsn 1200
  tandem-journal summary /var/lib/tandem/store --json | jq .live
  tandem-journal lock /var/lib/tandem/store
)";

}  // namespace

int main(int argc, char** argv) {
  namespace tt = tandem::tools;
  CLI::App app{description, "tandem-journal"};
  app.footer(footer);
  app.require_subcommand(1);

  std::string dir;
  bool json = false;
  std::string destination, from;
  std::uint64_t lsn = 0;

  auto* summary = app.add_subcommand("summary", "what the store holds");
  auto* dump = app.add_subcommand("dump", "one line per record");
  auto* verify = app.add_subcommand("verify", "check every record; exit code says clean, torn tail or corrupt");
  auto* lock = app.add_subcommand("lock", "who holds the store's lock (never acquires it)");
  for (auto* sub : {summary, dump, verify, lock}) {
    sub->add_option("DIR", dir, "store directory")->required();
    sub->add_flag("--json", json, "print JSON");
  }
  dump->add_option("--destination", destination, "only records touching this destination or queue key");
  dump->add_option("--from", from, "start at SEG:OFF (segment seq in hex, byte offset)");
  dump->add_option("--lsn", lsn, "only records with lsn >= N");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return tt::exit_usage;
  }

  if (tandem::journal::pg::is_database_uri(dir)) {
    if (summary->parsed()) return tt::run_database_summary(dir, json, std::cout, std::cerr);
    if (lock->parsed()) return tt::run_database_lock(dir, json, std::cout, std::cerr);
    if (verify->parsed()) return tt::run_database_verify(dir, json, std::cout, std::cerr);
    if (!from.empty() || dump->count("--lsn") != 0) {
      std::cerr << "tandem-journal: dump " << dir << ": a PostgreSQL store has no segments or LSNs; --from and --lsn "
                << "apply to a journal directory (use --destination)\n";
      return tt::exit_usage;
    }
    return tt::run_database_dump(dir, destination.empty() ? std::nullopt : std::optional<std::string>(destination), json,
                                 std::cout, std::cerr);
  }
  auto& fs = tandem::fs::posix_file_system();
  if (summary->parsed()) return tt::run_summary(fs, dir, json, std::cout, std::cerr);
  if (verify->parsed()) return tt::run_verify(fs, dir, json, std::cout, std::cerr);
  if (lock->parsed()) return tt::run_lock(fs, dir, json, std::cout, std::cerr);
  tt::dump_filter filter;
  if (!destination.empty()) filter.destination = destination;
  if (!from.empty()) {
    std::uint64_t seg = 0, off = 0;
    if (!tt::parse_position(from, seg, off)) {
      std::cerr << "tandem-journal: --from " << from << ": expected SEG:OFF (e.g. 1:64)\n";
      return tt::exit_usage;
    }
    filter.from_segment = seg;
    filter.from_offset = off;
  }
  if (dump->count("--lsn") != 0) filter.from_lsn = lsn;
  return tt::run_dump(fs, dir, filter, json, std::cout, std::cerr);
}
