// tandem-faultfs mounted for real: data and names across a power loss, injected errors,
// freeze, and locks between processes (OFD through the lock manager's probe, POSIX by
// hand), with the daemon's leases. Every case skips (CTest: skipped) where FUSE cannot be
// mounted: no /dev/fuse, or a kernel or container that refuses the mount.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/tandem_skip.h"
#include "tests/unit/lockmgr/child_process.h"
#include "tools/faultfs/control_client.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tandem::lockmgr::test::child_process;

namespace {

constexpr std::uint64_t fuse_magic = 0x65735546;
constexpr int exit_mount_refused = 3;  // tandem-faultfs: the kernel refused the mount

struct mounted {
  fs::path base, src, mnt, sock;
  std::unique_ptr<child_process> daemon;
  std::string skip;

  explicit mounted(std::vector<std::string> extra = {}) {
    std::string tmpl = (fs::temp_directory_path() / "tandem-faultfs-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()));
    base = tmpl;
    src = base / "src";
    mnt = base / "mnt";
    sock = base / "control.sock";
    fs::create_directories(src);
    fs::create_directories(mnt);
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
      skip = "/dev/fuse is not accessible";
      return;
    }
    std::vector<std::string> argv = {TANDEM_FAULTFS_BIN, src.string(), mnt.string(), "--control", sock.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon = std::make_unique<child_process>(argv);
    if (!daemon->wait_for("tandem-faultfs:", 20s)) {
      auto rc = daemon->wait_exit(5s);
      if (rc == exit_mount_refused) {
        skip = "the kernel refused the FUSE mount here";
        return;
      }
      FAIL("tandem-faultfs did not start (exit " << (rc ? std::to_string(*rc) : "none") << ")");
    }
    struct statfs st {};
    REQUIRE(::statfs(mnt.c_str(), &st) == 0);
    REQUIRE((static_cast<std::uint64_t>(st.f_type) & 0xffffffffULL) == fuse_magic);
  }
  ~mounted() {
    if (daemon) {
      daemon->signal(SIGTERM);
      if (!daemon->wait_exit(10s)) {
        std::string cmd = "fusermount3 -uz '" + mnt.string() + "' 2>/dev/null";
        (void)!std::system(cmd.c_str());
      }
    }
    std::error_code ec;
    fs::remove_all(base, ec);
  }

  std::string ctl(const std::string& request) {
    std::string reply;
    auto ec = tandem::faultfs::control_call(sock, request, &reply, 30s);
    INFO("request '" << request << "' -> " << reply);
    REQUIRE_FALSE(ec);
    return reply;
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int open_rw(const fs::path& p, int extra = 0) { return ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | extra, 0644); }

bool write_all(int fd, const std::string& text, off_t at) {
  return ::pwrite(fd, text.data(), text.size(), at) == static_cast<ssize_t>(text.size());
}

void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

void power_cycle(mounted& m) {
  CHECK(m.ctl("crash") == "ok");
  CHECK(m.ctl("power-on") == "ok");
}

}  // namespace

TEST_CASE("what was fsync'd survives a power loss and what was not is forgotten, size included") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  int fd = open_rw(m.mnt / "seg");
  REQUIRE(fd >= 0);
  sync_dir(m.mnt);
  REQUIRE(write_all(fd, "synced-record;", 0));
  REQUIRE(::fdatasync(fd) == 0);
  REQUIRE(write_all(fd, "LOST-", 0));
  REQUIRE(write_all(fd, "unsynced-record;", 14));
  CHECK(slurp(m.mnt / "seg") == "LOST-d-record;unsynced-record;");
  ::close(fd);
  power_cycle(m);
  CHECK(slurp(m.mnt / "seg") == "synced-record;");
  CHECK(fs::file_size(m.mnt / "seg") == 14);
}

TEST_CASE("a file whose directory was not fsync'd is gone after a power loss, after a directory fsync it stays") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  fs::create_directories(m.mnt / "journal");
  sync_dir(m.mnt);
  for (const char* name : {"kept", "lost"}) {
    int fd = open_rw(m.mnt / "journal" / name);
    REQUIRE(fd >= 0);
    REQUIRE(write_all(fd, name, 0));
    REQUIRE(::fsync(fd) == 0);
    ::close(fd);
    if (std::string(name) == "kept") sync_dir(m.mnt / "journal");
  }
  power_cycle(m);
  CHECK(slurp(m.mnt / "journal" / "kept") == "kept");
  CHECK_FALSE(fs::exists(m.mnt / "journal" / "lost"));
  CHECK_FALSE(fs::exists(m.mnt / ".tandem-faultfs-trash"));  // the trash is invisible
}

TEST_CASE("a rename over a file without a directory fsync is undone by a power loss") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  int fd = open_rw(m.mnt / "epoch");
  REQUIRE(write_all(fd, "5", 0));
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
  sync_dir(m.mnt);
  fd = open_rw(m.mnt / "epoch.tmp");
  REQUIRE(write_all(fd, "6", 0));
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
  fs::rename(m.mnt / "epoch.tmp", m.mnt / "epoch");
  CHECK(slurp(m.mnt / "epoch") == "6");
  power_cycle(m);
  CHECK(slurp(m.mnt / "epoch") == "5");
  CHECK_FALSE(fs::exists(m.mnt / "epoch.tmp"));
}

