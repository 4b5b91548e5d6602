// fence_hook (see fence_hook.h). Divisions:
//   1. the decision
//   2. targets and the command's environment
//   3. running the command
//   4. probes and the mount's client id
//   5. the watcher thread
#include "broker/fence_hook.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "broker/log.h"
#include "lockmgr/query.h"

extern char** environ;

namespace tandem::broker {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

milliseconds ms_since(steady::time_point t) {
  return std::chrono::duration_cast<milliseconds>(steady::now() - t);
}

}  // namespace

// ---- 1. the decision ---------------------------------------------------------------------------

fence_decider::fence_decider(milliseconds after, milliseconds retry) : after_(after), retry_(retry) {}

bool fence_decider::observe(clock::time_point now, bool health_answered, bool stomp_answered,
                            std::optional<clock::time_point> round_start) {
  if (health_answered || stomp_answered) {
    silent_since_.reset();
    next_run_.reset();
    return false;
  }
  if (!silent_since_) silent_since_ = round_start.value_or(now);
  if (now - *silent_since_ < after_) return false;
  return !next_run_ || now >= *next_run_;
}

void fence_decider::ran(clock::time_point ended, bool succeeded) {
  ++runs_;
  next_run_ = ended + (succeeded ? after_ : retry_);
}

std::optional<fence_decider::clock::time_point> fence_decider::due() const {
  if (!silent_since_) return std::nullopt;
  auto at = *silent_since_ + after_;
  return next_run_ ? std::max(at, *next_run_) : at;
}

void fence_decider::reset() {
  silent_since_.reset();
  next_run_.reset();
  runs_ = 0;
}

// ---- 2. targets and the command's environment ----------------------------------------------------

std::optional<probe_target> parse_probe_target(std::string_view url, std::string_view fallback_host) {
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  if (auto slash = url.find('/'); slash != std::string_view::npos) url = url.substr(0, slash);
  auto colon = url.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = url.substr(0, colon), port = url.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  probe_target t;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), t.port);
  if (ec != std::errc{} || end != port.data() + port.size() || t.port == 0) return std::nullopt;
  bool wildcard = host.empty() || host == "0.0.0.0" || host == "::";
  t.host = std::string(wildcard ? fallback_host : host);
  if (t.host.empty()) return std::nullopt;
  return t;
}

std::vector<std::string> fence_environment(const lockmgr::holder_record& h, const std::filesystem::path& store,
                                           unsigned attempt) {
  auto target = parse_probe_target(h.client_url, h.host);
  return {
      "TANDEM_FENCE_HOST=" + h.host,
      fmt::format("TANDEM_FENCE_PID={}", h.pid),
      fmt::format("TANDEM_FENCE_EPOCH={}", h.epoch),
      "TANDEM_FENCE_BROKER_NAME=" + h.broker_name,
      "TANDEM_FENCE_CLIENT_URL=" + h.client_url,
      "TANDEM_FENCE_ADMIN_URL=" + h.admin_url,
      "TANDEM_FENCE_ADDRESS=" + (target ? target->host : h.host),
      "TANDEM_FENCE_MOUNT_CLIENT_ID=" + h.mount_client_id,
      "TANDEM_FENCE_ACQUIRED_AT=" + h.acquired_at,
      "TANDEM_FENCE_STORE=" + store.string(),
      fmt::format("TANDEM_FENCE_ATTEMPT={}", attempt),
  };
}

// ---- 3. running the command ----------------------------------------------------------------------

std::string fence_run::describe() const {
  if (!error.empty()) return "could not start: " + error;
  if (timed_out) return fmt::format("timed out after {} ms, killed", took.count());
  if (signal != 0) return fmt::format("killed by signal {}", signal);
  return fmt::format("exit {}", exit_code);
}

namespace {

// environ with `extra` ("NAME=value") replacing or adding variables.
std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  auto name_of = [](std::string_view kv) { return kv.substr(0, kv.find('=')); };
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) { return name_of(x) == name_of(kv); });
    if (!replaced) out.emplace_back(kv);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

