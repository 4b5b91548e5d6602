// lock_probe: one lock_manager in its own process, driven by the lockmgr tests.
//
// The election is between processes, so its tests run real processes (never two managers in
// one process: OFD locks would still exclude, but a POSIX-lock regression would hide). Every
// event is one line on stdout, flushed, so a test can wait for it with a deadline:
//   waiting                         the manager is open, acquire() is about to block
//   acquired epoch=E waited_ms=W clean=0|1 fs=NAME delay_ms=D takeover_delay_ms=T
//            lock_elsewhere=0|1 predecessor=gone|alive|unobservable|fenced
//   error <message>                 acquire() failed (exit 2)
//   cancelled                       acquire() returned errc::cancelled (exit 3)
//   lost <reason>: <message>        on_lost ran (hold mode then exits 75)
//   fence ok | fence lost <message> answer to a "fence" command, or the fence loop's end
//   confirm ok | confirm lost <m>   answer to a "confirm" command (lock_manager::confirm)
//   released ok | released <error>
//   violation <what>                an invariant broke (exit 1)
//   done rounds=N last_epoch=E      race mode finished
//
// Usage: lock_probe MODE DIR [options]
//   hold        acquire, start the watchdog, then obey stdin lines: "fence", "confirm", "release"
//               or "release-unclean" (lock_manager::release_unclean) (then exit 0), "checks"
//               (answers "checks N": full mastership checks so far); EOF on stdin exits without releasing (like a crash).
//   race        --rounds N --hold-us U --marker PATH --counter PATH: acquire, check and bump
//               the counter under the lock, release; N times.
//   confirm-bench  --rounds N: acquire, time N calls of confirm(), print
//               "confirm_bench n=N mean_us=.. p50_us=.. p99_us=.. max_us=..", release.
//   fence-loop  acquire, start the watchdog, then call fence_check() in a tight loop (a
//               journal writer); if --marker PATH exists before a call that answers ok,
//               print "violation" (the test creates it after changing the epoch).
// Options: --interval MS (check interval), --poll MS (polling mode), --delay MS (takeover
// delay), --eio-file PATH (inject EIO into the lock-descriptor check while PATH exists),
// --no-verify (skip the exclusion probe; only to demonstrate a broken file system),
// --no-watchdog (fence-loop: do not start the watchdog), --first-check-at-fence
// (options::check_before_acquire_returns = false), --fenced-file PATH (options::
// predecessor_fenced: true for the epoch that PATH holds, once PATH exists; a stand-in for
// the broker's fence hook).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "lockmgr/lock_manager.h"

namespace {

using namespace tandem;
using namespace std::chrono;

lockmgr::lock_manager* g_manager = nullptr;

extern "C" void on_sigterm(int) {
  if (g_manager) g_manager->cancel();
}

void say(const std::string& line) {
  std::string out = line + "\n";
  // write(2): one atomic line, no stdio buffering to lose at _exit.
  ssize_t ignored = ::write(1, out.data(), out.size());
  (void)ignored;
}

bool exists(const std::string& path) {
  struct stat st;
  return !path.empty() && ::stat(path.c_str(), &st) == 0;
}

struct args {
  std::string mode, dir, marker, counter, eio_file, fenced_file;
  int rounds = 10;
  int hold_us = 2000;
  int interval_ms = 1000;
  int poll_ms = 0;
  int delay_ms = -1;
  bool verify = true;
  bool watchdog = true;
  bool check_before_acquire_returns = true;
};

args parse(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: lock_probe MODE DIR [options]\n");
    std::exit(64);
  }
  args a;
  a.mode = argv[1];
  a.dir = argv[2];
  for (int i = 3; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "lock_probe: %s needs a value\n", k.c_str());
        std::exit(64);
      }
      return argv[++i];
    };
    if (k == "--rounds") a.rounds = std::stoi(value());
    else if (k == "--hold-us") a.hold_us = std::stoi(value());
    else if (k == "--marker") a.marker = value();
    else if (k == "--counter") a.counter = value();
    else if (k == "--interval") a.interval_ms = std::stoi(value());
    else if (k == "--poll") a.poll_ms = std::stoi(value());
    else if (k == "--delay") a.delay_ms = std::stoi(value());
    else if (k == "--eio-file") a.eio_file = value();
    else if (k == "--fenced-file") a.fenced_file = value();
    else if (k == "--no-verify") a.verify = false;
    else if (k == "--no-watchdog") a.watchdog = false;
    else if (k == "--first-check-at-fence") a.check_before_acquire_returns = false;
    else {
      std::fprintf(stderr, "lock_probe: unknown option %s\n", k.c_str());
      std::exit(64);
    }
  }
  return a;
}

