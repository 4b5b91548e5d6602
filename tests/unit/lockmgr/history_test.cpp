// DIR/masters.jsonl (lockmgr/history.h): the masters' history behind the console's
// failover timeline, written once per mastership and read by every broker.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "journal/fs/file_system.h"
#include "lockmgr/history.h"
#include "tests/support/temp_dir.h"

namespace lm = tandem::lockmgr;
namespace fs = tandem::fs;

namespace {

lm::master_stint stint(std::uint64_t epoch, std::string broker = "b0") {
  lm::master_stint s;
  s.epoch = epoch;
  s.broker_name = std::move(broker);
  s.host = "host-a";
  s.pid = 4242;
  s.acquired_at_ms = 1'700'000'000'000 + static_cast<std::int64_t>(epoch) * 1000;
  s.serving_at_ms = s.acquired_at_ms + 12;
  s.start_ms = 12;
  s.previous_epoch = epoch - 1;
  s.previous_broker = epoch > 1 ? "b1" : "";
  s.failover_ms = epoch > 1 ? std::optional<std::int64_t>(30) : std::nullopt;
  return s;
}

std::string contents(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("a stint round-trips through one line, and lines that are not stints are refused") {
  auto s = stint(7);
  s.broker_name = "a \"quoted\"\nname";
  auto line = lm::encode_stint(s);
  CHECK(line.find('\n') == std::string::npos);
  REQUIRE(lm::parse_stint(line));
  CHECK(*lm::parse_stint(line) == s);
  CHECK(*lm::parse_stint(lm::encode_stint(stint(1))) == stint(1));  // failover_ms null
  CHECK_FALSE(lm::parse_stint(""));
  CHECK_FALSE(lm::parse_stint("{\"epoch\": 3"));
  CHECK_FALSE(lm::parse_stint("[1,2]"));
  auto j = line;
  j.replace(j.find("\"epoch\":7"), 9, "\"epoch\":-7");
  CHECK_FALSE(lm::parse_stint(j));
  auto no_failover = lm::encode_stint(s);
  no_failover.replace(no_failover.find("\"failover_ms\""), 13, "\"other\"");
  CHECK_FALSE(lm::parse_stint(no_failover));
}

TEST_CASE("a missing history is empty; each master adds its line, oldest first, bounded") {
  tandem::test::temp_dir dir;
  auto& posix = fs::posix_file_system();
  REQUIRE(lm::read_history(posix, dir.path()).value().empty());
  REQUIRE_FALSE(lm::append_history(posix, dir.path(), stint(2)));
  REQUIRE_FALSE(lm::append_history(posix, dir.path(), stint(1)));  // a deposed master, late
  REQUIRE_FALSE(lm::append_history(posix, dir.path(), stint(3, "b9")));
  REQUIRE_FALSE(lm::append_history(posix, dir.path(), stint(3, "b2")));  // same epoch: replaced
  auto h = lm::read_history(posix, dir.path()).value();
  REQUIRE(h.size() == 3);
  CHECK(h[0] == stint(1));
  CHECK(h[1] == stint(2));
  CHECK(h[2] == stint(3, "b2"));
  CHECK(lm::read_history(posix, dir.path(), 2).value().front().epoch == 2);

  for (std::uint64_t e = 4; e <= lm::max_history_lines + 10; ++e) REQUIRE_FALSE(lm::append_history(posix, dir.path(), stint(e)));
  h = lm::read_history(posix, dir.path()).value();
  CHECK(h.size() == lm::max_history_lines);
  CHECK(h.front().epoch == 11);
  CHECK(h.back().epoch == lm::max_history_lines + 10);
}

TEST_CASE("a damaged line is skipped by readers and dropped at the next write") {
  tandem::test::temp_dir dir;
  auto& posix = fs::posix_file_system();
  auto path = dir.path() / lm::history_file_name;
  std::ofstream(path) << lm::encode_stint(stint(1)) << "\n{torn\n" << lm::encode_stint(stint(2));  // no final \n
  auto h = lm::read_history(posix, dir.path()).value();
  REQUIRE(h.size() == 2);
  CHECK(h[1] == stint(2));
  REQUIRE_FALSE(lm::append_history(posix, dir.path(), stint(3)));
  CHECK(contents(path) == lm::encode_stint(stint(1)) + "\n" + lm::encode_stint(stint(2)) + "\n" +
                              lm::encode_stint(stint(3)) + "\n");
}

TEST_CASE("a history that cannot be read is reported and left as it is") {
  tandem::test::temp_dir dir;
  auto& posix = fs::posix_file_system();
  std::filesystem::create_directory(dir.path() / lm::history_file_name);  // EISDIR on read
  CHECK(lm::append_history(posix, dir.path(), stint(1)));
  CHECK_FALSE(lm::read_history(posix, dir.path()));
  CHECK(std::filesystem::is_directory(dir.path() / lm::history_file_name));
}

TEST_CASE("failover_ms: from a clean release to serving, else lease wait plus start, none for a new store") {
  CHECK(lm::unix_ms_of_iso8601("1970-01-01T00:00:01.250Z") == 1250);
  CHECK(lm::unix_ms_of_iso8601("2026-12-06T15:00:00.000Z") == 1796569200000);
  CHECK_FALSE(lm::unix_ms_of_iso8601("2026-12-06 15:00:00.000Z"));
  CHECK_FALSE(lm::unix_ms_of_iso8601("2026-13-06T15:00:00.000Z"));
  CHECK_FALSE(lm::unix_ms_of_iso8601("2026-12-06T15:00:00.000"));

  lm::master_stint s = stint(5);
  s.serving_at_ms = 1796569200000 + 80;
  s.takeover_delay_ms = 4000;
  s.start_ms = 25;
  s.previous_clean = true;
  CHECK(lm::failover_ms(s, std::string("2026-12-06T15:00:00.000Z")) == 80);
  CHECK(lm::failover_ms(s, std::nullopt) == 4025);  // clean but no time: what was measured here
  s.previous_clean = false;
  CHECK(lm::failover_ms(s, std::string("2026-12-06T15:00:00.000Z")) == 4025);
  s.previous_epoch = 0;
  CHECK_FALSE(lm::failover_ms(s, std::nullopt));
}
