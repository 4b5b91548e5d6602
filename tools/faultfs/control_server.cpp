#include "tools/faultfs/control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tools/faultfs/control_protocol.h"

namespace tandem::faultfs {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

bool send_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

control_server::control_server(std::filesystem::path socket, handler h) : path_(std::move(socket)), handler_(std::move(h)) {}

control_server::~control_server() { stop(); }

std::error_code control_server::start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = path_.string();
  if (path.size() >= sizeof addr.sun_path) return std::make_error_code(std::errc::filename_too_long);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());  // a socket file left by a killed daemon
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return last_error();
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0) {
    auto ec = last_error();
    ::close(listen_fd_);
    listen_fd_ = -1;
    return ec;
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) return last_error();
  acceptor_ = std::thread([this] { accept_loop(); });
  return {};
}

void control_server::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard g(mutex_);
    for (int fd : connection_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : connections_) {
    if (t.joinable()) t.join();
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void control_server::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard g(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    connection_fds_.push_back(fd);
    connections_.emplace_back([this, fd] { serve(fd); });
  }
}

void control_server::serve(int fd) {
  std::string buffer;
  char chunk[4096];
  for (;;) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t nl;
    bool ok = true;
    while (ok && (nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      ok = send_all(fd, handler_(line) + "\n");
    }
    if (!ok) break;
    if (buffer.size() > max_request_bytes) {
      send_all(fd, "error request longer than 4096 bytes\n");
      break;
    }
  }
  std::lock_guard g(mutex_);
  connection_fds_.erase(std::remove(connection_fds_.begin(), connection_fds_.end(), fd), connection_fds_.end());
  ::close(fd);
}

}  // namespace tandem::faultfs