std::string describe(const lockmgr::acquisition& a) {
  return "acquired epoch=" + std::to_string(a.epoch) + " waited_ms=" + std::to_string(a.waited.count()) +
         " clean=" + (a.previous_released_cleanly ? "1" : "0") + " fs=" + a.fs_kind +
         " delay_ms=" + std::to_string(a.takeover.delay.count()) +
         " takeover_delay_ms=" + std::to_string(a.takeover_delay.count()) +
         " lock_elsewhere=" + (a.predecessor_lock_elsewhere ? "1" : "0") +
         " predecessor=" + lockmgr::to_string(a.predecessor);
}

int acquire_or_exit(lockmgr::lock_manager& m, lockmgr::acquisition& out) {
  say("waiting");
  auto r = m.acquire();
  if (!r) {
    if (r.error() == lockmgr::errc::cancelled) {
      say("cancelled");
      return 3;
    }
    say("error " + r.error().message());
    return 2;
  }
  out = r.value();
  say(describe(out));
  return 0;
}

int run_hold(lockmgr::lock_manager& m) {
  lockmgr::acquisition a;
  if (int rc = acquire_or_exit(m, a)) return rc;
  m.start_watchdog([](const std::string& reason) {
    say("lost " + reason);
    std::_Exit(lockmgr::exit_code_deposed);
  });
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "fence") {
      auto ec = m.fence_check();
      say(ec ? "fence lost " + ec.message() : "fence ok");
    } else if (line == "confirm") {
      auto ec = m.confirm();  // a loss runs on_lost above first (prints "lost", exits 75)
      say(ec ? "confirm lost " + ec.message() : "confirm ok");
    } else if (line == "checks") {
      say("checks " + std::to_string(m.stats().checks.load()));
    } else if (line == "release") {
      auto ec = m.release();
      say(ec ? "released " + ec.message() : "released ok");
      return ec ? 1 : 0;
    } else if (line == "release-unclean") {
      auto ec = m.release_unclean();
      say(ec ? "released " + ec.message() : "released ok");
      return ec ? 1 : 0;
    }
  }
  std::_Exit(0);  // stdin closed: drop everything, as a crash would
}

// The counter file: "<count> <epoch of the last writer>\n".
bool read_counter(const std::string& path, long& count, std::uint64_t& epoch) {
  std::ifstream in(path);
  count = 0;
  epoch = 0;
  if (!in) return true;  // first round ever
  return static_cast<bool>(in >> count >> epoch);
}

void write_counter(const std::string& path, long count, std::uint64_t epoch) {
  std::ofstream out(path, std::ios::trunc);
  out << count << ' ' << epoch << '\n';
}

int run_race(lockmgr::lock_manager& m, const args& opt) {
  long my_last = -1;
  std::uint64_t my_last_epoch = 0;
  for (int round = 0; round < opt.rounds; ++round) {
    auto r = m.acquire();
    if (!r) {
      say("error " + r.error().message());
      return 2;
    }
    const auto epoch = r.value().epoch;
    if (epoch <= my_last_epoch) {
      say("violation epoch " + std::to_string(epoch) + " after " + std::to_string(my_last_epoch));
      return 1;
    }
    // O_EXCL creation fails if another process believes it holds the lock too.
    int fd = ::open(opt.marker.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      say("violation two holders: marker exists (" + std::string(std::strerror(errno)) + ")");
      return 1;
    }
    ::close(fd);
    long count;
    std::uint64_t writer_epoch;
    if (!read_counter(opt.counter, count, writer_epoch)) {
      say("violation unreadable counter");
      return 1;
    }
    // Others may have added since we last held it, but nobody may have lost our update,
    // and every writer before us had a smaller epoch.
    if (count < my_last || writer_epoch >= epoch) {
      say("violation counter " + std::to_string(count) + " (ours was " + std::to_string(my_last) + ") epoch " +
          std::to_string(writer_epoch) + " vs ours " + std::to_string(epoch));
      return 1;
    }
    if (auto ec = m.fence_check()) {
      say("violation fence " + ec.message());
      return 1;
    }
    write_counter(opt.counter, count + 1, epoch);
    std::this_thread::sleep_for(microseconds(opt.hold_us));  // hold the lock a while
    long again;
    std::uint64_t again_epoch;
    if (!read_counter(opt.counter, again, again_epoch) || again != count + 1 || again_epoch != epoch) {
      say("violation counter changed under the lock");
      return 1;
    }
    my_last = count + 1;
    my_last_epoch = epoch;
    ::unlink(opt.marker.c_str());
    if (auto ec = m.release()) {
      say("violation release " + ec.message());
      return 1;
    }
  }
  say("done rounds=" + std::to_string(opt.rounds) + " last_epoch=" + std::to_string(my_last_epoch));
  return 0;
}

