#include "tools/drill/cluster.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "tools/drill/controller.h"

namespace tandem::drill {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `command` through /bin/sh; its stdout, and its exit status in `status`.
std::string capture(const std::string& command, int& status) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int rc = ::pclose(p);
  status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

}  // namespace

std::unique_ptr<cluster> cluster::attach(const std::filesystem::path& cli, const std::filesystem::path& log) {
  std::unique_ptr<cluster> c(new cluster());
  c->cli_ = cli;
  c->log_ = log;
  int status = 0;
  auto text = capture(fmt::format("{} describe 2>>{}", shell_quote(cli.string()), shell_quote(log.string())), status);
  auto d = nlohmann::json::parse(text, nullptr, false);
  if (status != 0 || d.is_discarded() || !d.contains("hosts"))
    throw drill_abort{fmt::format("--cluster: no running cluster ({} describe exited {}; start one with `{} up`; see {})",
                                  cli.string(), status, cli.string(), log.string())};
  c->description_ = d;
  c->conf_ = d.value("conf", "");
  for (const auto& h : d["hosts"]) {
    c->hosts_.push_back({h["host"].get<unsigned>(), h["netns"].get<std::string>(), h["ip"].get<std::string>(),
                         h["mount"].get<std::string>()});
  }
  c->home_netns_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const std::string admin = "/run/netns/" + d["admin"]["netns"].get<std::string>();
  int fd = ::open(admin.c_str(), O_RDONLY | O_CLOEXEC);
  if (c->home_netns_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    if (fd >= 0) ::close(fd);
    throw drill_abort{fmt::format("--cluster: cannot enter the admin network namespace {} (root needed)", admin)};
  }
  ::close(fd);
  return c;
}

cluster::~cluster() {
  if (home_netns_ >= 0) ::close(home_netns_);
}

nlohmann::json cluster::run(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  std::string cmd = fmt::format("timeout -s KILL {} nsenter --net=/proc/{}/fd/{} -- {}", timeout.count(), ::getpid(),
                                home_netns_, shell_quote(cli_.string()));
  for (const auto& a : args) cmd += " " + shell_quote(a);
  std::string joined;
  for (const auto& a : args) joined += (joined.empty() ? "" : " ") + a;
  int status = 0;
  auto text = capture(fmt::format("echo '--- tandem-cluster {}' >>{}; {} 2>>{}", joined, shell_quote(log_.string()), cmd,
                                  shell_quote(log_.string())),
                      status);
  if (status != 0)
    throw drill_abort{fmt::format("tandem-cluster {} failed (exit {}); see {}", joined, status, log_.string())};
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

}  // namespace tandem::drill
