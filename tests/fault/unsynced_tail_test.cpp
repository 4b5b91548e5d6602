// Regression (issue 12, bug 6 of docs/failover.md): a master whose write or fdatasync
// failed leaves records that were never durable but that the page cache still serves; the
// next master replayed them, built on them (its epoch_start, its lsns, its checkpoints),
// and a power loss then removed them: the journal had an lsn hole that every later start
// refused as mid-log corruption, or, through a checkpoint, an index naming records that
// were gone (a queue stalled behind them). On fault_file_system: a failed sync keeps its
// writes pending, readable until a crash decides their fate, as Linux's page cache does.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "journal/errc.h"
#include "journal/format.h"
#include "journal/store.h"
#include "tests/support/fault_file_system.h"
#include "tests/support/store_factory.h"

namespace {

namespace ts = tandem::test;
namespace tj = tandem::journal;
using path = std::filesystem::path;

const path root = "/store";
const std::string queue = "/queue/q";

tj::options options_for(ts::fault_file_system& fs, std::uint64_t epoch) {
  tj::options o;
  o.fs = &fs;
  o.epoch = epoch;
  o.broker_name = "bug6";
  o.segment_bytes = 256 << 10;
  o.checkpoint_every_bytes = 1ull << 30;
  o.auto_compact_bytes = 0;
  o.group_linger = std::chrono::microseconds(0);
  return o;
}

// Every live entry read back through the store: msg_seq -> body, or the read's error.
std::map<std::uint64_t, std::string> read_all(tj::store& s, std::vector<std::string>* errors) {
  std::map<std::uint64_t, std::string> out;
  const auto* msgs = s.index().messages(queue);
  if (!msgs) return out;
  for (const auto& [seq, ref] : *msgs) {
    auto m = s.read(queue, seq);
    if (m)
      out[seq] = m.value()->body;
    else
      errors->push_back("msg_seq " + std::to_string(seq) + ": " + m.error().message());
  }
  return out;
}

// Master A (epoch 1): `acked` durable messages, then a group whose fdatasync fails.
// Returns the acked messages; `failed` gets the msg_seqs of the failed group.
std::vector<tj::message_add> master_with_failed_fsync(ts::fault_file_system& fs, std::vector<std::uint64_t>& failed) {
  auto a = ts::open_ok(root, options_for(fs, 1));
  std::vector<tj::message_add> acked;
  for (int i = 0; i < 4; ++i) {
    auto m = ts::make_message(a->allocate_msg_seq(), {queue}, 200, "p", 100 + i);
    REQUIRE_FALSE(ts::append_wait(*a, m).ec);
    acked.push_back(m);
  }
  fs.fail(ts::op::sync, 1, std::make_error_code(std::errc::io_error));
  ts::completion_tracker t;
  for (int i = 0; i < 3; ++i) {
    auto m = ts::make_message(a->allocate_msg_seq(), {queue}, 200, "p", 200 + i);
    failed.push_back(m.msg_seq);
    a->append(m, t.slot(i));
  }
  REQUIRE(t.wait_all());
  for (const auto& o : t.outcomes()) REQUIRE(o.ec);  // none acknowledged
  REQUIRE(a->failed());
  fs.clear_failures();
  a.reset();  // the process exits; the page cache keeps the failed group's bytes
  return acked;
}

// Removes every checkpoint file, so the next open replays the whole log.
void remove_checkpoints(ts::fault_file_system& fs) {
  const auto jdir = root / tj::format::journal_dir_name;
  for (const auto& f : fs.durable_files())
    if (f.parent_path() == jdir && f.filename().string().starts_with(tj::format::checkpoint_prefix))
      REQUIRE_FALSE(fs.remove(f));
  REQUIRE_FALSE(fs.sync_dir(jdir));
}

// The msg_seqs of `failed` that `s` recovered (A's failed group reached the page cache in
// one or more writes, depending on how the writer grouped it).
std::vector<std::uint64_t> recovered(const tj::store& s, const std::vector<std::uint64_t>& failed) {
  std::vector<std::uint64_t> out;
  for (auto seq : failed)
    if (s.index().messages(queue)->count(seq) == 1) out.push_back(seq);
  return out;
}

}  // namespace

