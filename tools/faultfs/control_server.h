// control_server: the Unix socket of tandem-faultfs (control_protocol.h). One thread
// accepts; each connection gets a thread that reads request lines and writes the handler's
// reply lines, so a client blocked on a long request (a crash restoring big files) does not
// hold up another one.
//
// Threads: start() and stop() from the owner's thread; `handler` runs on connection threads,
// possibly several at once.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace tandem::faultfs {

class control_server {
 public:
  using handler = std::function<std::string(std::string_view line)>;

  control_server(std::filesystem::path socket, handler h);
  ~control_server();  // stop()
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  // Binds (replacing a stale socket file) and starts accepting.
  std::error_code start();
  // Closes the socket, ends every connection, joins the threads, removes the socket file.
  void stop();

 private:
  void accept_loop();
  void serve(int fd);

  std::filesystem::path path_;
  handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::vector<int> connection_fds_;
};

}  // namespace tandem::faultfs
