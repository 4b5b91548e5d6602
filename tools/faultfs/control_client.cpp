#include "tools/faultfs/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

namespace tandem::faultfs {
namespace {

using clock = std::chrono::steady_clock;

std::error_code last_error() { return {errno, std::generic_category()}; }

int remaining_ms(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

control_client::~control_client() { close(); }

control_client::control_client(control_client&& o) noexcept : fd_(std::exchange(o.fd_, -1)), buffer_(std::move(o.buffer_)) {}

control_client& control_client::operator=(control_client&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    buffer_ = std::move(o.buffer_);
  }
  return *this;
}

void control_client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

std::error_code control_client::connect(const std::filesystem::path& socket, std::chrono::milliseconds timeout) {
  close();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = socket.string();
  if (path.size() >= sizeof addr.sun_path) return std::make_error_code(std::errc::filename_too_long);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // The daemon creates its socket only once it is mounted: retry until then.
  const auto deadline = clock::now() + timeout;
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return last_error();
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      fd_ = fd;
      return {};
    }
    auto ec = last_error();
    ::close(fd);
    if ((ec != std::errc::no_such_file_or_directory && ec != std::errc::connection_refused) || clock::now() >= deadline)
      return ec;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::error_code control_client::call(std::string_view request, std::string& reply, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return std::make_error_code(std::errc::not_connected);
  const auto deadline = clock::now() + timeout;
  std::string line(request);
  line += '\n';
  std::size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    sent += static_cast<std::size_t>(n);
  }
  for (;;) {
    auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      reply = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return {};
    }
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (rc == 0) return std::make_error_code(std::errc::timed_out);
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) return std::make_error_code(std::errc::connection_reset);
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::error_code control_call(const std::filesystem::path& socket, std::string_view request, std::string* reply,
                             std::chrono::milliseconds timeout) {
  control_client c;
  if (auto ec = c.connect(socket, timeout)) return ec;
  std::string line;
  if (auto ec = c.call(request, line, timeout)) return ec;
  if (reply) *reply = line;
  if (line != "ok" && line.rfind("ok ", 0) != 0) return std::make_error_code(std::errc::invalid_argument);
  return {};
}

}  // namespace tandem::faultfs