TEST_CASE("writes and fsyncs fail with the errno they were told to, then work again") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  int fd = open_rw(m.mnt / "f");
  REQUIRE(fd >= 0);
  m.ctl("fail write eio count=1");
  errno = 0;
  CHECK(::pwrite(fd, "x", 1, 0) == -1);
  CHECK(errno == EIO);
  CHECK(write_all(fd, "y", 0));
  m.ctl("fail fsync enospc skip=1 count=1 path=f");
  CHECK(::fsync(fd) == 0);  // skipped
  errno = 0;
  CHECK(::fdatasync(fd) == -1);
  CHECK(errno == ENOSPC);
  CHECK(::fsync(fd) == 0);
  m.ctl("fail write enospc count=0 path=other*");
  CHECK(write_all(fd, "z", 1));  // another path: untouched
  auto status = m.ctl("status");
  CHECK(status.find("\"injected\":2") != std::string::npos);
  m.ctl("clear");
  ::close(fd);
}

TEST_CASE("a failed fsync commits nothing: a power loss after it forgets the data") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  int fd = open_rw(m.mnt / "f");
  sync_dir(m.mnt);
  REQUIRE(write_all(fd, "durable", 0));
  REQUIRE(::fsync(fd) == 0);
  REQUIRE(write_all(fd, "+pending", 7));
  m.ctl("fail fsync eio");
  CHECK(::fsync(fd) == -1);
  ::close(fd);
  power_cycle(m);
  CHECK(slurp(m.mnt / "f") == "durable");
}

TEST_CASE("a frozen file system blocks operations until it thaws") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  int fd = open_rw(m.mnt / "f");
  REQUIRE(fd >= 0);
  m.ctl("freeze");
  std::atomic<bool> done{false};
  std::thread writer([&] {
    (void)!::pwrite(fd, "late", 4, 0);
    done = true;
  });
  // Nothing may complete while frozen: watch for a while (this is the condition under test).
  auto until = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < until) {
    CHECK_FALSE(done.load());
    std::this_thread::sleep_for(10ms);
  }
  CHECK(m.ctl("status").find("\"frozen\":true") != std::string::npos);
  m.ctl("thaw");
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  CHECK(done.load());
  writer.join();
  ::close(fd);
  CHECK(slurp(m.mnt / "f") == "late");
}

TEST_CASE("a partial freeze hangs only the named operations and paths") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  fs::create_directories(m.mnt / "journal");
  int seg = open_rw(m.mnt / "journal" / "1.seg");
  int other = open_rw(m.mnt / "epoch");
  REQUIRE(write_all(seg, "before", 0));
  m.ctl("freeze write,fsync path=journal/*");
  std::atomic<bool> done{false};
  std::thread writer([&] {
    (void)!::pwrite(seg, "during", 6, 6);
    done = true;
  });
  // Reads of the frozen file and writes elsewhere go on meanwhile.
  char buf[6];
  CHECK(::pread(seg, buf, 6, 0) == 6);
  CHECK(write_all(other, "7", 0));
  CHECK(::fsync(other) == 0);
  auto until = std::chrono::steady_clock::now() + 200ms;
  while (std::chrono::steady_clock::now() < until) {
    CHECK_FALSE(done.load());
    std::this_thread::sleep_for(10ms);
  }
  m.ctl("thaw");
  writer.join();
  CHECK(done.load());
  ::close(seg);
  ::close(other);
  CHECK(slurp(m.mnt / "journal" / "1.seg") == "beforeduring");
}

TEST_CASE("a delay rule slows one process's requests and no other's") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  ::close(open_rw(m.mnt / "slow"));
  m.ctl("delay stat 300 path=slow pid=" + std::to_string(::getpid()));
  auto timed_stat = [&] {
    auto t = std::chrono::steady_clock::now();
    struct stat st {};
    REQUIRE(::stat((m.mnt / "slow").c_str(), &st) == 0);
    return std::chrono::steady_clock::now() - t;
  };
  CHECK(timed_stat() >= 300ms);
  // Another process (a child) is not slowed: it reports through its exit status.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto t = std::chrono::steady_clock::now();
    struct stat st {};
    const bool ok = ::stat((m.mnt / "slow").c_str(), &st) == 0;
    ::_exit(ok && std::chrono::steady_clock::now() - t < 250ms ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  m.ctl("clear");
  CHECK(timed_stat() < 250ms);
}