constexpr std::size_t output_keep = 4096;

void keep_tail(std::string& out, const char* data, std::size_t n) {
  out.append(data, n);
  if (out.size() > output_keep) out.erase(0, out.size() - output_keep);
}

}  // namespace

fence_run run_fence_command(const std::string& command, const std::vector<std::string>& env, milliseconds timeout) {
  fence_run run;
  auto t0 = steady::now();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    run.error = fmt::format("pipe: {}", std::strerror(errno));
    return run;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (a timeout kills the command's children too), default signal
  // dispositions and an empty mask (the broker's SIGURG handler and any mask stay here).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  auto env_strings = merged_environment(env);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    run.error = std::strerror(rc);
    return run;
  }

  // Read its output until it exits or the deadline; a grandchild that keeps the pipe open
  // must not keep us here after the command itself exited.
  const auto deadline = t0 + timeout;
  int status = 0;
  bool reaped = false;
  char buf[1024];
  while (!reaped) {
    if (steady::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      run.timed_out = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
      if (n > 0) keep_tail(run.output, buf, static_cast<std::size_t>(n));
    }
    reaped = ::waitpid(pid, &status, WNOHANG) == pid;
  }
  if (!reaped) ::waitpid(pid, &status, 0);
  ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) keep_tail(run.output, buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  run.took = ms_since(t0);
  if (run.timed_out) return run;
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  run.succeeded = WIFEXITED(status) && run.exit_code == 0;
  return run;
}

// ---- 4. probes and the mount's client id ---------------------------------------------------------

