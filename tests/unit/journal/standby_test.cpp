// A slave's checkpoint preload (journal/standby.h): it follows the master's checkpoints
// read-only, and a takeover's open uses it only while the file is the one it read.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>
#include <utility>
#include <vector>

#include "journal/detail/preloaded.h"
#include "journal/errc.h"
#include "journal/standby.h"
#include "tests/unit/journal/store_fixture.h"

namespace tandem::journal::test {
namespace {

// A master that leaves a tail behind at close (no close-time checkpoint below 1,000
// records), like one that was killed.
options tail_leaving(fixture& fx) {
  auto o = fx.opts();
  o.close_checkpoint_min_records = 1000;
  o.close_checkpoint_min_bytes = 1ull << 30;
  return o;
}

void append_messages(store& s, std::uint64_t from, std::uint64_t to) {
  for (auto i = from; i <= to; ++i) REQUIRE(!append_wait(s, make_message(i, {"/queue/a"}, 100, "p", i)).ec);
}

// A master that appends each range of messages and checkpoints after it, then runs `then`
// (the slave's turn, more appends) and ends without a close-time checkpoint.
void run_master(fixture& fx, const options& o, std::vector<std::pair<std::uint64_t, std::uint64_t>> checkpointed,
                const std::function<void(store&)>& then = {}) {
  auto master = fx.open(o);
  for (auto [from, to] : checkpointed) {
    append_messages(*master, from, to);
    checkpoint_wait(*master);
  }
  if (then) then(*master);
}

// The store as it is now, copied, to open without a preload as the control.
fsys::path copy_of_store(fixture& fx, const temp_dir& into) {
  const auto to = into.path() / "store";
  fsys::copy(fx.dir.path(), to, fsys::copy_options::recursive);
  return to;
}

fs::file_system& posix_fs() { return tandem::fs::posix_file_system(); }

bool loaded_preloaded(const fixture& fx) {
  auto loaded = fx.log.of(event_kind::checkpoint_loaded);
  return !loaded.empty() && loaded.back().reason == "preloaded";
}

TEST_CASE("a slave's preload follows the master's checkpoints, and the takeover replays only the tail") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  auto master = fx.open(o);
  auto first = slave.refresh();
  REQUIRE(first);
  CHECK(first.value().lsn == 0);  // nothing written yet: nothing to preload

  append_messages(*master, 1, 20);
  checkpoint_wait(*master);
  auto r1 = slave.refresh();
  REQUIRE(r1);
  CHECK(r1.value().loaded_now);
  CHECK(r1.value().live_messages == 20);
  CHECK(r1.value().skipped.empty());
  auto again = slave.refresh();
  REQUIRE(again);
  CHECK(!again.value().loaded_now);  // the same file is not read twice
  CHECK(again.value().lsn == r1.value().lsn);

  append_messages(*master, 21, 30);
  checkpoint_wait(*master);
  auto r2 = slave.refresh();
  REQUIRE(r2);
  CHECK(r2.value().loaded_now);
  CHECK(r2.value().lsn > r1.value().lsn);
  CHECK(r2.value().live_messages == 30);

  append_messages(*master, 31, 35);  // the tail after the last checkpoint
  master.reset();
  temp_dir control_dir{"tandem-standby"};
  const auto control = copy_of_store(fx, control_dir);

  auto preloaded = slave.take();
  REQUIRE(preloaded);
  auto with = o;
  with.preloaded = preloaded;
  recovery_report rep;
  auto taken_over = fx.open(with, &rep);
  CHECK(preloaded->consumed);
  CHECK(loaded_preloaded(fx));
  CHECK(rep.from_checkpoint);
  CHECK(rep.records_replayed < 10);  // the five messages and the checkpoint's own record
  CHECK(taken_over->index().live_messages() == 35);

