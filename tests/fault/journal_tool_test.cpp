// Golden tests of `tandem-journal`: the binary is run on the known stores of
// journal_fixtures.h and its output and exit code compared with
// tests/fixtures/journal/expected/<store>.<command>.txt. After an intended change of the
// output, regenerate them with TANDEM_UPDATE_GOLDEN=1 and review the diff.
#include <doctest/doctest.h>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "journal/format.h"
#include "journal/errc.h"
#include "journal/identity.h"
#include "journal/index.h"
#include "journal/store.h"
#include "tests/support/fault_file_system.h"
#include "tests/fault/journal_fixtures.h"
#include "tests/support/store_factory.h"
#include "tests/support/temp_dir.h"
#include "tools/journal/journal_tool.h"

namespace {

namespace tf = tandem::fault;
namespace ts = tandem::test;
using ts::temp_dir;
namespace tt = tandem::tools;
using nlohmann::json;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct run_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the binary in `cwd` with `args` (already shell-safe: fixture names and flags only).
run_result run_tool(const std::filesystem::path& cwd, const std::string& args) {
  auto out = cwd / ".stdout", err = cwd / ".stderr";
  std::string cmd = "cd '" + cwd.string() + "' && '" TANDEM_JOURNAL_BIN "' " + args + " >'" + out.string() +
                    "' 2>'" + err.string() + "'";
  int status = std::system(cmd.c_str());
  run_result r;
  REQUIRE(WIFEXITED(status));
  r.exit_code = WEXITSTATUS(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// All fixtures, built once per process into one temp dir.
const std::filesystem::path& fixtures() {
  static temp_dir dir;
  static bool built = [] {
    for (const auto& n : tf::fixture_names()) tf::build_fixture(n, dir.path() / n);
    return true;
  }();
  (void)built;
  return dir.path();
}

void check_golden(const std::string& name, const std::string& command, const run_result& r) {
  std::string actual = r.out + "--- exit " + std::to_string(r.exit_code) + "\n" + r.err;
  auto file = std::filesystem::path(TANDEM_FIXTURES_DIR) / "expected" / (name + "." + command + ".txt");
  if (std::getenv("TANDEM_UPDATE_GOLDEN") != nullptr) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << actual;
  }
  INFO("golden file ", file.string(), " (regenerate with TANDEM_UPDATE_GOLDEN=1 and review)");
  REQUIRE(std::filesystem::exists(file));
  CHECK(actual == slurp(file));
}

// Every file under `dir` with its contents, to prove the tool changed nothing.
std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[e.path().string()] = slurp(e.path());
  return m;
}

const std::map<std::string, int> verify_codes = {
    {"valid", tt::exit_clean},        {"empty", tt::exit_clean},
    {"torn_tail", tt::exit_torn_tail}, {"bad_crc_mid_log", tt::exit_corrupt},
    {"unknown_version", tt::exit_unsupported_version},
    {"short_header", tt::exit_torn_tail}, {"fenced", tt::exit_clean},
};

}  // namespace

TEST_CASE("verify exits with a distinct code for clean, torn tail, corruption and unknown version") {
  for (const auto& [name, code] : verify_codes) {
    CAPTURE(name);
    auto r = run_tool(fixtures(), "verify " + name);
    CHECK(r.exit_code == code);
    check_golden(name, "verify", r);
  }
}

TEST_CASE("summary and dump of every known store match their golden output") {
  for (const auto& name : tf::fixture_names()) {
    CAPTURE(name);
    check_golden(name, "summary", run_tool(fixtures(), "summary " + name));
    check_golden(name, "dump", run_tool(fixtures(), "dump " + name));
  }
}

TEST_CASE("verify names the file and offset of every damaged range") {
  auto torn = run_tool(fixtures(), "verify torn_tail");
  CHECK(torn.out.find("torn_tail/journal/0000000000000002.seg offset ") != std::string::npos);
  auto bad = run_tool(fixtures(), "verify bad_crc_mid_log");
  CHECK(bad.out.find("corruption: bad_crc_mid_log/journal/0000000000000001.seg offset ") != std::string::npos);
  CHECK(bad.out.find("checksum mismatch") != std::string::npos);
  auto ver = run_tool(fixtures(), "verify unknown_version");
  CHECK(ver.err.find("unknown_version/journal/0000000000000001.seg offset 8: segment format version " +
                     std::to_string(tandem::journal::format::segment_format_version + 1)) != std::string::npos);
}

