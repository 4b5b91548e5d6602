#include "tools/drill/fleet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string_view>
#include <thread>

#include <fmt/format.h>

namespace tandem::drill {
namespace {

// The pids emergency_kill may signal: a plain array of lock-free atomics, readable from a
// signal handler. One fleet per process is all the drill needs; a second fleet shares it.
std::array<std::atomic<pid_t>, broker_fleet::max_brokers> g_live_pids{};

void write_all(int fd, const char* text) {
  std::size_t n = std::strlen(text);
  while (n > 0) {
    ssize_t w = ::write(fd, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

std::error_code spawn_child(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                            const std::filesystem::path& log, const char* what, pid_t& pid_out) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> arg_strings = args;
  std::vector<char*> argv;
  for (auto& a : arg_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& x : extra_env) replaced = replaced || x.rfind(name, 0) == 0;
    if (!replaced) env_strings.emplace_back(entry);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string exec_failed = fmt::format("tandem-drill: exec of {} failed\n", what);

  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return {errno, std::generic_category()};
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    return {err, std::generic_category()};
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the drill died before prctl took effect
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(argv[0], argv.data(), envp.data());
    write_all(2, exec_failed.c_str());
    ::_exit(127);
  }
  ::close(log_fd);
  // Also from the parent: the child's setpgid may not have run yet when we signal the group.
  ::setpgid(pid, pid);
  pid_out = pid;
  return {};
}

std::string exit_status::to_string() const {
  if (exited) return fmt::format("exit {}", code);
  const char* name = sigabbrev_np(signal);
  return name ? fmt::format("signal {} (SIG{})", signal, name) : fmt::format("signal {}", signal);
}

broker_fleet::broker_fleet(fleet_options options) : options_(std::move(options)) {
  if (options_.brokers > max_brokers) options_.brokers = max_brokers;
}

broker_fleet::~broker_fleet() { stop_all(std::chrono::seconds(5)); }

std::uint16_t broker_fleet::client_port(std::uint32_t slot) const {
  return static_cast<std::uint16_t>(options_.base_port + 2 * slot);
}

std::uint16_t broker_fleet::admin_port(std::uint32_t slot) const {
  return static_cast<std::uint16_t>(options_.base_port + 2 * slot + 1);
}

std::string broker_fleet::failover_url(const std::string& opts) const {
  std::string url = "failover:(";
  for (std::uint32_t i = 0; i < options_.brokers; ++i) {
    if (i > 0) url += ',';
    url += fmt::format("tcp://{}:{}", host(i), client_port(i));
  }
  url += ')';
  if (!opts.empty()) url += "?" + opts;
  return url;
}

std::error_code broker_fleet::start(std::uint32_t slot, bool create_store) {
  if (slot >= options_.brokers) return std::make_error_code(std::errc::invalid_argument);
  if (running(slot)) return std::make_error_code(std::errc::device_or_resource_busy);
  std::error_code ec;
  std::filesystem::create_directories(options_.log_dir, ec);
  if (ec) return ec;

  const std::uint64_t inc = slots_[slot].incarnation.load() + 1;
  incarnation_record rec;
  rec.slot = slot;
  rec.incarnation = inc;
  rec.log = options_.log_dir / fmt::format("b{}.{}.log", slot, inc);

  std::vector<std::string> args;
  // nsenter execs tandemd in the same process: the pid, the process group and the death
  // signal stay those this fork set.
  if (slot < options_.places.size() && !options_.places[slot].netns.empty())
    args = {"/usr/bin/nsenter", "--net=/run/netns/" + options_.places[slot].netns, "--"};
  args.insert(args.end(), {
      options_.tandemd.string(),
      "--store", store(slot).string(),
      "--listen", fmt::format("{}:{}", host(slot), client_port(slot)),
      "--admin", fmt::format("{}:{}", host(slot), admin_port(slot)),
      "--name", fmt::format("b{}", slot),
  });
  if (create_store) args.push_back("--create-store");
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_t pid = 0;
  if (auto ec = spawn_child(args, options_.extra_env, rec.log, "tandemd (check --tandemd)", pid)) return ec;
  rec.pid = pid;
  rec.started_at = std::chrono::steady_clock::now();
  records_.push_back(std::move(rec));
  slots_[slot].record = records_.size() - 1;
  slots_[slot].incarnation.store(inc);
  slots_[slot].pid.store(pid);
  g_live_pids[slot].store(pid);
  return {};
}

std::error_code broker_fleet::signal(std::uint32_t slot, int sig) {
  pid_t pid = slot < options_.brokers ? slots_[slot].pid.load() : 0;
  if (pid <= 0) return std::make_error_code(std::errc::no_such_process);
  if (::kill(pid, sig) != 0) return {errno, std::generic_category()};
  return {};
}

bool broker_fleet::running(std::uint32_t slot) const { return slot < options_.brokers && slots_[slot].pid.load() > 0; }

std::uint64_t broker_fleet::incarnation(std::uint32_t slot) const {
  return slot < max_brokers ? slots_[slot].incarnation.load() : 0;
}

pid_t broker_fleet::pid(std::uint32_t slot) const { return slot < max_brokers ? slots_[slot].pid.load() : 0; }

const incarnation_record* broker_fleet::current(std::uint32_t slot) const {
  if (slot >= options_.brokers || slots_[slot].incarnation.load() == 0) return nullptr;
  return &records_[slots_[slot].record];
}

void broker_fleet::on_exit(std::uint32_t slot, int wait_status) {
  auto& rec = records_[slots_[slot].record];
  exit_status st;
  if (WIFEXITED(wait_status)) {
    st.exited = true;
    st.code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    st.signal = WTERMSIG(wait_status);
  }
  rec.status = st;
  rec.ended_at = std::chrono::steady_clock::now();
  slots_[slot].pid.store(0);
  g_live_pids[slot].store(0);
}

std::vector<incarnation_record> broker_fleet::reap() {
  std::vector<incarnation_record> out;
  for (std::uint32_t slot = 0; slot < options_.brokers; ++slot) {
    pid_t pid = slots_[slot].pid.load();
    if (pid <= 0) continue;
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      on_exit(slot, status);
      out.push_back(records_[slots_[slot].record]);
    }
  }
  return out;
}

std::optional<incarnation_record> broker_fleet::wait_exit(std::uint32_t slot, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t pid = slots_[slot].pid.load();
    if (pid <= 0) return records_.empty() ? std::nullopt : std::optional(records_[slots_[slot].record]);
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      on_exit(slot, status);
      return records_[slots_[slot].record];
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void broker_fleet::stop_all(std::chrono::milliseconds grace) {
  for (std::uint32_t slot = 0; slot < options_.brokers; ++slot) {
    pid_t pid = slots_[slot].pid.load();
    if (pid <= 0) continue;
    ::kill(pid, SIGCONT);  // a stopped broker cannot act on SIGTERM
    ::kill(pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (std::uint32_t slot = 0; slot < options_.brokers; ++slot) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (running(slot)) wait_exit(slot, std::max(left, std::chrono::milliseconds(0)));
  }
  for (std::uint32_t slot = 0; slot < options_.brokers; ++slot) {
    pid_t pid = slots_[slot].pid.load();
    if (pid <= 0) continue;
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    wait_exit(slot, std::chrono::seconds(10));
  }
}

void broker_fleet::emergency_kill() noexcept {
  for (auto& p : g_live_pids) {
    pid_t pid = p.load();
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  }
}

}  // namespace tandem::drill

namespace tandem::drill {

std::uint16_t broker_fleet::find_free_base_port(const std::string& host, unsigned brokers) {
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) return 0;
  auto port_free = [&](std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr = addr;
    sa.sin_port = htons(port);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
  };
  // Below 32768, Linux's default ephemeral range, so client sockets never sit on our ports.
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<unsigned> pick(20000, 32000 - 2 * brokers);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto base = static_cast<std::uint16_t>(pick(rng));
    bool all = true;
    for (unsigned i = 0; i < 2 * brokers && all; ++i) all = port_free(static_cast<std::uint16_t>(base + i));
    if (all) return base;
  }
  return 0;
}

}  // namespace tandem::drill
