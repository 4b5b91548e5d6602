// holder_process: telling a dead lock holder from a live one on the same host (issues 12/13).
// The processes watched are real children of this test (fork), killed and reaped as each
// case needs; no case asserts a speed, only what was proven.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "lockmgr/holder_process.h"
#include "tests/support/wait.h"

namespace {

using namespace std::chrono_literals;
namespace lm = tandem::lockmgr;

// A child that sleeps until killed; the destructor kills and reaps it if the case did not.
struct sleeper {
  pid_t pid = -1;
  bool reaped = false;
  sleeper() {
    pid = ::fork();
    if (pid == 0) {
      for (;;) ::pause();
    }
    REQUIRE(pid > 0);
  }
  ~sleeper() {
    if (!reaped) {
      ::kill(pid, SIGKILL);
      reap();
    }
  }
  void reap() {
    int st;
    ::waitpid(pid, &st, 0);
    reaped = true;
  }
};

// The holder record a broker with `pid` on this host would have written.
lm::holder_record record_of(pid_t pid, const lm::process_identity& self) {
  lm::holder_record r;
  r.host = self.host;
  r.boot_id = self.boot_id;
  r.pid_ns = self.pid_ns;
  r.pid = pid;
  auto start = [&]() -> std::uint64_t {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    REQUIRE(f);
    char buf[1024] = {};
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    auto v = lm::parse_start_ticks(std::string_view(buf, n));
    REQUIRE(v);
    return *v;
  }();
  r.pid_start = start;
  return r;
}

const auto go_on = [] { return true; };

}  // namespace

TEST_CASE("the start time is field 22, counted after the last parenthesis of the command name") {
  // A command name with spaces and ')' must not shift the fields.
  std::string line = "4242 (evil) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 10";
  auto v = lm::parse_start_ticks(line);
  REQUIRE(v);
  CHECK(*v == 987654);
  CHECK_FALSE(lm::parse_start_ticks("4242 (x) S 1 2 3"));
  CHECK_FALSE(lm::parse_start_ticks("no parenthesis at all"));
  CHECK_FALSE(lm::parse_start_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12x 5"));
}

TEST_CASE("this process names its host, boot, pid namespace and start time") {
  auto self = lm::this_process();
  CHECK_FALSE(self.host.empty());
  CHECK(self.boot_id.size() == 36);  // a UUID
  CHECK(self.pid_ns.rfind("pid:[", 0) == 0);
  CHECK(self.pid == ::getpid());
  CHECK(self.start_ticks > 0);
}

TEST_CASE("a live holder on this host is seen alive until the limit") {
  auto self = lm::this_process();
  sleeper child;
  auto r = record_of(child.pid, self);
  CHECK(lm::why_unobservable(r, self).empty());
  auto seen = lm::await_holder_exit(r, self, 50ms, go_on);
  CHECK(seen.state == lm::holder_state::alive);
  // Our own process is alive too, and a zero limit just looks.
  auto me = record_of(::getpid(), self);
  CHECK(lm::await_holder_exit(me, self, 0ms, go_on).state == lm::holder_state::alive);
}

TEST_CASE("a holder killed and reaped is gone: no process has its pid") {
  auto self = lm::this_process();
  sleeper child;
  auto r = record_of(child.pid, self);
  ::kill(child.pid, SIGKILL);
  child.reap();
  auto seen = lm::await_holder_exit(r, self, 10s, go_on);
  MESSAGE(seen.why);
  CHECK(seen.state == lm::holder_state::gone);
}

TEST_CASE("a holder killed but not yet reaped (a zombie) is gone: its files are closed") {
  auto self = lm::this_process();
  sleeper child;
  auto r = record_of(child.pid, self);
  ::kill(child.pid, SIGKILL);
  // Not reaped: wait until the kernel reports it as a zombie, then look.
  REQUIRE(tandem::test::wait_until(
      [&] {
        siginfo_t info{};
        return ::waitid(P_PID, static_cast<id_t>(child.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child.pid;
      },
      10s));
  auto seen = lm::await_holder_exit(r, self, 10s, go_on);
  MESSAGE(seen.why);
  CHECK(seen.state == lm::holder_state::gone);
}

TEST_CASE("a holder that dies during the wait ends the wait as gone") {
  auto self = lm::this_process();
  sleeper child;
  auto r = record_of(child.pid, self);
  std::thread killer([&] {
    std::this_thread::sleep_for(50ms);  // the event under test, not a wait for a condition
    ::kill(child.pid, SIGKILL);
  });
  auto seen = lm::await_holder_exit(r, self, 60s, go_on);
  killer.join();
  CHECK(seen.state == lm::holder_state::gone);
}

TEST_CASE("a reused pid (another start time) means the holder is gone") {
  auto self = lm::this_process();
  sleeper child;
  auto r = record_of(child.pid, self);
  r.pid_start += 1;  // the record's process started at another time than the one with this pid now
  auto seen = lm::await_holder_exit(r, self, 10s, go_on);
  MESSAGE(seen.why);
  CHECK(seen.state == lm::holder_state::gone);
}

TEST_CASE("a holder on another host, boot or pid namespace, or without identity, proves nothing") {
  auto self = lm::this_process();
  sleeper child;
  const auto good = record_of(child.pid, self);
  ::kill(child.pid, SIGKILL);
  child.reap();  // dead: only the record decides whether we may say so
  auto check_unobservable = [&](lm::holder_record r, const char* what) {
    INFO(what);
    CHECK_FALSE(lm::why_unobservable(r, self).empty());
    CHECK(lm::await_holder_exit(r, self, 0ms, go_on).state == lm::holder_state::unobservable);
  };
  auto r = good;
  r.host = self.host + "-other";
  check_unobservable(r, "another host name");
  r = good;
  r.boot_id = "00000000-0000-0000-0000-000000000000";
  check_unobservable(r, "another boot");
  r = good;
  r.pid_ns = "pid:[1]";
  check_unobservable(r, "another pid namespace");
  r = good;
  r.pid_start = 0;
  check_unobservable(r, "an older writer (no start time)");
  r = good;
  r.boot_id.clear();
  check_unobservable(r, "an older writer (no boot id)");
  CHECK(lm::await_holder_exit(good, self, 0ms, go_on).state == lm::holder_state::gone);
}

TEST_CASE("holder.json keeps the process identity, and a record without it reads as unknown") {
  lm::holder_record r;
  r.broker_name = "b";
  r.host = "h";
  r.pid = 7;
  r.epoch = 3;
  r.acquired_at = "2026-12-06T00:00:00.000Z";
  r.boot_id = "0f0e0d0c-0000-4000-8000-000000000001";
  r.pid_ns = "pid:[4026531836]";
  r.pid_start = 123456;
  auto back = lm::parse_holder(lm::encode_holder(r));
  REQUIRE(back);
  CHECK(back.value() == r);
  auto old = lm::to_json(r);
  old.erase("boot_id");
  old.erase("pid_ns");
  old.erase("pid_start");
  auto older = lm::holder_from_json(old);
  REQUIRE(older);
  CHECK(older.value().boot_id.empty());
  CHECK(older.value().pid_start == 0);
  auto bad = lm::to_json(r);
  bad["pid_start"] = "soon";
  CHECK_FALSE(lm::holder_from_json(bad));
}