TEST_CASE("a crash fails blocked and later operations with EIO, and descriptors from before it never work again") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  int fd = open_rw(m.mnt / "f");
  REQUIRE(fd >= 0);
  sync_dir(m.mnt);
  m.ctl("freeze");
  std::atomic<int> blocked_result{0};
  std::thread blocked([&] {
    errno = 0;
    blocked_result = ::pwrite(fd, "x", 1, 0) < 0 ? errno : 0;
  });
  std::this_thread::sleep_for(50ms);  // let the write reach the daemon (it cannot complete either way)
  CHECK(m.ctl("crash") == "ok");
  blocked.join();
  CHECK(blocked_result == EIO);
  errno = 0;
  CHECK(::pwrite(fd, "y", 1, 0) == -1);
  CHECK(errno == EIO);
  m.ctl("power-on");
  errno = 0;
  CHECK(::pwrite(fd, "y", 1, 0) == -1);  // the process "died with the machine"
  CHECK(errno == EIO);
  ::close(fd);
  int again = open_rw(m.mnt / "f");
  REQUIRE(again >= 0);
  CHECK(write_all(again, "z", 0));
  ::close(again);
}

namespace {

// `procs` lock_probe racers x `rounds` on the mount: each bumps a counter under the lock
// and checks a marker file that only a lock holder may see (lock_probe.cpp, race mode).
void race(mounted& m, int procs, int rounds) {
  const fs::path scratch = m.base / "scratch";
  fs::create_directories(scratch);
  std::vector<std::unique_ptr<child_process>> racers;
  for (int i = 0; i < procs; ++i) {
    racers.push_back(std::make_unique<child_process>(std::vector<std::string>{
        LOCK_PROBE_PATH, "race", m.mnt.string(), "--rounds", std::to_string(rounds), "--hold-us", "2000", "--marker",
        (scratch / "inside").string(), "--counter", (scratch / "counter").string()}));
  }
  for (auto& r : racers) {
    auto line = r->wait_for("done", 120s);
    std::string all;
    for (const auto& l : r->lines()) all += l + " | ";
    INFO("racer printed: " << all);
    REQUIRE(line);
    CHECK(r->wait_exit(10s) == 0);
  }
  std::ifstream in(scratch / "counter");
  long count = 0;
  in >> count;
  CHECK(count == procs * rounds);
}

}  // namespace

TEST_CASE("two processes never hold the exclusive OFD lock at once, whoever arbitrates") {
  for (const char* mode : {"daemon", "kernel"}) {
    CAPTURE(mode);
    mounted m({"--locks", mode});
    if (!m.skip.empty()) TANDEM_SKIP(m.skip);
    race(m, 4, 5);
  }
}

TEST_CASE("POSIX locks exclude another process and go when their process closes any descriptor") {
  mounted m;
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  const fs::path file = m.mnt / "posix";
  ::close(open_rw(file));
  int to_child[2], from_child[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(from_child) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd1 = ::open(file.c_str(), O_RDWR);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd1, F_SETLK, &fl) != 0) ::_exit(1);
    int fd2 = ::open(file.c_str(), O_RDONLY);
    (void)!::write(from_child[1], "L", 1);
    char c;
    (void)!::read(to_child[0], &c, 1);
    ::close(fd2);  // POSIX: closing ANY descriptor of the file drops the process's locks
    (void)!::write(from_child[1], "C", 1);
    (void)!::read(to_child[0], &c, 1);
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(from_child[0], &c, 1) == 1);
  REQUIRE(c == 'L');
  int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  CHECK(::fcntl(fd, F_SETLK, &fl) == -1);
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  REQUIRE(::fcntl(fd, F_GETLK, &probe) == 0);
  CHECK(probe.l_type == F_WRLCK);
  CHECK(probe.l_pid == pid);
  (void)!::write(to_child[1], "x", 1);
  REQUIRE(::read(from_child[0], &c, 1) == 1);
  CHECK(::fcntl(fd, F_SETLK, &fl) == 0);
  (void)!::write(to_child[1], "x", 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(fd);
  for (int p : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(p);
}

TEST_CASE("a stopped lock holder loses the lock after the lease and gets EIO when it resumes") {
  mounted m({"--lease-ms", "400"});
  if (!m.skip.empty()) TANDEM_SKIP(m.skip);
  child_process holder({LOCK_PROBE_PATH, "hold", m.mnt.string(), "--interval", "100"});
  REQUIRE(holder.wait_for("acquired", 20s));
  child_process waiter({LOCK_PROBE_PATH, "hold", m.mnt.string(), "--interval", "100"});
  REQUIRE(waiter.wait_for("waiting", 20s));
  // A renewing holder keeps the lock well past the lease.
  CHECK_FALSE(waiter.wait_for("acquired", 1000ms));
  holder.signal(SIGSTOP);
  auto got = waiter.wait_for("acquired", 10s);
  REQUIRE(got);
  CHECK(got->find("clean=0") != std::string::npos);
  holder.signal(SIGCONT);
  auto lost = holder.wait_for("lost", 10s);
  REQUIRE(lost);
  CHECK(lost->find("Input/output error") != std::string::npos);
  CHECK(holder.wait_exit(10s) == 75);
  CHECK(m.ctl("status").find("\"revocations\":1") != std::string::npos);
}
