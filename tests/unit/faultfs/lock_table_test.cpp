// lock_table with a hand-driven clock: conflicts, ranges, waiters, leases and revocation.
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <optional>

#include <doctest/doctest.h>

#include "tools/faultfs/lock_table.h"

using namespace std::chrono_literals;
using tandem::faultfs::file_key;
using tandem::faultfs::lock_table;
using tandem::faultfs::range_lock;

namespace {

const file_key file{1, 42};
const lock_table::clock::time_point t0{};

range_lock lock(std::uint64_t owner, short type, std::uint64_t start = 0, std::uint64_t end = UINT64_MAX) {
  range_lock r;
  r.owner = owner;
  r.handle = owner * 10;  // one handle per owner (OFD locks: owner == open file)
  r.type = type;
  r.start = start;
  r.end = end;
  r.pid = static_cast<pid_t>(owner);
  return r;
}

// set() without waiting; the answer.
int try_set(lock_table& t, const range_lock& r, lock_table::clock::time_point now = t0) {
  std::optional<int> answer;
  t.set(file, r, false, nullptr, [&](int e) { answer = e; }, now);
  REQUIRE(answer);
  return *answer;
}

}  // namespace

TEST_CASE("two owners never hold conflicting locks, readers share") {
  lock_table t;
  CHECK(try_set(t, lock(1, F_WRLCK)) == 0);
  CHECK(try_set(t, lock(2, F_WRLCK)) == EAGAIN);
  CHECK(try_set(t, lock(2, F_RDLCK)) == EAGAIN);
  auto holder = t.test(file, lock(2, F_RDLCK), t0);
  REQUIRE(holder);
  CHECK(holder->owner == 1);
  CHECK(holder->type == F_WRLCK);
  CHECK_FALSE(t.test(file, lock(1, F_WRLCK), t0));  // our own lock is no conflict
  CHECK(try_set(t, lock(1, F_UNLCK)) == 0);
  CHECK(try_set(t, lock(2, F_RDLCK)) == 0);
  CHECK(try_set(t, lock(3, F_RDLCK)) == 0);
  CHECK(try_set(t, lock(4, F_WRLCK)) == EAGAIN);
}

TEST_CASE("an owner relocking its own range changes the type without conflicting with itself") {
  lock_table t;
  CHECK(try_set(t, lock(1, F_RDLCK)) == 0);
  CHECK(try_set(t, lock(1, F_WRLCK)) == 0);  // upgrade
  CHECK(try_set(t, lock(2, F_RDLCK)) == EAGAIN);
  CHECK(try_set(t, lock(1, F_RDLCK)) == 0);  // downgrade
  CHECK(try_set(t, lock(2, F_RDLCK)) == 0);
}

TEST_CASE("unlocking the middle of a range splits it") {
  lock_table t;
  CHECK(try_set(t, lock(1, F_WRLCK, 0, 99)) == 0);
  CHECK(try_set(t, lock(1, F_UNLCK, 40, 59)) == 0);
  CHECK(try_set(t, lock(2, F_WRLCK, 40, 59)) == 0);
  CHECK(try_set(t, lock(2, F_WRLCK, 30, 40)) == EAGAIN);
  CHECK(try_set(t, lock(2, F_WRLCK, 59, 60)) == EAGAIN);
  CHECK(try_set(t, lock(3, F_WRLCK, 100, 200)) == 0);
}

TEST_CASE("a waiter is answered when the holder unlocks, closes, or its process closes the file") {
  lock_table t;
  std::optional<int> answer;
  auto wait = [&](const range_lock& r) {
    answer.reset();
    t.set(file, r, true, &answer, [&](int e) { answer = e; }, t0);
  };
  CHECK(try_set(t, lock(1, F_WRLCK)) == 0);
  wait(lock(2, F_WRLCK));
  CHECK_FALSE(answer);
  CHECK(try_set(t, lock(1, F_UNLCK)) == 0);
  CHECK(answer == 0);

  wait(lock(3, F_WRLCK));
  CHECK_FALSE(answer);
  t.release_handle(20, t0);  // owner 2's open file closed
  CHECK(answer == 0);

  wait(lock(4, F_WRLCK));
  CHECK_FALSE(answer);
  t.release_owner(file, 3, t0);  // a close() by owner 3's process (POSIX semantics)
  CHECK(answer == 0);
}

TEST_CASE("an interrupted waiter is answered EINTR, also when interrupted before it was queued") {
  lock_table t;
  CHECK(try_set(t, lock(1, F_WRLCK)) == 0);
  std::optional<int> a, b;
  t.set(file, lock(2, F_WRLCK), true, &a, [&](int e) { a = e; }, t0);
  CHECK_FALSE(a);
  t.cancel(&a);
  CHECK(a == EINTR);
  t.cancel(&a);  // twice: nothing left to answer
  t.set(file, lock(3, F_WRLCK), true, &b, [&](int e) { b = e; }, t0, [] { return true; });
  CHECK(b == EINTR);
  CHECK(try_set(t, lock(1, F_UNLCK)) == 0);
  CHECK(t.status(t0).empty());
}

TEST_CASE("without a lease a silent holder keeps its lock for ever") {
  lock_table t;
  CHECK(try_set(t, lock(1, F_WRLCK), t0) == 0);
  CHECK(try_set(t, lock(2, F_WRLCK), t0 + 24h) == EAGAIN);
  CHECK_FALSE(t.revoked(10));
}

TEST_CASE("a holder silent for longer than the lease is revoked when someone else asks, and its handle fails") {
  lock_table t(500ms);
  CHECK(try_set(t, lock(1, F_WRLCK), t0) == 0);
  t.renew(10, t0 + 400ms);
  CHECK(try_set(t, lock(2, F_WRLCK), t0 + 800ms) == EAGAIN);  // renewed 400 ms ago: still held
  CHECK_FALSE(t.revoked(10));
  // Expired but nobody asked: a courteous server keeps it.
  auto lines = t.status(t0 + 1000ms);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].expired);
  CHECK(try_set(t, lock(2, F_WRLCK), t0 + 1000ms) == 0);
  CHECK(t.revoked(10));
  CHECK(t.revocations() == 1);
  t.release_handle(10, t0 + 1100ms);  // the old holder finally closes: its handle is forgotten
  CHECK_FALSE(t.revoked(10));
}

TEST_CASE("tick grants a waiter once the holder's lease has run out") {
  lock_table t(100ms);
  CHECK(try_set(t, lock(1, F_WRLCK), t0) == 0);
  std::optional<int> answer;
  t.set(file, lock(2, F_WRLCK), true, &answer, [&](int e) { answer = e; }, t0 + 10ms);
  t.tick(t0 + 90ms);
  CHECK_FALSE(answer);
  t.tick(t0 + 150ms);
  CHECK(answer == 0);
  CHECK(t.revoked(10));
}

TEST_CASE("restarting the leases after a freeze keeps every holder") {
  lock_table t(100ms);
  CHECK(try_set(t, lock(1, F_WRLCK), t0) == 0);
  t.restart_leases(t0 + 5s);
  CHECK(try_set(t, lock(2, F_WRLCK), t0 + 5s + 50ms) == EAGAIN);
}

TEST_CASE("a power loss forgets every lock and answers every waiter") {
  lock_table t;
  CHECK(try_set(t, lock(1, F_WRLCK)) == 0);
  std::optional<int> answer;
  t.set(file, lock(2, F_WRLCK), true, &answer, [&](int e) { answer = e; }, t0);
  t.clear(EIO);
  CHECK(answer == EIO);
  CHECK(try_set(t, lock(3, F_WRLCK)) == 0);
}
