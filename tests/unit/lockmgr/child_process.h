// A child process for the lockmgr tests: spawned with pipes on stdin and stdout, read line
// by line with a deadline (never a bare sleep), killed and reaped by the destructor.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace tandem::lockmgr::test {

class child_process {
 public:
  explicit child_process(std::vector<std::string> argv) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0]);
  }
  ~child_process() {
    if (stdin_ >= 0) ::close(stdin_);
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
    ::close(stdout_);
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }

  // The next line, or nullopt at EOF or when the deadline passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        lines_.push_back(line);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{stdout_, POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) continue;
      char buf[4096];
      ssize_t got = ::read(stdout_, buf, sizeof buf);
      if (got <= 0) return std::nullopt;  // EOF: the child exited
      buffer_.append(buf, static_cast<std::size_t>(got));
    }
  }

  // Reads lines until one starts with `prefix`; returns it, or nullopt at EOF/deadline.
  std::optional<std::string> wait_for(const std::string& prefix, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto line = read_line(left);
      if (!line) return std::nullopt;
      if (line->rfind(prefix, 0) == 0) return line;
    }
  }

  void send(const std::string& line) {
    std::string s = line + "\n";
    ssize_t ignored = ::write(stdin_, s.data(), s.size());
    (void)ignored;
  }
  void close_stdin() {
    ::close(stdin_);
    stdin_ = -1;
  }
  void signal(int sig) { ::kill(pid_, sig); }

  // Exit status (or 128 + signal), or nullopt if still running at the deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (reaped_) return status_;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int st;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      // Poll the child's stdout for EOF as the wake-up: it closes when the child exits.
      pollfd p{stdout_, POLLIN, 0};
      ::poll(&p, 1, 5);
      if (p.revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        ssize_t got = ::read(stdout_, buf, sizeof buf);
        if (got > 0) buffer_.append(buf, static_cast<std::size_t>(got));
      }
    }
  }

  const std::vector<std::string>& lines() const { return lines_; }
  std::string remaining_output() const { return buffer_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffer_;
  std::vector<std::string> lines_;
  bool reaped_ = false;
  int status_ = 0;
};

// Value of `key=` in a probe line ("acquired epoch=3 ..."), or -1.
inline long long field(const std::string& line, const std::string& key) {
  auto pos = line.find(" " + key + "=");
  if (pos == std::string::npos) return -1;
  return std::stoll(line.substr(pos + key.size() + 2));
}
inline std::string text_field(const std::string& line, const std::string& key) {
  auto pos = line.find(" " + key + "=");
  if (pos == std::string::npos) return {};
  auto start = pos + key.size() + 2;
  return line.substr(start, line.find(' ', start) - start);
}

}  // namespace tandem::lockmgr::test