TEST_CASE("verify json reports the classification, the damage and the fenced records") {
  auto bad = json::parse(run_tool(fixtures(), "verify bad_crc_mid_log --json").out);
  CHECK(bad["result"] == "corrupt");
  CHECK(bad["exit_code"] == tt::exit_corrupt);
  REQUIRE(bad["damage"].size() == 1);
  CHECK(bad["damage"][0]["class"] == "mid_log");
  CHECK(bad["damage"][0]["offset"].get<std::uint64_t>() % 8 == 0);

  auto fenced = json::parse(run_tool(fixtures(), "verify fenced --json").out);
  CHECK(fenced["result"] == "clean");
  REQUIRE(fenced["fenced"].size() == 2);
  CHECK(fenced["fenced"][0]["epoch"] == 1);
  CHECK(fenced["fenced"][0]["type"] == "message_add");

  auto torn = json::parse(run_tool(fixtures(), "verify torn_tail --json").out);
  CHECK(torn["result"] == "torn_tail");
  CHECK(torn["damage"][0]["class"] == "torn_tail");
}

TEST_CASE("summary json counts live messages per queue key and the fenced records") {
  auto s = json::parse(run_tool(fixtures(), "summary valid --json").out);
  CHECK(s["store_id"] == tf::fixture_store_id);
  CHECK(s["live"]["messages"] == 9);
  std::map<std::string, std::uint64_t> per;
  for (const auto& t : s["live"]["targets"]) per[t["target"]] = t["messages"];
  CHECK(per["/queue/orders"] == 6);  // 8 sent, 1 removed, 1 removed by the batch
  CHECK(per["/queue/audit"] == 2);
  CHECK(s["checkpoint"]["lsn"].get<std::uint64_t>() > 0);
  auto f = json::parse(run_tool(fixtures(), "summary fenced --json").out);
  CHECK(f["fenced"]["records"] == 2);
  CHECK(f["live"]["messages"] == 4);  // the deposed master's two messages are not live
  CHECK(f["epochs"] == json::array({1, 2}));
}

// What store::open recovers from a copy of a fixture (open repairs what it recovers, and
// the fixture must stay as the tool saw it): in the broker's default mode, or, when that
// refuses with mid-log corruption, in salvage mode, which is what the summary then shows.
struct broker_recovery {
  std::unique_ptr<tandem::journal::store> store;
  tandem::journal::recovery_report report;
  tandem::journal::recovery_mode mode = tandem::journal::recovery_mode::tolerate_torn_tail;
  std::optional<tandem::journal::damage> refused;
  std::error_code error;
};

