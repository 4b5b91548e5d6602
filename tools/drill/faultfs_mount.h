// faultfs_mount: the tandem-faultfs process under a drill's store (tools/faultfs).
//
// The drill runs its brokers on MOUNT, a tandem-faultfs view of BACKING, and talks to the
// daemon over its control socket to inflict the file-system kinds (fault_kind.h). The
// daemon is a child like the brokers (own process group, PR_SET_PDEATHSIG, see fleet.h for
// why start() must run on the drill's main thread); mounted with auto_unmount, so a drill
// killed with -9 leaves no dead mount behind.
//
// Threads: start() and stop() on the drill's main thread; call() from any one thread at a
// time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>

namespace tandem::drill {

struct faultfs_options {
  std::filesystem::path binary;   // tandem-faultfs
  std::filesystem::path backing;  // SOURCE: where the bytes really live
  std::filesystem::path mount;    // MOUNTPOINT: the brokers' --store
  std::filesystem::path control;  // the control socket
  std::filesystem::path log;      // the daemon's stdout and stderr
  std::chrono::milliseconds lease{0};
};

class faultfs_mount {
 public:
  explicit faultfs_mount(faultfs_options options);
  ~faultfs_mount();  // stop()
  faultfs_mount(const faultfs_mount&) = delete;
  faultfs_mount& operator=(const faultfs_mount&) = delete;

  // Starts the daemon and waits (up to `timeout`) until it answers on its socket. An error
  // names what failed; the daemon's log says why.
  std::error_code start(std::chrono::milliseconds timeout);
  // One control request; the reply line ("ok ..." or "error ..."). Transport errors are
  // std::system_error exceptions: the drill cannot go on without its file system.
  std::string call(const std::string& request, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // call() that must answer "ok"; throws std::runtime_error with the reply otherwise.
  std::string must(const std::string& request);
  // SIGTERM, wait, then a lazy unmount if the daemon did not clean up. Idempotent.
  void stop();

  const faultfs_options& options() const { return options_; }
  pid_t pid() const { return pid_; }

 private:
  faultfs_options options_;
  pid_t pid_ = 0;
};

}  // namespace tandem::drill
