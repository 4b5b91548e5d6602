// Small helpers the fault tests share: opening a store on a test file system and waiting
// for appends with a deadline (never a bare sleep).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "journal/records.h"
#include "journal/store.h"

namespace tandem::fault {

// Result of one append as its completion reported it.
struct append_outcome {
  std::error_code ec;
  std::uint64_t lsn = 0;
  bool done = false;
};

// Counts completions of appends issued without waiting, so a test can wait for all of them.
class completion_tracker {
 public:
  // A completion that records into slot `i` (slots are created on demand).
  journal::completion slot(std::size_t i) {
    std::lock_guard lock(mu_);
    if (outcomes_.size() <= i) outcomes_.resize(i + 1);
    ++issued_;
    return [this, i](std::error_code ec, std::uint64_t lsn) {
      std::lock_guard lock(mu_);
      outcomes_[i] = {ec, lsn, true};
      ++completed_;
      cv_.notify_all();
    };
  }
  // Waits until every issued completion ran; false on timeout.
  bool wait_all(std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return completed_ == issued_; });
  }
  std::vector<append_outcome> outcomes() const {
    std::lock_guard lock(mu_);
    return outcomes_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<append_outcome> outcomes_;
  std::size_t issued_ = 0;
  std::size_t completed_ = 0;
};

// Appends and waits for the completion (deadline 30 s: a hang is a failure, not a wait).
inline append_outcome append_wait(journal::store& s, journal::record r) {
  completion_tracker t;
  s.append(std::move(r), t.slot(0));
  if (!t.wait_all()) throw std::runtime_error("append did not complete within 30 s");
  return t.outcomes()[0];
}

// Checkpoint and wait.
inline std::error_code checkpoint_wait(journal::store& s) {
  completion_tracker t;
  s.checkpoint(t.slot(0));
  if (!t.wait_all()) throw std::runtime_error("checkpoint did not complete within 30 s");
  return t.outcomes()[0].ec;
}

inline journal::message_add make_message(std::uint64_t msg_seq, std::vector<std::string> targets,
                                         std::size_t body_bytes, std::string producer = {},
                                         std::uint64_t producer_seq = 0) {
  journal::message_add m;
  m.msg_seq = msg_seq;
  m.targets = std::move(targets);
  m.message_id = "m-" + std::to_string(msg_seq);
  m.producer_id = std::move(producer);
  m.producer_seq = producer_seq;
  m.headers = {{"content-type", "text/plain"}};
  m.body.reserve(body_bytes);
  for (std::size_t i = 0; i < body_bytes; ++i) m.body.push_back(static_cast<char>('a' + (msg_seq + i) % 26));
  return m;
}

}  // namespace tandem::fault
