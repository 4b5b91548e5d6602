// control_client: talks to a running tandem-faultfs over its control socket
// (control_protocol.h). Used by tandem-drill, the tests and `tandem-faultfs ctl`.
//
// Threads: one client per thread; every call blocks with a deadline.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace tandem::faultfs {

class control_client {
 public:
  control_client() = default;
  ~control_client();
  control_client(control_client&& o) noexcept;
  control_client& operator=(control_client&& o) noexcept;
  control_client(const control_client&) = delete;
  control_client& operator=(const control_client&) = delete;

  std::error_code connect(const std::filesystem::path& socket, std::chrono::milliseconds timeout);
  bool connected() const { return fd_ >= 0; }
  // Sends `request` (one line, no '\n') and reads the reply line into `reply`. The error is
  // a transport error; a refused request is a reply starting with "error ".
  std::error_code call(std::string_view request, std::string& reply, std::chrono::milliseconds timeout);
  void close();

 private:
  int fd_ = -1;
  std::string buffer_;
};

// Connects, sends one request and checks that the reply starts with "ok". `reply` (if
// given) gets the reply line. A refused request is std::errc::invalid_argument.
std::error_code control_call(const std::filesystem::path& socket, std::string_view request, std::string* reply = nullptr,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace tandem::faultfs
