// read_async (journal/detail/body_reader.cpp): a body not in the cache is read on the
// store's reader thread, so the owner thread never waits for the disk (issue 17, finding 8).
#include <doctest/doctest.h>

#include <chrono>

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