TEST_CASE("issue 12 bug 6: a new master makes the unsynced tail it replays durable before building on it") {
  // B's close writes a checkpoint (kept: the next open starts there; removed: a full replay).
  for (bool keep_checkpoints : {false, true}) {
    CAPTURE(keep_checkpoints);
    ts::fault_file_system fs(61);
    ts::make_store(fs, root);
    std::vector<std::uint64_t> failed;
    auto acked = master_with_failed_fsync(fs, failed);

    // Master B (epoch 2) replays A's failed group from the page cache and serves on.
    std::vector<tj::message_add> acked_by_b;
    std::vector<std::uint64_t> replayed;
    {
      ts::event_log log;
      auto o = options_for(fs, 2);
      o.report = log.reporter();
      auto b = ts::open_ok(root, o);
      replayed = recovered(*b, failed);
      REQUIRE_FALSE(replayed.empty());
      CHECK(log.count(tj::event_kind::tail_made_durable) == 1);
      for (int i = 0; i < 2; ++i) {
        auto m = ts::make_message(b->allocate_msg_seq(), {queue}, 200, "p", 300 + i);
        REQUIRE_FALSE(ts::append_wait(*b, m).ec);
        acked_by_b.push_back(m);
      }
      REQUIRE_FALSE(b->close());
    }
    // Power loss: nothing that was not fsync'd survives.
    fs.crash(ts::crash_options::lose_all_unsynced());
    if (!keep_checkpoints) remove_checkpoints(fs);

    tj::recovery_report rep;
    auto c = ts::open_store(root, options_for(fs, 3));
    REQUIRE_MESSAGE(c.store, "open after the power loss: " << c.error.message());
    std::vector<std::string> errors;
    auto live = read_all(*c.store, &errors);
    CHECK_MESSAGE(errors.empty(), (errors.empty() ? std::string() : errors.front()));
    for (const auto& m : acked) CHECK(live[m.msg_seq] == m.body);
    for (const auto& m : acked_by_b) CHECK(live[m.msg_seq] == m.body);
    // What B replayed and served is durable now: it outlives the power loss.
    for (auto seq : replayed) CHECK(live.count(seq) == 1);
    CHECK_FALSE(c.store->close());
  }
}

TEST_CASE("issue 12 bug 6: recovery drops, and reports, records a power loss took after a later master built on them") {
  // The store an older build left: B replayed A's unsynced group and built on it without
  // making it durable, and the power loss took the group. Made here by zeroing the group's
  // records in the durable image after the crash.
  for (bool keep_checkpoints : {false, true}) {
    CAPTURE(keep_checkpoints);
    ts::fault_file_system fs(62);
    ts::make_store(fs, root);
    std::vector<std::uint64_t> failed;
    auto acked = master_with_failed_fsync(fs, failed);
    std::vector<tj::message_add> acked_by_b;
    std::vector<tj::location> lost;
    std::vector<std::uint64_t> replayed;
    {
      auto b = ts::open_ok(root, options_for(fs, 2));
      replayed = recovered(*b, failed);
      REQUIRE_FALSE(replayed.empty());
      for (auto seq : replayed) lost.push_back(b->index().messages(queue)->at(seq).where);
      for (int i = 0; i < 2; ++i) {
        auto m = ts::make_message(b->allocate_msg_seq(), {queue}, 200, "p", 300 + i);
        REQUIRE_FALSE(ts::append_wait(*b, m).ec);
        acked_by_b.push_back(m);
      }
      REQUIRE_FALSE(b->close());
    }
    fs.crash(ts::crash_options::lose_all_unsynced());
    if (!keep_checkpoints) remove_checkpoints(fs);
    for (const auto& where : lost) {
      auto file = root / tj::format::journal_dir_name / fmt::format("{:016x}.seg", where.segment);
      auto bytes = fs.durable_contents(file);
      REQUIRE(bytes.has_value());
      std::fill(bytes->begin() + where.offset, bytes->begin() + where.offset + where.size, std::byte{0});
      fs.set_durable_contents(file, std::move(*bytes));
    }

    ts::event_log log;
    auto o = options_for(fs, 3);
    o.report = log.reporter();
    auto c = ts::open_store(root, o);
    REQUIRE_MESSAGE(c.store, "open: " << c.error.message());
    std::vector<std::string> errors;
    auto live = read_all(*c.store, &errors);
    CHECK_MESSAGE(errors.empty(), (errors.empty() ? std::string() : errors.front()));
    for (const auto& m : acked) CHECK(live[m.msg_seq] == m.body);
    for (const auto& m : acked_by_b) CHECK(live[m.msg_seq] == m.body);
    for (auto seq : replayed) CHECK(live.count(seq) == 0);  // (A's unwritten seqs are reused by B)
    auto ev = log.of(tj::event_kind::unsynced_records_lost);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].count == replayed.size());
    CHECK(ev[0].last_lsn - ev[0].first_lsn + 1 == replayed.size());
    CHECK(ev[0].offset == lost.front().offset);
    CHECK(ev[0].bytes == std::uint64_t{lost.back().offset} + lost.back().size - lost.front().offset);
    CHECK_FALSE(ev[0].reason.empty());
    REQUIRE(c.report.unsynced_lost.size() == 1);
    if (keep_checkpoints) CHECK(log.count(tj::event_kind::checkpoint_fallback) >= 1);
    // The producer's window forgot the lost seqs: their resends are stored, not answered
    // as duplicates of messages that are gone.
    CHECK_FALSE(c.store->index().is_duplicate("p", 200));
    CHECK(c.store->index().is_duplicate("p", 100));
    // And the next start agrees (the new epoch's records follow on without a hole).
    REQUIRE_FALSE(c.store->close());
    c.store.reset();
    auto d = ts::open_store(root, options_for(fs, 4));
    REQUIRE_MESSAGE(d.store, "reopen: " << d.error.message());
    CHECK(read_all(*d.store, &errors).size() == live.size());
    CHECK(errors.empty());
  }
}
