// Journal stores for tests: creating one on the real or the fault file system, opening it,
// appending and checkpointing with a deadline, test messages, and the events a store
// reports. Failures throw std::runtime_error naming the step (doctest reports it).
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "journal/identity.h"
#include "journal/records.h"
#include "journal/store.h"
#include "tests/support/completion_tracker.h"

namespace tandem::test {

// Creates a store at `dir` on `fs`, its directories made and synced first so that a
// fault_file_system crash keeps them.
inline journal::identity make_store(fs::file_system& fs, const std::filesystem::path& dir) {
  if (auto ec = fs.create_directories(dir)) throw std::runtime_error("mkdir " + dir.string() + ": " + ec.message());
  for (auto p = dir.parent_path(); !p.empty(); p = p.parent_path()) {
    if (auto ec = fs.sync_dir(p)) throw std::runtime_error("sync " + p.string() + ": " + ec.message());
    if (p == p.root_path()) break;
  }
  auto made = journal::create_store(fs, dir);
  if (!made) throw std::runtime_error("create_store " + dir.string() + ": " + made.error().message());
  return made.value();
}

// store::open's three results side by side, for tests that expect it to fail.
struct opened_store {
  std::unique_ptr<journal::store> store;
  journal::recovery_report report;
  std::error_code error;
};

inline opened_store open_store(const std::filesystem::path& dir, journal::options o) {
  opened_store r;
  auto s = journal::store::open(dir, std::move(o), r.report);
  if (s)
    r.store = std::move(s.value());
  else
    r.error = s.error();
  return r;
}

// Opens or throws, naming the error and where recovery refused.
inline std::unique_ptr<journal::store> open_ok(const std::filesystem::path& dir, journal::options o,
                                               journal::recovery_report* report = nullptr) {
  auto r = open_store(dir, std::move(o));
  if (!r.store)
    throw std::runtime_error("store::open " + dir.string() + ": " + r.error.message() +
                             (r.report.refused ? " (refused at " + r.report.refused->file.string() + " offset " +
                                                     std::to_string(r.report.refused->offset) + ")"
                                               : ""));
  if (report) *report = r.report;
  return std::move(r.store);
}

// Appends and waits for the completion (the default inline post, or a post that runs on
// another thread).
inline outcome append_wait(journal::store& s, journal::record r) {
  completion_tracker t;
  s.append(std::move(r), t.slot(0));
  if (!t.wait_all()) throw std::runtime_error("append did not complete within the deadline");
  return t.outcomes()[0];
}

inline std::error_code checkpoint_wait(journal::store& s) {
  completion_tracker t;
  s.checkpoint(t.slot(0));
  if (!t.wait_all()) throw std::runtime_error("checkpoint did not complete within the deadline");
  return t.outcomes()[0].ec;
}

// A message on `targets` whose contents follow from msg_seq (so a read can be checked).
inline journal::message_add make_message(std::uint64_t msg_seq, std::vector<std::string> targets,
                                         std::size_t body_bytes = 100, std::string producer = {},
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

// The events a store reported (thread-safe: the writer thread reports too).
class event_log {
 public:
  journal::reporter reporter() {
    return [this](const journal::event& e) {
      std::lock_guard lock(mu_);
      events_.push_back(e);
    };
  }
  std::vector<journal::event> of(journal::event_kind k) const {
    std::lock_guard lock(mu_);
    std::vector<journal::event> v;
    for (const auto& e : events_)
      if (e.kind == k) v.push_back(e);
    return v;
  }
  std::size_t count(journal::event_kind k) const { return of(k).size(); }

 private:
  mutable std::mutex mu_;
  std::vector<journal::event> events_;
};

// The live (target -> msg_seqs) content of an index.
inline std::map<std::string, std::set<std::uint64_t>> live_set(const journal::live_index& idx) {
  std::map<std::string, std::set<std::uint64_t>> out;
  for (const auto& [t, m] : idx.targets())
    for (const auto& [seq, ref] : m) out[t].insert(seq);
  return out;
}

}  // namespace tandem::test
