// The process half of tandemctl fscheck: each lock check forks children that hold or wait
// for an OFD lock (the same whole-file F_OFD_SETLK/SETLKW the lock manager uses), talks to
// them over pipes, and times what happens with CLOCK_MONOTONIC, which is system-wide, so a
// child's timestamp and the parent's compare directly. Children exit with _exit and never
// return into tandemctl's code.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include <fmt/format.h>

#include "lockmgr/fs_kind.h"
#include "tools/ctl/fscheck.h"

namespace tandem::ctl {

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

double ms_between(std::int64_t from_ns, std::int64_t to_ns) { return static_cast<double>(to_ns - from_ns) / 1e6; }

struct flock whole_file(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  return fl;
}

int ofd_lock(int fd, bool wait) {
  struct flock fl = whole_file(F_WRLCK);
  int rc;
  do rc = ::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
  while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno;
}

// True when another open file holds a conflicting lock (F_OFD_GETLK).
bool held_by_other(int fd) {
  struct flock fl = whole_file(F_WRLCK);
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK;
}

void write_all(int fd, const void* data, std::size_t n) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Reads one int64 from a child, or nullopt when it did not come within `limit`.
std::optional<std::int64_t> read_value(int fd, milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = ::poll(&p, 1, static_cast<int>(limit.count()));
  while (rc < 0 && errno == EINTR);
  if (rc <= 0) return std::nullopt;
  std::int64_t v = 0;
  if (::read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return std::nullopt;
  return v;
}

// A forked child doing one job on a lock file; the parent reads its answers from `from` and
// sends it one command byte on `to`.
class child {
 public:
  template <class Job>
  explicit child(Job job) {
    int up[2], down[2];
    if (::pipe2(up, O_CLOEXEC) != 0 || ::pipe2(down, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    pid_ = ::fork();
    if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid_ == 0) {
      ::close(up[0]);
      ::close(down[1]);
      job(up[1], down[0]);
      ::_exit(0);
    }
    ::close(up[1]);
    ::close(down[0]);
    from_ = up[0];
    to_ = down[1];
  }
  ~child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(from_);
    ::close(to_);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  std::optional<std::int64_t> answer(milliseconds limit) { return read_value(from_, limit); }
  void command(char c) { write_all(to_, &c, 1); }
  // SIGKILL now; returns the time just before the signal.
  std::int64_t kill_now() {
    std::int64_t t = now_ns();
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return t;
  }

 private:
  pid_t pid_ = -1;
  int from_ = -1, to_ = -1;
};

// Child jobs. A holder answers 0 once it holds the lock (or the errno), then waits for a
// command: 'r' releases (answers the time just before close), 'w' watches its lock file's
// name until it names another inode (answers the time it saw that, or -1 at the limit).
constexpr char release_cmd = 'r', watch_cmd = 'w';

void holder_job(const fs::path& lock_path, milliseconds limit, int up, int down) {
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  std::int64_t status = fd < 0 ? errno : ofd_lock(fd, false);
  write_all(up, &status, sizeof status);
  if (status != 0) return;
  char c = 0;
  if (::read(down, &c, 1) != 1) return;
  if (c == release_cmd) {
    std::int64_t t = now_ns();
    ::close(fd);
    write_all(up, &t, sizeof t);
    return;
  }
  if (c == watch_cmd) {
    struct stat mine {};
    ::fstat(fd, &mine);
    const std::int64_t until = now_ns() + limit.count() * 1'000'000;
    std::int64_t seen = -1;
    while (now_ns() < until) {
      struct stat by_name {};
      if (::stat(lock_path.c_str(), &by_name) != 0 || by_name.st_ino != mine.st_ino || by_name.st_dev != mine.st_dev) {
        seen = now_ns();
        break;
      }
      ::usleep(200);
    }
    write_all(up, &seen, sizeof seen);
  }
}

// A waiter blocks in F_OFD_SETLKW and answers the time it got the lock (or -errno).
void waiter_job(const fs::path& lock_path, int up) {
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::int64_t e = -errno;
    write_all(up, &e, sizeof e);
    return;
  }
  std::int64_t ready = 0;  // tells the parent it is about to block
  write_all(up, &ready, sizeof ready);
  int rc = ofd_lock(fd, true);
  std::int64_t t = rc == 0 ? now_ns() : -rc;
  write_all(up, &t, sizeof t);
}

struct context {
  fs::path work;       // DIR/.tandem-fscheck-PID
  fs::path peer_work;  // the same directory through the peer mount (or work again)
  milliseconds limit;
  bool two_mounts = false;
  std::string via() const { return two_mounts ? "through the other mount" : "from a second process"; }
};

check_outcome make(std::string name, check_result r, std::string detail, nlohmann::json figures = nlohmann::json::object()) {
  return {std::move(name), r, std::move(detail), std::move(figures)};
}

// The holder locks through `c.work`; a second process tries through `contender_dir`.
check_outcome check_exclusion(const context& c, const fs::path& contender_dir, std::string name, std::string via) {
  const auto path = c.work / (name + ".lock");
  child holder([&](int up, int down) { holder_job(path, c.limit, up, down); });
  auto status = holder.answer(c.limit);
  if (!status || *status != 0)
    return make(name, check_result::fail,
                status ? fmt::format("the first process could not take an OFD lock: {}", std::strerror(int(*status)))
                       : "the first process did not answer: the lock call hung");
  int fd = ::open((contender_dir / (name + ".lock")).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return make(name, check_result::fail, fmt::format("cannot open the lock file {}: {}", via, std::strerror(errno)));
  int rc = ofd_lock(fd, false);
  bool seen = held_by_other(fd);
  ::close(fd);
  nlohmann::json fig = {{"second_lock_refused", rc == EAGAIN || rc == EACCES}, {"getlk_sees_holder", seen}};
  if (rc == 0)
    return make(name, check_result::fail,
                fmt::format("a second lock {} was GRANTED while the first was held: this file system does not enforce "
                            "locks, two brokers would both become master",
                            via),
                fig);
  if (rc != EAGAIN && rc != EACCES)
    return make(name, check_result::fail, fmt::format("the second lock attempt failed oddly: {}", std::strerror(rc)), fig);
  if (!seen)
    return make(name, check_result::warn,
                "locks exclude, but F_OFD_GETLK does not see the holder: `tandemctl status` and a slave's holder "
                "query will say the store is free while it is not",
                fig);
  return make(name, check_result::pass,
              fmt::format("a second lock {} was refused while the first was held, and F_OFD_GETLK sees the holder", via), fig);
}

check_outcome check_wake_up(const context& c) {
  const auto path = c.work / "wake.lock";
  child holder([&](int up, int down) { holder_job(path, c.limit, up, down); });
  if (auto s = holder.answer(c.limit); !s || *s != 0) return make("wake_up", check_result::fail, "the holder could not take the lock");
  const auto peer_path = c.peer_work / "wake.lock";
  child waiter([&](int up, int) { waiter_job(peer_path, up); });
  if (auto ready = waiter.answer(c.limit); !ready || *ready != 0)
    return make("wake_up", check_result::fail, "the waiter could not open the lock file");
  ::usleep(50'000);  // let it block in the kernel (or the file system's daemon)
  holder.command(release_cmd);
  auto released = holder.answer(c.limit);
  auto acquired = waiter.answer(c.limit);
  if (!released) return make("wake_up", check_result::fail, "the holder did not release");
  if (!acquired || *acquired < 0)
    return make("wake_up", check_result::fail,
                fmt::format("a waiter blocked in F_OFD_SETLKW {} was not woken within {} ms of the release: set "
                            "`lock_wait: polling` in the brokers' config",
                            c.via(), c.limit.count()));
  double ms = ms_between(*released, *acquired);
  nlohmann::json fig = {{"wake_ms", ms}};
  if (ms < 0)
    return make("wake_up", check_result::fail,
                fmt::format("the waiter {} got the lock {:.2f} ms BEFORE the holder released it: locks do not exclude",
                            c.via(), -ms),
                fig);
  if (ms > 1000)
    return make("wake_up", check_result::warn,
                fmt::format("a blocked waiter got the lock {:.1f} ms after release: slow; `lock_wait: polling` with a "
                            "short `lock_poll_interval_ms` may take over faster",
                            ms),
                fig);
  return make("wake_up", check_result::pass, fmt::format("a blocked waiter {} got the lock {:.2f} ms after release", c.via(), ms), fig);
}

check_outcome check_holder_death(const context& c) {
  const auto path = c.work / "death.lock";
  child holder([&](int up, int down) { holder_job(path, c.limit, up, down); });
  if (auto s = holder.answer(c.limit); !s || *s != 0) return make("holder_death", check_result::fail, "the holder could not take the lock");
  int fd = ::open((c.peer_work / "death.lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return make("holder_death", check_result::fail, std::string("cannot open the lock file: ") + std::strerror(errno));
  const std::int64_t killed = holder.kill_now();
  const std::int64_t until = killed + c.limit.count() * 1'000'000;
  std::int64_t got = -1;
  while (now_ns() < until) {
    if (ofd_lock(fd, false) == 0) {
      got = now_ns();
      break;
    }
    ::usleep(500);
  }
  ::close(fd);
  if (got < 0)
    return make("holder_death", check_result::fail,
                fmt::format("the lock of a SIGKILLed holder was still held {} ms later: takeover after a crash waits "
                            "for the file system's session timeout; configure a fence_command",
                            c.limit.count()));
  double ms = ms_between(killed, got);
  return make("holder_death", check_result::pass, fmt::format("the lock was free {:.2f} ms after its holder was SIGKILLed", ms),
              {{"release_ms", ms}});
}

// What a lost lock looks like: the lock file is replaced (an operator's rm, a restored
// backup), a second process locks the new file while the first still holds the old inode,
// and the first can tell only by comparing the name's inode with its descriptor's, which is
// what the brokers' watchdog does at every check.
check_outcome check_replaced_lock(const context& c) {
  const auto path = c.work / "replaced.lock";
  child holder([&](int up, int down) { holder_job(path, c.limit, up, down); });
  if (auto s = holder.answer(c.limit); !s || *s != 0) return make("replaced_lock", check_result::fail, "the holder could not take the lock");
  const auto fresh = c.peer_work / "replaced.lock.new";
  int nfd = ::open(fresh.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (nfd < 0) return make("replaced_lock", check_result::fail, std::string("cannot create a file: ") + std::strerror(errno));
  holder.command(watch_cmd);
  const std::int64_t replaced = now_ns();
  if (::rename(fresh.c_str(), (c.peer_work / "replaced.lock").c_str()) != 0) {
    ::close(nfd);
    return make("replaced_lock", check_result::fail, std::string("rename failed: ") + std::strerror(errno));
  }
  const bool second_holder = ofd_lock(nfd, false) == 0;
  auto seen = holder.answer(c.limit + milliseconds(1000));
  ::close(nfd);
  nlohmann::json fig = {{"second_process_locked_new_file", second_holder}};
  if (!seen || *seen < 0)
    return make("replaced_lock", check_result::fail,
                fmt::format("the holder still saw its own inode under the lock file's name {} ms after it was "
                            "replaced {}: the watchdog cannot notice a removed or replaced lock file here",
                            c.limit.count(), c.via()),
                fig);
  double ms = ms_between(replaced, *seen);
  fig["visible_ms"] = ms;
  return make("replaced_lock", ms > 1000 ? check_result::warn : check_result::pass,
              fmt::format("after the lock file was replaced {}, {} and the holder saw another inode under the "
                          "name {:.2f} ms later; the brokers' watchdog steps down at its next check",
                          c.via(), second_holder ? "a second process could lock the new file" : "the new file stayed locked",
                          ms),
              fig);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

check_outcome check_fsync(const context& c, int samples) {
  const auto path = c.work / "sync.data";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return make("fsync", check_result::fail, std::string("cannot create a file: ") + std::strerror(errno));
  std::string block(4096, '\0');
  std::mt19937_64 rng(static_cast<std::uint64_t>(now_ns()));
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    for (auto& ch : block) ch = static_cast<char>('a' + rng() % 26);
    std::int64_t t0 = now_ns();
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i) * 4096) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      int e = errno;
      ::close(fd);
      return make("fsync", check_result::fail, fmt::format("write+fdatasync failed at sample {}: {}", i, std::strerror(e)));
    }
    ms.push_back(ms_between(t0, now_ns()));
  }
  ::close(fd);
  // Close-to-open: a fresh open through the other mount must see the last block.
  std::string seen(4096, '\0');
  int pfd = ::open((c.peer_work / "sync.data").c_str(), O_RDONLY | O_CLOEXEC);
  bool visible = pfd >= 0 && ::pread(pfd, seen.data(), seen.size(), static_cast<off_t>(samples - 1) * 4096) == 4096 && seen == block;
  if (pfd >= 0) ::close(pfd);
  const double p50 = percentile(ms, 0.5), p99 = percentile(ms, 0.99);
  nlohmann::json fig = {{"samples", samples}, {"p50_ms", p50}, {"p99_ms", p99}, {"per_second", p50 > 0 ? 1000.0 / p50 : 0.0}, {"visible_through_peer", visible}};
  if (!visible)
    return make("fsync", check_result::fail, fmt::format("data written and fdatasync'd was not visible {} after a fresh open", c.via()), fig);
  if (p50 < 0.02)
    return make("fsync", check_result::warn,
                fmt::format("write+fdatasync of 4 KiB took {:.3f} ms (p50): faster than any disk can make data durable; "
                            "a volatile write cache, an `async` export or a non-durable layer is likely",
                            p50),
                fig);
  return make("fsync", check_result::pass,
              fmt::format("write+fdatasync of 4 KiB: p50 {:.2f} ms, p99 {:.2f} ms ({} samples); data visible {}", p50, p99, samples,
                          c.via()),
              fig);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The peer must be this very directory through another mount: a marker written here must be
// readable there.
bool same_directory(const fs::path& work, const fs::path& peer_work) {
  std::ofstream(work / "marker") << "tandem-fscheck " << ::getpid() << ' ' << now_ns();
  return fs::exists(peer_work / "marker") && read_file(work / "marker") == read_file(peer_work / "marker");
}

void print_report(const fscheck_options& o, const std::optional<mount_entry>& m, const lockmgr::fs_kind& kind,
                  const std::vector<check_outcome>& checks, std::ostream& out) {
  if (o.json) {
    nlohmann::json j;
    j["dir"] = o.dir.string();
    j["peer"] = o.peer ? nlohmann::json(o.peer->string()) : nlohmann::json(nullptr);
    j["file_system"] = {{"statfs", kind.name}, {"shared", kind.shared}};
    if (m) j["mount"] = {{"mount_point", m->mount_point.string()}, {"type", m->fstype}, {"source", m->source},
                         {"options", m->mount_options}, {"super_options", m->super_options}};
    int fails = 0, warns = 0;
    for (const auto& c : checks) {
      j["checks"].push_back({{"name", c.name}, {"result", to_string(c.result)}, {"detail", c.detail}, {"figures", c.figures}});
      fails += c.result == check_result::fail;
      warns += c.result == check_result::warn;
    }
    j["failures"] = fails;
    j["warnings"] = warns;
    out << j.dump(2) << "\n";
    return;
  }
  out << "tandemctl fscheck " << o.dir.string() << (o.peer ? " (peer " + o.peer->string() + ")" : std::string()) << "\n";
  if (m)
    out << "file system: " << m->fstype << " (statfs: " << kind.name << "), mounted on " << m->mount_point.string() << " from "
        << m->source << ", options " << m->mount_options << (m->super_options.empty() ? "" : "," + m->super_options) << "\n";
  int fails = 0, warns = 0;
  for (const auto& c : checks) {
    out << fmt::format("  {}  {:<14} {}\n", to_string(c.result), c.name, c.detail);
    fails += c.result == check_result::fail;
    warns += c.result == check_result::warn;
  }
  out << (fails ? "verdict: NOT safe for a Tandem store" : "verdict: usable for a Tandem store") << " (" << fails
      << " failed, " << warns << " warnings)\n";
}

}  // namespace

int run_fscheck(const fscheck_options& o, std::ostream& out, std::ostream& err) {
  std::error_code ec;
  const fs::path dir = fs::canonical(o.dir, ec);
  if (ec || !fs::is_directory(dir)) {
    err << "tandemctl fscheck: " << o.dir.string() << " is not a directory (" << (ec ? ec.message() : "not a directory") << ")\n";
    return 2;
  }
  context c;
  c.limit = o.wait_limit;
  const std::string sub = fmt::format(".tandem-fscheck-{}", ::getpid());
  c.work = dir / sub;
  if (!fs::create_directory(c.work, ec)) {
    err << "tandemctl fscheck: cannot create " << c.work.string() << ": " << ec.message() << "\n";
    return 2;
  }
  struct cleanup {
    fs::path p;
    ~cleanup() {
      std::error_code ignored;
      fs::remove_all(p, ignored);
    }
  } remove_work{c.work};
  c.peer_work = c.work;
  if (o.peer) {
    c.peer_work = fs::absolute(*o.peer) / sub;
    c.two_mounts = true;
    if (!same_directory(c.work, c.peer_work)) {
      err << "tandemctl fscheck: " << o.peer->string() << " does not show what was written in " << o.dir.string()
          << ": --peer must be the same directory through another mount\n";
      return 2;
    }
  }
  lockmgr::fs_kind kind;
  if (int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    if (auto k = lockmgr::detect_fs_kind(fd)) kind = k.value();
    ::close(fd);
  }
  auto mount = mount_of(read_file("/proc/self/mountinfo"), dir);
  std::vector<check_outcome> checks;
  if (mount) checks.push_back(judge_mount(*mount));
  // Two processes on one mount first: a FUSE daemon that forwards every client's lock as its
  // own (bindfs --enable-lock-forwarding) excludes other mounts but not its own clients.
  checks.push_back(check_exclusion(c, c.work, "exclusion", "from a second process on this mount"));
  if (c.two_mounts) checks.push_back(check_exclusion(c, c.peer_work, "exclusion_peer", "through the other mount"));
  checks.push_back(check_wake_up(c));
  checks.push_back(check_holder_death(c));
  checks.push_back(check_replaced_lock(c));
  checks.push_back(check_fsync(c, o.sync_samples));
  print_report(o, mount, kind, checks, out);
  return std::any_of(checks.begin(), checks.end(), [](const auto& x) { return x.result == check_result::fail; }) ? 1 : 0;
}

}  // namespace tandem::ctl