broker_recovery recover_copy(const std::filesystem::path& fixture, const std::filesystem::path& scratch) {
  namespace tj = tandem::journal;
  broker_recovery r;
  for (auto mode : {tj::recovery_mode::tolerate_torn_tail, tj::recovery_mode::salvage}) {
    std::filesystem::remove_all(scratch);
    std::filesystem::copy(fixture, scratch, std::filesystem::copy_options::recursive);
    tj::options o;
    o.epoch = 1000;  // above every fixture's epochs
    o.broker_name = "recovery-under-test";
    o.recovery = mode;
    r.mode = mode;
    auto s = tj::store::open(scratch, o, r.report);
    if (s) {
      r.store = std::move(s.value());
      r.error = {};
      return r;
    }
    r.error = s.error();
    if (s.error() != tj::errc::mid_log_corruption) return r;
    r.refused = r.report.refused;
  }
  return r;
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void check_damage(const json& j, const std::optional<tandem::journal::damage>& d) {
  REQUIRE(j.is_null() == !d.has_value());
  if (!d) return;
  CHECK(j["offset"] == d->offset);
  CHECK(j["bytes"] == d->bytes);
  CHECK(j["reason"] == d->reason);
}

TEST_CASE("summary --json shows exactly the index store::open recovers, on every fixture") {
  // Regression (issue 11): the tool replayed records with its own copy of the replay rules,
  // which ignored checkpoints, index_state and the compaction-copy flag; on
  // bad_crc_mid_log it showed 8 live messages where a broker recovers 9 (its checkpoint
  // covers the damaged record).
  temp_dir scratch;
  // A variant where nothing covers the damage: the default mode refuses the store, and
  // the summary shows what salvage would recover.
  const auto no_checkpoint = scratch.path() / "bad_crc_mid_log_no_checkpoint";
  std::filesystem::copy(fixtures() / "bad_crc_mid_log", no_checkpoint, std::filesystem::copy_options::recursive);
  for (const auto& e : std::filesystem::directory_iterator(no_checkpoint / "journal"))
    if (e.path().extension() == ".ckpt") std::filesystem::remove(e.path());
  std::vector<std::filesystem::path> stores;
  for (const auto& n : tf::fixture_names()) stores.push_back(fixtures() / n);
  stores.push_back(no_checkpoint);

  for (const auto& dir : stores) {
    CAPTURE(dir.filename().string());
    auto tool = run_tool(dir.parent_path(), "summary " + dir.filename().string() + " --json");
    auto rec = recover_copy(dir, scratch.path() / "recovered");
    if (rec.error) {
      // Only unknown_version: recovery refuses the store outright (no mode reads a segment
      // of a newer format), so there is no index to compare; the tool refuses it too.
      CHECK(rec.error == tandem::journal::errc::unsupported_version);
      CHECK(tool.exit_code == tt::exit_unsupported_version);
      CHECK(tool.out.empty());
      continue;
    }
    REQUIRE(tool.exit_code == tt::exit_clean);
    const auto j = json::parse(tool.out);
    const auto& idx = rec.store->index();
    const auto& r = j["recovery"];
    CHECK(r["mode"] == (rec.mode == tandem::journal::recovery_mode::salvage ? "salvage" : "tolerate_torn_tail"));
    check_damage(r["refused"], rec.refused);
    check_damage(r["torn_tail"], rec.report.torn_tail);
    CHECK(r["skipped"].size() == rec.report.skipped.size());
    CHECK(r["from_checkpoint"].is_null() == !rec.report.from_checkpoint);
    CHECK(r["records_replayed"] == rec.report.records_replayed);
    CHECK(r["last_lsn"] == rec.report.last_lsn);

    const auto& live = j["live"];
    CHECK(live["digest"] == hex16(tandem::journal::content_digest(idx)));
    CHECK(live["messages"] == idx.live_messages());
    CHECK(live["bytes"] == idx.live_bytes());
    CHECK(live["next_msg_seq"] == idx.next_msg_seq());
    CHECK(live["dedup"]["producers"] == idx.producer_windows().size());
    REQUIRE(live["targets"].size() == idx.targets().size());
    auto t = live["targets"].begin();
    for (const auto& [target, msgs] : idx.targets()) {
      CHECK((*t)["target"] == target);
      CHECK((*t)["messages"] == msgs.size());
      CHECK((*t)["first_msg_seq"] == msgs.begin()->first);
      CHECK((*t)["last_msg_seq"] == msgs.rbegin()->first);
      ++t;
    }
    CHECK(j["destinations"] == json(idx.destinations()));
    REQUIRE(j["durable_subscriptions"].size() == idx.durable_subscriptions().size());
    auto sub = j["durable_subscriptions"].begin();
    for (const auto& [key, s] : idx.durable_subscriptions()) {
      CHECK((*sub)["client_id"] == s.client_id);
      CHECK((*sub)["subscription_name"] == s.subscription_name);
      CHECK((*sub)["topic"] == s.topic);
      ++sub;
    }
  }
}

TEST_CASE("dump filters by destination, position and lsn") {
  auto all = run_tool(fixtures(), "dump valid --json");
  auto audit = run_tool(fixtures(), "dump valid --json --destination /queue/audit");
  auto from = run_tool(fixtures(), "dump valid --json --from 2:0");
  auto lsn = run_tool(fixtures(), "dump valid --json --lsn 14");
  auto lines = [](const std::string& s) {
    std::vector<json> v;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) v.push_back(json::parse(l));
    return v;
  };
  auto a = lines(audit.out);
  REQUIRE(a.size() == 3);  // destination_create, the message on two targets, the batch
  for (const auto& j : a) CHECK(j["kind"] == "record");
  for (const auto& j : lines(from.out))
    if (j["kind"] != "segment") CHECK(j["segment"] == "0000000000000002");
  auto l = lines(lsn.out);
  REQUIRE_FALSE(l.empty());
  CHECK(l.front()["lsn"] == 14);
  CHECK(lines(all.out).size() > l.size());
  CHECK(run_tool(fixtures(), "dump valid --from nonsense").exit_code == tt::exit_usage);
}

TEST_CASE("tandem-journal refuses a directory that is not a store and a bad command line") {
  temp_dir d;
  auto r = run_tool(d.path(), "verify .");
  CHECK(r.exit_code == tt::exit_cannot_read);
  CHECK(r.err.find("not a Tandem store") != std::string::npos);
  CHECK(run_tool(d.path(), "frobnicate .").exit_code == tt::exit_usage);
  CHECK(run_tool(d.path(), "verify").exit_code == tt::exit_usage);
  auto help = run_tool(d.path(), "--help");
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("EXIT STATUS") != std::string::npos);
  CHECK(help.out.find("read-only") != std::string::npos);
}

