// read_async (journal/detail/body_reader.cpp): a body not in the cache is read on the
// store's reader thread, so the owner thread never waits for the disk (issue 17, finding 8).
#include <doctest/doctest.h>

#include <chrono>
#include <set>

#include "journal/errc.h"
#include "journal/store.h"
#include "store_fixture.h"

using namespace tandem::journal;
using namespace tandem::journal::test;
using namespace std::chrono_literals;

namespace {

// A store on `disk` with `n` messages on /queue/a (msg_seq 1..n), reopened so that none of
// them is in the body cache. Completions go to `owner`, which the test runs by hand.
std::unique_ptr<store> cold_store(fixture& fx, fault_file_system& disk, owner_queue& owner, int n) {
  {
    auto s = fx.open_on(disk, fx.opts());
    for (int i = 1; i <= n; ++i) REQUIRE(!append_wait(*s, make_message(static_cast<std::uint64_t>(i), {"/queue/a"})).ec);
    REQUIRE(!s->close());
  }
  auto o = fx.opts();
  o.fs = &disk;
  o.post = owner.poster();
  return tandem::test::open_ok("/store", std::move(o));
}

using read_result = result<std::shared_ptr<const message>>;

}  // namespace

TEST_CASE("read_async returns at once while the disk hangs, and answers once the read is done") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = cold_store(fx, disk, owner, 3);
  disk.slow_reads(5s);
  std::optional<read_result> got;
  const auto t0 = std::chrono::steady_clock::now();
  s->read_async("/queue/a", 2, [&](read_result r) { got = std::move(r); });
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);  // the owner thread did not wait 5 s
  REQUIRE(disk.wait_for_slow_read(2s));
  owner.run_pending();
  CHECK(!got);  // not before the read is done
  disk.slow_reads(0ms);
  REQUIRE(owner.run_until([&] { return got.has_value(); }));
  REQUIRE(*got);
  CHECK(got->value()->message_id == "m-2");
  CHECK(got->value()->body == make_message(2, {"/queue/a"}).body);
  CHECK(s->cached("/queue/a", 2));
}

TEST_CASE("read_async reads ahead the target's next messages into the cache") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = cold_store(fx, disk, owner, 10);
  CHECK(!s->cached("/queue/a", 1));
  bool done = false;
  s->read_async("/queue/a", 1, [&](read_result r) {
    CHECK(r);
    done = true;
  });
  REQUIRE(owner.run_until([&] { return done; }));
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    CAPTURE(seq);
    auto m = s->cached("/queue/a", seq);
    REQUIRE(m);
    CHECK(m->message_id == "m-" + std::to_string(seq));
  }
}

// A timer expiry with many due schedule entries, or several browsers, ask for messages that
// one job reads ahead anyway: each record is read once, the later asks wait for that job.
TEST_CASE("read_async reads a message once however many ask while it is being read") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = cold_store(fx, disk, owner, 10);
  const auto reads = disk.count(op::read);
  int answered = 0;
  for (std::uint64_t seq = 1; seq <= 10; ++seq)
    s->read_async("/queue/a", seq, [&answered, seq](read_result r) {
      REQUIRE(r);
      CHECK(r.value()->message_id == "m-" + std::to_string(seq));
      ++answered;
    });
  REQUIRE(owner.run_until([&] { return answered == 10; }));
  CHECK(disk.count(op::read) - reads == 10);  // not 10 + 9 + ... + 1 with overlapping read-ahead
}

TEST_CASE("a message the shared job could not read is read again for those who waited for it") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = cold_store(fx, disk, owner, 3);
  disk.fail(op::read, 2, std::make_error_code(std::errc::io_error));  // the job's read of msg 2 only
  std::optional<read_result> first, second;
  s->read_async("/queue/a", 1, [&](read_result r) { first = std::move(r); });
  s->read_async("/queue/a", 2, [&](read_result r) { second = std::move(r); });
  REQUIRE(owner.run_until([&] { return first.has_value() && second.has_value(); }));
  REQUIRE(*first);
  REQUIRE(*second);
  CHECK(second->value()->message_id == "m-2");
}

TEST_CASE("read_async answers not_found for a message that is not live, and closed after close") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = cold_store(fx, disk, owner, 2);
  std::optional<read_result> missing, after_close;
  s->read_async("/queue/a", 99, [&](read_result r) { missing = std::move(r); });
  REQUIRE(owner.run_until([&] { return missing.has_value(); }));
  REQUIRE(!*missing);
  CHECK(missing->error() == errc::not_found);
  REQUIRE(!s->close());
  s->read_async("/queue/a", 1, [&](read_result r) { after_close = std::move(r); });
  REQUIRE(owner.run_until([&] { return after_close.has_value(); }));
  REQUIRE(!*after_close);
  CHECK(after_close->error() == errc::closed);
}