int run_fence_loop(lockmgr::lock_manager& m, const args& opt) {
  lockmgr::acquisition a;
  if (int rc = acquire_or_exit(m, a)) return rc;
  // Without the watchdog only fence_check's own synchronous check can notice the loss.
  if (opt.watchdog) m.start_watchdog([](const std::string& reason) { say("lost " + reason); });
  for (;;) {
    bool changed_before = exists(opt.marker);
    auto ec = m.fence_check();
    if (ec) {
      say("fence lost " + ec.message());
      return lockmgr::exit_code_deposed;
    }
    if (changed_before) {
      say("violation fence_check answered ok after the epoch changed");
      return 1;
    }
    std::this_thread::sleep_for(microseconds(200));  // an append's worth of work
  }
}

// The cost of lock_manager::confirm() on this store (docs/failover.md): `rounds` calls,
// mean and percentiles in microseconds. Not a test: a measurement for the docs.
int run_confirm_bench(lockmgr::lock_manager& m, const args& opt) {
  lockmgr::acquisition a;
  if (int rc = acquire_or_exit(m, a)) return rc;
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(opt.rounds));
  for (int i = 0; i < opt.rounds; ++i) {
    auto t0 = steady_clock::now();
    if (auto ec = m.confirm()) {
      say("confirm lost " + ec.message());
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto pct = [&](double p) { return us[static_cast<std::size_t>(p * static_cast<double>(us.size() - 1))]; };
  char line[200];
  std::snprintf(line, sizeof line, "confirm_bench n=%zu mean_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f", us.size(),
                sum / static_cast<double>(us.size()), pct(0.5), pct(0.99), us.back());
  say(line);
  m.release();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  args opt = parse(argc, argv);
  lockmgr::options o;
  o.dir = opt.dir;
  o.broker_name = "probe-" + std::to_string(::getpid());
  o.client_url = "tcp://127.0.0.1:0";
  o.check_interval = milliseconds(opt.interval_ms);
  if (opt.poll_ms > 0) {
    o.mode = lockmgr::wait_mode::polling;
    o.poll_interval = milliseconds(opt.poll_ms);
  }
  if (opt.delay_ms >= 0) o.takeover_delay = milliseconds(opt.delay_ms);
  o.verify_exclusion = opt.verify;
  o.check_before_acquire_returns = opt.check_before_acquire_returns;
  if (!opt.fenced_file.empty()) {
    o.predecessor_fenced = [path = opt.fenced_file](std::uint64_t epoch) {
      std::uint64_t fenced = 0;
      std::ifstream in(path);
      return in >> fenced && fenced == epoch;
    };
  }
  if (!opt.eio_file.empty()) {
    o.check_fault = [path = opt.eio_file](lockmgr::check_step step) -> std::error_code {
      if (step == lockmgr::check_step::lock_descriptor && exists(path)) return std::make_error_code(std::errc::io_error);
      return {};
    };
  }
  auto m = lockmgr::lock_manager::open(o);
  if (!m) {
    say("error open: " + m.error().message());
    return 2;
  }
  g_manager = m.value().get();
  struct sigaction sa {};
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: see lock_manager.h on cancel() from a handler
  ::sigaction(SIGTERM, &sa, nullptr);

  if (opt.mode == "hold") return run_hold(*m.value());
  if (opt.mode == "race") return run_race(*m.value(), opt);
  if (opt.mode == "fence-loop") return run_fence_loop(*m.value(), opt);
  if (opt.mode == "confirm-bench") return run_confirm_bench(*m.value(), opt);
  std::fprintf(stderr, "lock_probe: unknown mode %s\n", opt.mode.c_str());
  return 64;
}
