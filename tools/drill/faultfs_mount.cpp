#include "tools/drill/faultfs_mount.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tools/drill/fleet.h"
#include "tools/faultfs/control_client.h"

namespace tandem::drill {

faultfs_mount::faultfs_mount(faultfs_options options) : options_(std::move(options)) {}

faultfs_mount::~faultfs_mount() { stop(); }

std::error_code faultfs_mount::start(std::chrono::milliseconds timeout) {
  std::error_code ec;
  std::filesystem::create_directories(options_.backing, ec);
  if (!ec) std::filesystem::create_directories(options_.mount, ec);
  if (ec) return ec;
  std::vector<std::string> args = {options_.binary.string(), options_.backing.string(), options_.mount.string(),
                                   "--control",              options_.control.string(), "--lease-ms",
                                   std::to_string(options_.lease.count())};
  if (auto spawn_ec = spawn_child(args, {}, options_.log, "tandem-faultfs (check --faultfs)", pid_)) return spawn_ec;
  faultfs::control_client c;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return std::make_error_code(std::errc::no_such_device);  // it exited: FUSE unusable, see its log
    }
    if (!c.connect(options_.control, std::chrono::milliseconds(50))) {
      std::string reply;
      if (!c.call("status", reply, std::chrono::seconds(5)) && reply.rfind("ok", 0) == 0) return {};
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::make_error_code(std::errc::timed_out);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string faultfs_mount::call(const std::string& request, std::chrono::milliseconds timeout) {
  faultfs::control_client c;
  if (auto ec = c.connect(options_.control, std::chrono::seconds(5)))
    throw std::system_error(ec, "tandem-faultfs control socket " + options_.control.string());
  std::string reply;
  if (auto ec = c.call(request, reply, timeout)) throw std::system_error(ec, "tandem-faultfs request '" + request + "'");
  return reply;
}

std::string faultfs_mount::must(const std::string& request) {
  auto reply = call(request);
  if (reply != "ok" && reply.rfind("ok ", 0) != 0)
    throw std::runtime_error("tandem-faultfs refused '" + request + "': " + reply);
  return reply;
}

void faultfs_mount::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = 0;
  // The daemon unmounts on SIGTERM; after a SIGKILL auto_unmount does it. Make sure anyway,
  // lazily, so a drill never leaves a dead mount in its work directory.
  std::string cmd = "fusermount3 -uz '" + options_.mount.string() + "' >/dev/null 2>&1";
  (void)!std::system(cmd.c_str());
}

}  // namespace tandem::drill