TEST_CASE("a read that fails on the reader thread reports the error") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = cold_store(fx, disk, owner, 1);
  disk.fail(op::read, 1, std::make_error_code(std::errc::io_error), true);
  std::optional<read_result> got;
  s->read_async("/queue/a", 1, [&](read_result r) { got = std::move(r); });
  REQUIRE(owner.run_until([&] { return got.has_value(); }));
  REQUIRE(!*got);
  CHECK(got->error() == std::make_error_code(std::errc::io_error));
  disk.clear_failures();
}

namespace {

// A store on `disk` whose first segment is sparse: of /queue/a's 1 KiB messages 1..n, 1..10
// are removed except those in `keep` (11.. stay). Reopened with no body cache, with
// compaction reading on the reader thread and completions going to `owner`.
std::unique_ptr<store> sparse_cold_store(fixture& fx, fault_file_system& disk, owner_queue& owner, int n,
                                         const std::set<std::uint64_t>& keep) {
  const std::uint64_t seg = 16 * 1024;
  {
    auto o = fx.opts(seg);
    o.auto_compact_bytes = 0;  // the segment stays sparse for the test to compact
    auto s = fx.open_on(disk, std::move(o));
    for (int i = 1; i <= n; ++i)
      REQUIRE(!append_wait(*s, make_message(static_cast<std::uint64_t>(i), {"/queue/a"}, 1024)).ec);
    for (std::uint64_t seq = 1; seq <= 10; ++seq)
      if (!keep.contains(seq)) REQUIRE(!append_wait(*s, message_remove{"/queue/a", seq}).ec);
    REQUIRE(!s->close());
  }
  auto o = fx.opts(seg);
  o.fs = &disk;
  o.post = owner.poster();
  o.auto_compact_bytes = 0;  // steps only when the test asks
  o.compaction_reads_on_reader_thread = true;
  // No body cache: recovery's replay may leave bodies there (how much depends on where the
  // last checkpoint fell), and compaction must not need it (it keeps what it read itself).
  o.body_cache_bytes = 0;
  return tandem::test::open_ok("/store", std::move(o));
}

}  // namespace

TEST_CASE("compaction reads on the reader thread: compact_step returns while the disk hangs, copies after") {
  // Issue 17, finding 8: compaction read the bodies it copies with a pread on the owner
  // thread (the broker's io thread), so a hung mount stalled every client and /health.
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = sparse_cold_store(fx, disk, owner, 40, {3, 7});
  REQUIRE(!s->cached("/queue/a", 3));
  disk.slow_reads(5s);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(s->compact_step(1 << 20));
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);  // the owner thread did not wait 5 s
  REQUIRE(disk.wait_for_slow_read(2s));
  CHECK(s->compact_step(1 << 20));  // a second step waits for the first one's reads
  owner.run_pending();
  CHECK(fx.count(event_kind::compaction_done) == 0);  // nothing copied before the bodies came
  disk.slow_reads(0ms);
  // The copies are appended once the bodies are in, and relocated once durable.
  auto segment_of = [&](std::uint64_t seq) { return s->index().messages("/queue/a")->at(seq).where.segment; };
  REQUIRE(owner.run_until([&] { return segment_of(3) > 1 && segment_of(7) > 1; }));
  CHECK(fx.count(event_kind::compaction_done) == 1);
  // Each live message was copied to the head and reads back whole.
  for (std::uint64_t seq : {3, 7}) {
    CAPTURE(seq);
    auto m = s->read("/queue/a", seq);
    REQUIRE(m);
    CHECK(m.value()->body == make_message(seq, {"/queue/a"}, 1024).body);
  }
  CHECK(fx.count(event_kind::corruption_found) == 0);
}

TEST_CASE("compaction reads on the reader thread: a failed read leaves the segment in place") {
  fixture fx;
  fault_file_system disk;
  owner_queue owner;
  auto s = sparse_cold_store(fx, disk, owner, 40, {5});
  disk.fail(op::read, 1, std::make_error_code(std::errc::io_error), true);
  CHECK(s->compact_step(1 << 20));
  // The step ends (each of the segment's live messages reported unreadable) without a copy.
  REQUIRE(owner.run_until([&] { return fx.count(event_kind::compaction_done) == 1; }));
  disk.clear_failures();
  CHECK(fx.count(event_kind::corruption_found) >= 1);
  for (const auto& e : fx.log.of(event_kind::corruption_found))
    CHECK(e.reason == "compaction cannot read a live message: Input/output error");
  owner.run_pending();
  CHECK(s->index().messages("/queue/a")->at(5).where.segment == 1);  // not moved, not lost
  CHECK_FALSE(s->compact_step(1 << 20));  // and never picked again: nothing else to compact
  auto m = s->read("/queue/a", 5);
  REQUIRE(m);
}