namespace {

// A connected socket to `t`, or -1 when it cannot connect within `timeout`.
int connect_within(const probe_target& t, milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

}  // namespace

bool stomp_port_answers(const probe_target& t, milliseconds timeout) {
  int fd = connect_within(t, timeout);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool health_answers(const probe_target& t, milliseconds timeout) {
  auto t0 = steady::now();
  int fd = connect_within(t, timeout);
  if (fd < 0) return false;
  std::string request = fmt::format("GET /health HTTP/1.0\r\nHost: {}\r\n\r\n", t.host);
  bool ok = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  std::string got;
  while (ok && got.size() < 12) {
    auto left = timeout - ms_since(t0);
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    char buf[64];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  // "HTTP/1.1 200" or "HTTP/1.1 503" (a stopping master): either is an answer.
  return ok && got.size() >= 12 && got.compare(0, 5, "HTTP/") == 0;
}

std::string read_mount_client_id(const std::filesystem::path& dir) {
  char buf[128];
  ssize_t n = ::getxattr(dir.c_str(), "ceph.client_id", buf, sizeof buf);
  if (n <= 0) return {};
  std::string id(buf, static_cast<std::size_t>(n));
  while (!id.empty() && (id.back() == '\0' || id.back() == '\n')) id.pop_back();
  // ceph-fuse 16.2 answers "client4163", some versions "client.4163": keep the number.
  constexpr std::string_view prefix = "client";
  if (id.rfind(prefix, 0) == 0) id.erase(0, prefix.size());
  if (!id.empty() && id.front() == '.') id.erase(0, 1);
  return id;
}

// ---- 5. the watcher thread ------------------------------------------------------------------------

struct fence_hook::shared {
  fence_settings settings;
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;
  bool running = false;  // a command runs now
  bool hold = false;     // the lock is ours: keep the previous holder as the target
  std::optional<fence_run> last;
};

namespace {

milliseconds clamp_ms(milliseconds v, milliseconds lo, milliseconds hi) { return std::clamp(v, lo, hi); }

// One lockmgr::query at a time on a detached thread, which may hang in the kernel for as
// long as the file system lets it; the watcher polls for the answer.
class holder_reader : public std::enable_shared_from_this<holder_reader> {
 public:
  struct answer {
    bool held = false;
    std::optional<lockmgr::holder_record> holder;
  };
  bool busy() {
    std::lock_guard g(mutex_);
    return busy_;
  }
  void start(const std::filesystem::path& store) {
    {
      std::lock_guard g(mutex_);
      busy_ = true;
    }
    std::thread([self = shared_from_this(), store] {
      auto q = lockmgr::query(store);
      answer a;
      if (q) {
        a.held = q.value().held;
        a.holder = q.value().holder;
      }
      std::lock_guard g(self->mutex_);
      self->answer_ = std::move(a);
      self->busy_ = false;
    }).detach();
  }
  std::optional<answer> take() {
    std::lock_guard g(mutex_);
    auto a = std::move(answer_);
    answer_.reset();
    return a;
  }

 private:
  std::mutex mutex_;
  bool busy_ = false;
  std::optional<answer> answer_;
};

}  // namespace

fence_hook::fence_hook(fence_settings settings) : shared_(std::make_shared<shared>()) {
  shared_->settings = std::move(settings);
}

fence_hook::~fence_hook() { finish(); }

void fence_hook::start() {
  auto s = shared_;
  thread_ = std::thread([s] {
    watch(s);
  });
}

void fence_hook::hold_target() {
  std::unique_lock lock(shared_->mutex);
  shared_->hold = true;
  shared_->cv.wait(lock, [&] { return !shared_->running; });
}

std::optional<fence_run> fence_hook::finish() {
  if (!thread_.joinable()) {
    std::lock_guard g(shared_->mutex);
    return shared_->last;
  }
  std::unique_lock lock(shared_->mutex);
  shared_->stop = true;
  shared_->cv.notify_all();
  shared_->cv.wait(lock, [&] { return !shared_->running; });
  auto last = shared_->last;
  lock.unlock();
  // The thread may sit in a holder.json read that hangs on a cut-off mount: it holds its own
  // reference to the shared state and ends by itself when the read returns.
  thread_.detach();
  return last;
}

void fence_hook::watch(const std::shared_ptr<shared>& s) {
  const fence_settings& settings = s->settings;
  std::mutex& mutex = s->mutex;
  std::condition_variable& cv = s->cv;
  bool& stop = s->stop;
  bool& running = s->running;
  std::optional<fence_run>& last = s->last;
  const milliseconds probe_every = clamp_ms(settings.after / 5, milliseconds(50), milliseconds(1000));
  const milliseconds probe_timeout = clamp_ms(settings.after / 4, milliseconds(50), milliseconds(1000));
  const milliseconds retry = clamp_ms(settings.after / 2, milliseconds(200), milliseconds(5000));
  fence_decider decider(settings.after, retry);
  auto reader = std::make_shared<holder_reader>();
  std::optional<lockmgr::holder_record> holder;
  steady::time_point queried{};
  bool answering = true;
  bool reread = false;  // after a successful fence: the lock has moved, see to whom
  bool fenced = false;  // a run succeeded against the current holder
  bool said_taken = false;  // "the lock came to us without a fence" logged

  auto stopping = [&] {
    std::lock_guard g(mutex);
    return stop;
  };
  while (!stopping()) {
    // Re-read holder.json on a thread of its own: a master that dies just as we read leaves
    // the read hanging until its client is evicted or times out (seen in the cluster drill),
    // and the probes of the holder we know must go on meanwhile. While the master answers,
    // every 2 s; while it is silent, every probe round: another slave may have taken the
    // lock from it already (its process died, its client let go), and only holder.json says
    // so. Not re-reading then (as before 2026-12-06) fenced the healthy host of a killed
    // master 2 s after the kill although a new master had long written holder.json.
    bool hold = false;
    {
      std::lock_guard g(mutex);
      hold = s->hold;
    }
    const milliseconds reread_every = answering ? milliseconds(2000) : probe_every;
    if (!hold && !reader->busy() && (!holder || reread || ms_since(queried) > reread_every)) {
      queried = steady::now();
      reread = false;
      reader->start(settings.store);
    }
    if (auto q = reader->take(); q && !hold) {
      if (q->held && q->holder && !q->holder->clean_release) {
        if (!holder || holder->epoch != q->holder->epoch) {
          holder = q->holder;
          decider.reset();
          fenced = false;
          log::info("fence", "watching the master for the fence hook",
                    {log::kv("holder", holder->broker_name), log::kv("host", holder->host), log::kv("pid", holder->pid),
                     log::kv("epoch", holder->epoch), log::kv("client_url", holder->client_url),
                     log::kv("admin_url", holder->admin_url), log::kv("mount_client_id", holder->mount_client_id),
                     log::kv("fence_after_ms", settings.after.count())});
        }
      } else {
        holder.reset();  // free, or no record yet: nothing to fence
      }
    }
    if (holder) {
      const auto round_start = steady::now();
      auto stomp = parse_probe_target(holder->client_url, holder->host);
      auto admin = parse_probe_target(holder->admin_url, holder->host);
      bool health_ok = admin && health_answers(*admin, probe_timeout);
      bool stomp_ok = !health_ok && stomp && stomp_port_answers(*stomp, probe_timeout);
      answering = health_ok || stomp_ok;
      const auto now = steady::now();
      // Once the lock is ours (hold) a successful run is enough: another one would only delay
      // the takeover, which waits for it (seen: 3.6 s in the cluster drill). And a lock that
      // came to us without a run of ours needs none (fence_hook.h, "Not after a process death").
      const bool taken = settings.lock_taken && settings.lock_taken();
      if (taken && !fenced && !said_taken) {
        said_taken = true;
        log::info("fence", "the lock came to us without a fence: the old master's file-system client let go of it, "
                           "so it is not fenced",
                  {log::kv("holder", holder->broker_name), log::kv("epoch", holder->epoch),
                   log::kv("mount_client_id", holder->mount_client_id)});
      }
      if (decider.observe(now, health_ok, stomp_ok, round_start) && !(hold && fenced) && !taken) {
        {
          std::lock_guard g(mutex);
          if (stop) break;
          running = true;
        }
        auto silent = ms_since(*decider.silent_since());
        log::warn("fence", "master silent: running the fence command",
                  {log::kv("host", holder->host), log::kv("pid", holder->pid), log::kv("epoch", holder->epoch),
                   log::kv("mount_client_id", holder->mount_client_id), log::kv("silent_ms", silent.count()),
                   log::kv("attempt", decider.runs() + 1)});
        auto run = run_fence_command(settings.command, fence_environment(*holder, settings.store, decider.runs() + 1),
                                     settings.timeout);
        decider.ran(steady::now(), run.succeeded);
        if (run.succeeded && settings.fenced) settings.fenced(holder->epoch);
        // Fenced: its caps are gone, so reading holder.json cannot hang on it any more.
        reread = run.succeeded;
        fenced = fenced || run.succeeded;
        if (run.succeeded)
          log::info("fence", "fence command succeeded",
                    {log::kv("epoch", holder->epoch), log::kv("took_ms", run.took.count()), log::kv("output", run.output)});
        else
          log::error("fence", "fence command failed, will retry while the master stays silent",
                     {log::kv("epoch", holder->epoch), log::kv("result", run.describe()), log::kv("took_ms", run.took.count()),
                      log::kv("retry_ms", retry.count()), log::kv("output", run.output)});
        std::lock_guard g(mutex);
        last = std::move(run);
        running = false;
        cv.notify_all();
      }
    }
    // While the master is silent, wake when a run falls due rather than up to a round late.
    // (A due time already past means something else holds the run back: keep the round.)
    milliseconds pause = holder ? probe_every : milliseconds(20);
    if (auto due = decider.due(); holder && due && *due > steady::now())
      pause = std::min(pause, std::chrono::ceil<milliseconds>(*due - steady::now()));
    std::unique_lock lock(mutex);
    cv.wait_for(lock, pause, [&] { return stop; });
  }
}

}  // namespace tandem::broker
