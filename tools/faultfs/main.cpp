// tandem-faultfs: a FUSE pass-through file system that fails, freezes and loses power on
// command, so brokers can be drilled against a store that misbehaves (passthrough.h).
//
//   tandem-faultfs SOURCE MOUNTPOINT --control SOCKET [--locks daemon|kernel] [--lease-ms N]
//   tandem-faultfs ctl SOCKET REQUEST...        e.g.  tandem-faultfs ctl /run/ffs.sock fail fsync eio
//
// It stays in the foreground until SIGTERM/SIGINT or `fusermount3 -u MOUNTPOINT`, then
// unmounts. The control socket appears once the mount is in place, so a caller waits for
// it (tandem-drill and the tests send `status` until it answers). Requests and replies:
// control_protocol.h. Exit status: 0 after an unmount; 1 when it cannot serve (bad SOURCE,
// control socket); 2 on bad usage; 3 when the kernel refused the mount (no /dev/fuse, FUSE
// not permitted here: callers may treat that as "cannot test here"). `ctl` exits 0 on "ok",
// 1 on a refused request or no daemon.
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "tools/faultfs/control_client.h"
#include "tools/faultfs/control_server.h"
#include "tools/faultfs/passthrough.h"

namespace {

using namespace tandem::faultfs;

constexpr int exit_mount_refused = 3;

int run_ctl(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: tandem-faultfs ctl SOCKET REQUEST...  (requests: fail, clear, freeze, thaw, crash, "
                 "power-on, lease, status; see control_protocol.h)\n";
    return 2;
  }
  std::string request;
  for (int i = 3; i < argc; ++i) {
    if (!request.empty()) request += ' ';
    request += argv[i];
  }
  std::string reply;
  auto ec = control_call(argv[2], request, &reply);
  if (!reply.empty()) std::cout << reply << "\n";
  if (ec && reply.empty()) std::cerr << "tandem-faultfs ctl: " << argv[2] << ": " << ec.message() << "\n";
  return ec ? 1 : 0;
}

int run_mount(const passthrough_options& options, const std::string& mountpoint, const std::string& control,
              const std::vector<std::string>& fuse_options, bool debug) {
  std::unique_ptr<passthrough> fs;
  try {
    fs = std::make_unique<passthrough>(options);
  } catch (const std::exception& e) {
    std::cerr << "tandem-faultfs: " << e.what() << "\n";
    return 1;
  }
  std::vector<std::string> args = {"tandem-faultfs", "-o", "fsname=tandem-faultfs:" + options.source.string(),
                                   "-o", "subtype=tandem-faultfs", "-o", "auto_unmount"};
  for (const auto& o : fuse_options) {
    args.push_back("-o");
    args.push_back(o);
  }
  if (debug) args.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const auto& ops = fs->operations();
  fuse_session* se = fuse_session_new(&fargs, &ops, sizeof ops, fs.get());
  if (!se) {
    std::cerr << "tandem-faultfs: bad FUSE options\n";
    return 2;
  }
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    return 1;
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    std::cerr << "tandem-faultfs: cannot mount " << mountpoint
              << " (is /dev/fuse there and usable? is Debian's fuse3 installed for fusermount3?)\n";
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return exit_mount_refused;
  }
  control_server server(control, [&](std::string_view line) {
    std::string why;
    auto request = parse_request(line, why);
    return request ? fs->execute(*request) : "error " + why;
  });
  int rc = 0;
  if (auto ec = server.start()) {
    std::cerr << "tandem-faultfs: cannot listen on " << control << ": " << ec.message() << "\n";
    rc = 1;
  } else {
    std::atomic<bool> stop{false};
    std::thread ticker([&] {
      while (!stop) {
        fs->tick();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    std::printf("tandem-faultfs: %s on %s, control %s, locks %s, lease %lld ms\n", options.source.c_str(),
                mountpoint.c_str(), control.c_str(), options.locks == lock_mode::daemon ? "daemon" : "kernel",
                static_cast<long long>(options.lease.count()));
    std::fflush(stdout);
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 64);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    rc = fuse_session_loop_mt(se, cfg) < 0 ? 1 : 0;
    fuse_loop_cfg_destroy(cfg);
    stop = true;
    ticker.join();
    server.stop();
  }
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  fuse_opt_free_args(&fargs);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "ctl") return run_ctl(argc, argv);
  std::string source, mountpoint, control, locks = "daemon";
  unsigned lease_ms = 0;
  std::vector<std::string> fuse_options;
  bool debug = false;
  CLI::App app{"tandem-faultfs: a FUSE pass-through file system that can fail writes and fsyncs (EIO, ENOSPC), "
               "freeze, lose every unsynced byte on a simulated power loss, and hold locks with an NFS-like lease.\n"
               "Control it with: tandem-faultfs ctl SOCKET REQUEST (fail, clear, freeze, thaw, crash, power-on, lease, status)"};
  app.add_option("source", source, "directory to pass through to")->required()->check(CLI::ExistingDirectory);
  app.add_option("mountpoint", mountpoint, "where to mount it")->required()->check(CLI::ExistingDirectory);
  app.add_option("--control", control, "Unix socket for control requests")->required();
  app.add_option("--locks", locks, "who arbitrates fcntl/OFD locks: daemon (leases, revocation) or kernel (local, like ext4)")
      ->check(CLI::IsMember({"daemon", "kernel"}))
      ->capture_default_str();
  app.add_option("--lease-ms", lease_ms, "lock lease (daemon locks): a lock not renewed for this long can be taken over; 0: never")
      ->capture_default_str();
  app.add_option("-o", fuse_options, "extra FUSE mount option (repeat)");
  app.add_flag("--debug", debug, "libfuse debug output");
  CLI11_PARSE(app, argc, argv);
  passthrough_options options;
  options.source = source;
  options.locks = locks == "kernel" ? lock_mode::kernel : lock_mode::daemon;
  options.lease = std::chrono::milliseconds(lease_ms);
  return run_mount(options, mountpoint, control, fuse_options, debug);
}
