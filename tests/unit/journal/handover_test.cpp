// The journal's part of a planned handover (issue 12, docs/failover.md "Planned handover"):
// a taker skips the bug-6 tail re-sync only after a clean release of the log's newest
// epoch, and close() writes its final checkpoint only after a long tail. Sync points are
// counted on the fault file system (file syncs plus directory syncs): a figure that the
// machine's load does not blur.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>

#include "journal/store.h"
#include "store_fixture.h"

namespace tandem::journal::test {
namespace {

const fsys::path store_dir = "/store";

options on_fault_fs(fixture& fx, fault_file_system& ffs, std::uint64_t epoch) {
  auto o = fx.opts();
  o.fs = &ffs;
  o.epoch = epoch;
  // No compaction: its copies, appended whenever a step runs, would change what the next
  // open replays (and the sync counts) from run to run.
  o.auto_compact_bytes = 0;
  return o;
}

std::unique_ptr<store> open_store_on(options o, recovery_report* report = nullptr) {
  return tandem::test::open_ok(store_dir, std::move(o), report);
}

void fill(store& s, std::uint64_t first, std::uint64_t n, std::size_t body_bytes = 200) {
  for (std::uint64_t seq = first; seq < first + n; ++seq)
    REQUIRE(!append_wait(s, make_message(seq, {"/queue/handover"}, body_bytes)).ec);
}

// Sync points of one open: the store stays open (returned) for the caller to use.
std::uint64_t syncs_of_open(fault_file_system& ffs, options o, recovery_report& report, std::unique_ptr<store>& out) {
  const auto before = ffs.sync_points();
  out = open_store_on(std::move(o), &report);
  return ffs.sync_points() - before;
}

std::uint64_t syncs_of_close(fault_file_system& ffs, std::unique_ptr<store>& s) {
  const auto before = ffs.sync_points();
  REQUIRE(!s->close());
  s.reset();
  return ffs.sync_points() - before;
}

}  // namespace

TEST_CASE("open skips the tail re-sync only after a clean release of the log's newest epoch") {
  fixture fx;
  fault_file_system ffs;
  tandem::test::make_store(ffs, store_dir);
  {
    auto s = open_store_on(on_fault_fs(fx, ffs, 1));
    fill(*s, 1, 5);
  }
  recovery_report rep;
  std::unique_ptr<store> s;

  // Epoch 1 released cleanly, and it is the newest epoch in the log: trusted.
  auto o2 = on_fault_fs(fx, ffs, 2);
  o2.clean_release_epoch = 1;
  const auto trusted_syncs = syncs_of_open(ffs, o2, rep, s);
  CHECK(rep.tail_trusted_after_clean_release);
  CHECK(fx.count(event_kind::tail_made_durable) == 0);
  fill(*s, 6, 5);
  s.reset();

  // A clean record of epoch 1 while the log's newest epoch is 2 (a successor that died
  // before writing holder.json): nobody vouches for epoch 2's tail, so it is re-synced.
  auto o3 = on_fault_fs(fx, ffs, 3);
  o3.clean_release_epoch = 1;
  const auto stale_syncs = syncs_of_open(ffs, o3, rep, s);
  CHECK_FALSE(rep.tail_trusted_after_clean_release);
  CHECK(fx.count(event_kind::tail_made_durable) == 1);
  s.reset();

  // An unclean end (crash, kill, failed close: clean_release_epoch 0): re-synced.
  const auto unclean_syncs = syncs_of_open(ffs, on_fault_fs(fx, ffs, 4), rep, s);
  CHECK_FALSE(rep.tail_trusted_after_clean_release);
  CHECK(fx.count(event_kind::tail_made_durable) == 2);
  CHECK(rep.live_messages == 10);
  MESSAGE("sync points of open: after a clean release " << trusted_syncs << ", stale clean record " << stale_syncs
                                                        << ", unclean end " << unclean_syncs);
  CHECK(unclean_syncs == trusted_syncs + 1);
  CHECK(stale_syncs == unclean_syncs);
}

TEST_CASE("close writes its final checkpoint only after a long tail, and a short one is still durable") {
  fixture fx;
  fault_file_system ffs;
  tandem::test::make_store(ffs, store_dir);
  auto opts = [&](std::uint64_t epoch) {
    auto o = on_fault_fs(fx, ffs, epoch);
    o.sync = sync_policy::never;  // nothing synced before close: the close must do it
    o.close_checkpoint_min_records = 10;
    o.close_checkpoint_min_bytes = 1ull << 30;
    return o;
  };
  recovery_report rep;

  auto s = open_store_on(opts(1));
  fill(*s, 1, 5);
  const auto short_close = syncs_of_close(ffs, s);
  CHECK(fx.count(event_kind::checkpoint_written) == 0);
  ffs.crash(tandem::test::crash_options::lose_all_unsynced());
  s = open_store_on(opts(2), &rep);
  CHECK(rep.live_messages == 5);  // the close's fdatasync, not a checkpoint, kept them
  CHECK_FALSE(rep.from_checkpoint);
  CHECK(rep.records_replayed == 6);  // epoch 1's epoch_start and 5 messages

  // What open replayed counts: 6 replayed + 4 appended reaches 10.
  fill(*s, 6, 4);
  const auto long_close = syncs_of_close(ffs, s);
  CHECK(fx.count(event_kind::checkpoint_written) == 1);
  ffs.crash(tandem::test::crash_options::lose_all_unsynced());
  s = open_store_on(opts(3), &rep);
  CHECK(rep.live_messages == 9);
  CHECK(rep.from_checkpoint);
  MESSAGE("sync points of close: short tail (no checkpoint) " << short_close << ", long tail (checkpoint) "
                                                              << long_close);
  CHECK(short_close < long_close);
  s.reset();

  // The byte bound alone also asks for one.
  auto by_bytes = opts(4);
  by_bytes.close_checkpoint_min_records = 1u << 20;
  by_bytes.close_checkpoint_min_bytes = 3000;
  s = open_store_on(by_bytes);
  fill(*s, 10, 2, 1000);
  s.reset();
  CHECK(fx.count(event_kind::checkpoint_written) == 1);
  by_bytes.epoch = 5;
  s = open_store_on(by_bytes);
  fill(*s, 12, 2, 1000);  // what open replayed (2 x 1000 + records) and these pass 3000
  s.reset();
  CHECK(fx.count(event_kind::checkpoint_written) == 2);
}

TEST_CASE("by default close always writes its final checkpoint") {
  fixture fx;
  auto s = fx.open(fx.opts());
  fill(*s, 1, 1);
  s.reset();
  CHECK(fx.count(event_kind::checkpoint_written) == 1);
}

}  // namespace tandem::journal::test