  recovery_report plain_rep;
  auto plain = fx.open_at(control, o, &plain_rep);  // the same store, read from the files alone
  CHECK(!loaded_preloaded(fx));
  CHECK(plain_rep.records_replayed == rep.records_replayed);
  CHECK(live_set(plain->index()) == live_set(taken_over->index()));
}

TEST_CASE("a preload whose checkpoint file was written anew under its name is not used") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  run_master(fx, o, {{1, 10}, {11, 20}}, [&](store& master) {
    REQUIRE(slave.refresh());
    append_messages(master, 21, 25);
  });
  // The newest file replaced whole (what a rename over it does) by other bytes: here the
  // older checkpoint's, which replay from further back to the same index.
  auto ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 2);
  fsys::copy_file(ckpts.front(), ckpts.back().string() + ".new");
  fsys::rename(ckpts.back().string() + ".new", ckpts.back());

  auto with = o;
  with.preloaded = slave.take();
  REQUIRE(with.preloaded);
  recovery_report rep;
  auto s = fx.open(with, &rep);
  CHECK(!with.preloaded->consumed);
  CHECK(!loaded_preloaded(fx));
  CHECK(rep.from_checkpoint);
  CHECK(rep.records_replayed > 15);  // from the older checkpoint's position
  CHECK(s->index().live_messages() == 25);
}

TEST_CASE("a preload built with other dedup bounds than the open's is not used") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window + 1, o.max_producers);
  run_master(fx, o, {{1, 10}}, [&](store&) { REQUIRE(slave.refresh()); });
  auto with = o;
  with.preloaded = slave.take();
  REQUIRE(with.preloaded);
  auto s = fx.open(with);
  CHECK(!with.preloaded->consumed);
  CHECK(!loaded_preloaded(fx));
  CHECK(s->index().live_messages() == 10);
}

TEST_CASE("the preload skips a damaged newest checkpoint, says which and why, and holds none") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  run_master(fx, o, {{1, 10}});
  auto ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 1);
  {
    std::fstream f(ckpts.back(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(format::checkpoint_header_bytes + 4);
    f.write("garbage", 7);
  }
  auto r = slave.refresh();
  REQUIRE(r);
  CHECK(r.value().lsn == 0);
  CHECK(!r.value().loaded_now);
  CHECK(r.value().skipped.find(ckpts.back().filename().string()) != std::string::npos);
  CHECK(r.value().skipped.find("checksum") != std::string::npos);
  CHECK(slave.take() == nullptr);
  auto again = slave.refresh();  // not read again until a newer one appears
  REQUIRE(again);
  CHECK(again.value().skipped.empty());
}

TEST_CASE("the preload's settled segment starts stand in for reading them at open") {
  fixture fx;
  auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  for (std::uint64_t epoch = 1; epoch <= 3; ++epoch) {
    o.epoch = epoch;
    run_master(fx, o, {{10 * epoch, 10 * epoch + 5}});
  }
  REQUIRE(slave.refresh());
  auto pre = slave.take();
  REQUIRE(pre);
  auto inv = detail::take_inventory(posix_fs(), fx.jdir());
  REQUIRE(inv);
  auto fences = detail::find_fence_points(posix_fs(), fx.jdir(), inv.value().segments, pre->id);
  REQUIRE(fences);
  REQUIRE(fences.value().size() == 3);
  // Every segment but the last, which a master may still be writing.
  REQUIRE(inv.value().segments.size() == 3);
  REQUIRE(pre->segment_starts.size() == 2);
  CHECK(!pre->segment_starts.contains(inv.value().segments.back()));
  std::vector<detail::fence_point> known_fences;
  for (const auto& [seq, start] : pre->segment_starts) {
    CHECK(start.settled);
    if (start.fence) known_fences.push_back(*start.fence);
  }
  REQUIRE(known_fences.size() == 2);
  CHECK(known_fences[0].epoch == fences.value()[0].epoch);
  CHECK(known_fences[1].at.segment == fences.value()[1].at.segment);

  // A start the preload says settled is believed: one claiming a newer epoch fences the
  // open (which shows it was not read again) ...
  o.epoch = 4;
  auto& first = pre->segment_starts.begin()->second;
  first.fence->epoch = 99;
  auto with = o;
  with.preloaded = pre;
  recovery_report rep;
  auto refused = store::open(fx.dir.path(), with, rep);
  REQUIRE(!refused);
  CHECK(refused.error() == errc::fenced);
  // ... and an unsettled one is read from the segment.
  first.settled = false;
  auto s = fx.open(with);
  CHECK(s->index().live_messages() == 18);
}

TEST_CASE("the preload of a directory that is not a store says so") {
  temp_dir empty{"tandem-standby"};
  checkpoint_preloader slave(empty.path(), 1024, 0);
  auto r = slave.refresh();
  REQUIRE(!r);
  CHECK(r.error() == errc::not_a_store);
}

}  // namespace
}  // namespace tandem::journal::test
