// Helpers shared by the journal unit tests: temp dirs, waiting for completions with a
// deadline, a file system wrapper that fails chosen operations.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>

#include "journal/fs/file_system.h"

namespace tandem::journal::test {

class temp_dir {
 public:
  temp_dir() {
    std::string templ = (std::filesystem::temp_directory_path() / "tandem-journal-XXXXXX").string();
    char* p = ::mkdtemp(templ.data());
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Counts completions and waits for a number of them with a deadline (never a bare sleep).
class waiter {
 public:
  void done() {
    std::lock_guard lk(mu_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for(std::size_t n, std::chrono::seconds deadline = std::chrono::seconds(30)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, deadline, [&] { return count_ >= n; });
  }
  std::size_t count() {
    std::lock_guard lk(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t count_ = 0;
};

// An owner thread the test drives by hand: options.post queues, run_until() runs the queued
// functions on the calling thread until a condition holds (with a deadline). Completions
// then run only when the test says so, which makes "the add is still in flight" certain.
class manual_loop {
 public:
  std::function<void(std::function<void()>)> poster() {
    return [this](std::function<void()> f) {
      std::lock_guard lk(mu_);
      queue_.push_back(std::move(f));
      cv_.notify_all();
    };
  }
  template <class Pred>
  bool run_until(Pred done, std::chrono::seconds deadline = std::chrono::seconds(30)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
      std::function<void()> f;
      {
        std::unique_lock lk(mu_);
        if (!cv_.wait_until(lk, until, [&] { return !queue_.empty(); })) return false;
        f = std::move(queue_.front());
        queue_.erase(queue_.begin());
      }
      f();
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> queue_;
};

// Wraps the POSIX file system; fails every segment fdatasync once `fail_sync` is set, or
// every segment allocate once `fail_allocate` is set. hold_syncs() makes segment
// fdatasyncs wait until release_syncs(), so a test can hold the writer inside a group
// commit while it queues more appends.
class failing_fs final : public fs::file_system {
 public:
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_allocate{false};
  std::atomic<int> syncs{0};

  void hold_syncs() {
    std::lock_guard lk(gate_mu_);
    held_ = true;
  }
  void release_syncs() {
    std::lock_guard lk(gate_mu_);
    held_ = false;
    gate_cv_.notify_all();
  }
  // Waits until a segment fdatasync is waiting at the gate.
  bool wait_for_held_sync(std::chrono::seconds deadline = std::chrono::seconds(30)) {
    std::unique_lock lk(gate_mu_);
    return gate_cv_.wait_for(lk, deadline, [&] { return waiting_ > 0; });
  }
  void gate(const std::filesystem::path& p) {
    if (p.extension() != ".seg") return;
    std::unique_lock lk(gate_mu_);
    if (!held_) return;
    ++waiting_;
    gate_cv_.notify_all();
    gate_cv_.wait_for(lk, std::chrono::seconds(30), [&] { return !held_; });
    --waiting_;
  }

  class failing_file final : public fs::file {
   public:
    failing_file(std::unique_ptr<fs::file> f, failing_fs& owner) : f_(std::move(f)), owner_(owner) {}
    fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t off) override { return f_->read_at(out, off); }
    std::error_code write_at(std::span<const std::byte> d, std::uint64_t off) override { return f_->write_at(d, off); }
    std::error_code write_at(std::span<const std::span<const std::byte>> b, std::uint64_t off) override {
      return f_->write_at(b, off);
    }
    std::error_code sync() override {
      owner_.gate(path());
      ++owner_.syncs;
      if (owner_.fail_sync && path().extension() == ".seg") return std::make_error_code(std::errc::io_error);
      return f_->sync();
    }
    std::error_code allocate(std::uint64_t off, std::uint64_t len) override {
      if (owner_.fail_allocate) return std::make_error_code(std::errc::no_space_on_device);
      return f_->allocate(off, len);
    }
    std::error_code truncate(std::uint64_t size) override { return f_->truncate(size); }
    fs::result<std::uint64_t> size() override { return f_->size(); }
    int native_handle() const override { return f_->native_handle(); }
    const std::filesystem::path& path() const override { return f_->path(); }

   private:
    std::unique_ptr<fs::file> f_;
    failing_fs& owner_;
  };

  fs::result<std::unique_ptr<fs::file>> open(const std::filesystem::path& p, fs::open_mode m) override {
    auto f = fs::posix_file_system().open(p, m);
    if (!f) return f.error();
    return std::unique_ptr<fs::file>(std::make_unique<failing_file>(std::move(f.value()), *this));
  }
  std::error_code rename(const std::filesystem::path& a, const std::filesystem::path& b) override {
    return fs::posix_file_system().rename(a, b);
  }
  std::error_code remove(const std::filesystem::path& p) override { return fs::posix_file_system().remove(p); }
  std::error_code create_directories(const std::filesystem::path& p) override {
    return fs::posix_file_system().create_directories(p);
  }
  std::error_code sync_dir(const std::filesystem::path& d) override { return fs::posix_file_system().sync_dir(d); }
  fs::result<std::vector<std::string>> list(const std::filesystem::path& d) override {
    return fs::posix_file_system().list(d);
  }
  fs::result<bool> exists(const std::filesystem::path& p) override { return fs::posix_file_system().exists(p); }

 private:
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool held_ = false;
  int waiting_ = 0;
};

}  // namespace tandem::journal::test