TEST_CASE("the tool changes nothing in the store it reads") {
  auto before = snapshot(fixtures());
  for (const auto& name : tf::fixture_names())
    for (const char* cmd : {"summary", "dump", "verify", "summary --json", "dump --json", "verify --json"})
      run_tool(fixtures(), std::string(cmd).substr(0, std::string(cmd).find(' ')) + " " + name +
                               (std::string(cmd).find("--json") != std::string::npos ? " --json" : ""));
  CHECK(snapshot(fixtures()) == before);
}

TEST_CASE("in process the commands make no mutating call on the file system") {
  // fault_file_system counts every call; the read-only wrapper must stop any write before
  // it, and the commands must not even try one.
  ts::fault_file_system fs(1);
  REQUIRE_FALSE(fs.import_from(fixtures() / "valid", "/s"));
  auto before = fs.mutations();
  std::ostringstream out, err;
  CHECK(tt::run_summary(fs, "/s", false, out, err) == tt::exit_clean);
  CHECK(tt::run_dump(fs, "/s", {}, true, out, err) == tt::exit_clean);
  CHECK(tt::run_verify(fs, "/s", true, out, err) == tt::exit_clean);
  CHECK(fs.mutations() == before);
  CHECK(err.str().empty());
}

TEST_CASE("verify is safe against a store a writer is appending to") {
  // A live broker's journal: the tool must neither disturb the writer nor report
  // corruption for a tail in progress (at most a torn tail).
  temp_dir d;
  auto dir = d.path() / "live";
  auto& pfs = tandem::fs::posix_file_system();
  REQUIRE(tandem::journal::create_store(pfs, dir).has_value());
  tandem::journal::options o;
  o.epoch = 1;
  o.segment_bytes = 64 << 10;
  o.sync = tandem::journal::sync_policy::never;  // fast appends: many tails in flight
  tandem::journal::recovery_report rep;
  auto s = tandem::journal::store::open(dir, o, rep);
  REQUIRE(s.has_value());
  std::atomic<bool> stop{false};
  ts::completion_tracker tracker;
  std::thread writer([&] {
    for (std::size_t i = 0; i < 3000 && !stop; ++i)
      s.value()->append(ts::make_message(i + 1, {"/queue/q"}, 200), tracker.slot(i));
  });
  int runs = 0;
  for (; runs < 5; ++runs) {
    auto r = run_tool(d.path(), "verify live");
    CAPTURE(r.out);
    CHECK((r.exit_code == tt::exit_clean || r.exit_code == tt::exit_torn_tail));
  }
  stop = true;
  writer.join();
  REQUIRE(tracker.wait_all());
  for (const auto& oc : tracker.outcomes()) CHECK_FALSE(oc.ec);
  CHECK_FALSE(s.value()->close());
  CHECK(run_tool(d.path(), "verify live").exit_code == tt::exit_clean);
}

TEST_CASE("lock reports a lock held by another process and its holder, without taking it") {
  temp_dir d;
  auto dir = d.path() / "store";
  std::filesystem::create_directories(dir);
  auto before = run_tool(d.path(), "lock store --json");
  CHECK(before.exit_code == 0);
  CHECK(json::parse(before.out)["held"] == false);

  // A holder process: stdin and stdout are pipes; it prints "acquired", holds the lock
  // until its stdin closes.
  int to_child[2], from_child[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(from_child) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from_child[1], 1);
  posix_spawn_file_actions_addclose(&fa, to_child[1]);
  posix_spawn_file_actions_addclose(&fa, from_child[0]);
  std::string bin = TANDEM_LOCK_HOLDER_BIN, arg = dir.string();
  char* argv[] = {bin.data(), arg.data(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv, environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(to_child[0]);
  ::close(from_child[1]);
  std::string line;
  char c;
  while (::read(from_child[0], &c, 1) == 1 && c != '\n') line += c;  // blocks until acquired or exit
  ::close(from_child[0]);
  REQUIRE(line == "acquired");

  auto held = run_tool(d.path(), "lock store --json");
  CHECK(held.exit_code == 0);
  auto j = json::parse(held.out);
  CHECK(j["held"] == true);
  CHECK(j["holder"]["broker_name"] == "holder-under-test");
  CHECK(j["holder"]["pid"] == pid);
  auto text = run_tool(d.path(), "lock store");
  CHECK(text.out.find("holder-under-test") != std::string::npos);

  ::close(to_child[1]);  // the holder releases cleanly and exits
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  auto after = json::parse(run_tool(d.path(), "lock store --json").out);
  CHECK(after["held"] == false);
  CHECK(after["state"] == "free_after_clean_release");
}
