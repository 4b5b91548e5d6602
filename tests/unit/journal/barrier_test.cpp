// message_store::fence_barrier on the journal (message_store.h, BARRIER; issue 12,
// bench/results/promise.md "Long run 3" finding 4): a barrier completes only after the
// appends queued before it and after a confirm that ran once they were durable; a confirm
// that says a newer master exists fails it and the journal.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "journal/errc.h"
#include "tests/unit/journal/store_fixture.h"

namespace tandem::journal::test {
namespace {

// Records the order in which completions ran and what the store had synced and confirmed
// when each ran.
struct order_log {
  std::mutex mu;
  std::vector<std::string> done;
  std::vector<std::uint64_t> confirms_seen;
  journal::completion entry(std::string name, const std::atomic<std::uint64_t>& confirms, completion_tracker& t) {
    return [this, name = std::move(name), &confirms, cb = t.next()](std::error_code ec, std::uint64_t n) {
      {
        std::lock_guard lk(mu);
        done.push_back(name);
        confirms_seen.push_back(confirms.load());
      }
      cb(ec, n);
    };
  }
};

}  // namespace

TEST_CASE("issue 12: a fence barrier completes after the appends before it, confirmed after their fdatasync") {
  fixture fx;
  fault_file_system ffs(1);
  std::atomic<std::uint64_t> confirms{0};
  std::atomic<std::uint64_t> syncs_at_confirm{0};
  auto o = fx.opts();
  o.confirm = [&]() -> std::error_code {
    syncs_at_confirm = ffs.count(op::sync);
    ++confirms;
    return {};
  };
  auto s = fx.open_on(ffs, o);
  const auto confirms_at_open = confirms.load();
  completion_tracker t;
  order_log log;
  ffs.hold_syncs();
  s->append(make_message(1, {"q"}), log.entry("m1", confirms, t));
  REQUIRE(ffs.wait_for_held_sync());  // the writer is inside m1's group commit
  s->append(make_message(2, {"q"}), log.entry("m2", confirms, t));
  s->fence_barrier(log.entry("b1", confirms, t));
  s->fence_barrier(log.entry("b2", confirms, t));
  const auto syncs_before_release = ffs.count(op::sync);
  CHECK(t.completed() == 0);  // nothing is durable yet: not even the barriers complete
  ffs.release_syncs();
  REQUIRE(t.wait_all());
  auto outcomes = t.outcomes();
  for (const auto& r : outcomes) CHECK(!r.ec);
  CHECK(outcomes[2].lsn == 0);  // a barrier writes no record
  REQUIRE(log.done == std::vector<std::string>{"m1", "m2", "b1", "b2"});
  // m2 and both barriers were queued while m1's group was in its fdatasync: they went as the
  // next group, one write, one fdatasync, ONE confirm after it for all three.
  CHECK(confirms.load() - confirms_at_open == 2);
  CHECK(log.confirms_seen[2] == confirms.load());
  CHECK(syncs_at_confirm.load() > syncs_before_release);
}

TEST_CASE("issue 12: a fence barrier alone still asks the confirm, on the writer thread") {
  fixture fx;
  std::atomic<std::uint64_t> confirms{0};
  std::atomic<bool> on_caller{false};
  std::atomic<bool> watching{false};
  const auto caller = std::this_thread::get_id();
  auto o = fx.opts();
  o.confirm = [&]() -> std::error_code {
    ++confirms;
    if (watching && std::this_thread::get_id() == caller) on_caller = true;
    return {};
  };
  auto s = fx.open(o);
  REQUIRE(!append_wait(*s, make_message(1, {"q"})).ec);
  const auto before = confirms.load();
  completion_tracker t;
  watching = true;  // open confirmed on this thread; the barrier must not
  s->fence_barrier(t.slot(0));
  REQUIRE(t.wait_all());
  CHECK(!t.outcomes()[0].ec);
  CHECK(confirms.load() == before + 1);
  CHECK(!on_caller.load());
}

TEST_CASE("issue 12: a fence barrier fails, and fails the journal, when the confirm says a newer master exists") {
  fixture fx;
  std::atomic<bool> deposed{false};
  auto o = fx.opts();
  o.confirm = [&]() -> std::error_code { return deposed ? std::error_code(errc::fenced) : std::error_code{}; };
  auto s = fx.open(o);
  REQUIRE(!append_wait(*s, make_message(1, {"q"})).ec);
  deposed = true;
  completion_tracker t;
  s->fence_barrier(t.slot(0));
  REQUIRE(t.wait_all());
  CHECK(t.outcomes()[0].ec == errc::fenced);
  CHECK(s->failed());
  auto failed = fx.log.of(event_kind::journal_failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].reason.find("barrier") != std::string::npos);
  // Failed for good: later barriers and appends fail at once, even with the fence back.
  deposed = false;
  completion_tracker later;
  s->fence_barrier(later.slot(0));
  REQUIRE(later.wait_all());
  CHECK(later.outcomes()[0].ec == errc::journal_failed);
  CHECK(append_wait(*s, make_message(2, {"q"})).ec == errc::journal_failed);
}

TEST_CASE("issue 12: a fence barrier after a closed store completes with closed") {
  fixture fx;
  auto s = fx.open(fx.opts());
  REQUIRE(!s->close());
  completion_tracker t;
  s->fence_barrier(t.slot(0));
  REQUIRE(t.wait_all());
  CHECK(t.outcomes()[0].ec == errc::closed);
}

}  // namespace tandem::journal::test
