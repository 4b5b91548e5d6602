// A store in a temp dir with an event log, and helpers to append and checkpoint with a
// deadline; shared by the store tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "journal/identity.h"
#include "journal/store.h"
#include "test_util.h"

namespace tandem::journal::test {

namespace fsys = std::filesystem;

struct outcome {
  std::error_code ec;
  std::uint64_t lsn = 0;
};

// Appends and waits (with a deadline) for the completion.
inline outcome append_wait(store& s, record r) {
  auto p = std::make_shared<std::promise<outcome>>();
  auto f = p->get_future();
  s.append(std::move(r), [p](std::error_code ec, std::uint64_t lsn) { p->set_value({ec, lsn}); });
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  return f.get();
}

inline void checkpoint_wait(store& s) {
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto f = p->get_future();
  s.checkpoint([p](std::error_code ec, std::uint64_t) { p->set_value(ec); });
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  REQUIRE(!f.get());
}

inline message_add make_message(std::uint64_t seq, std::vector<std::string> targets, std::size_t body_bytes = 100) {
  message_add m;
  m.msg_seq = seq;
  m.targets = std::move(targets);
  m.message_id = "ID:" + std::to_string(seq);
  m.producer_id = "p";
  m.producer_seq = seq;
  m.priority = static_cast<std::uint8_t>(seq % 10);
  m.expires_ms = static_cast<std::int64_t>(seq) * 1000;
  m.headers = {{"h", std::to_string(seq)}};
  m.body.assign(body_bytes, static_cast<char>('a' + seq % 26));
  return m;
}

struct fixture {
  test::temp_dir dir;
  std::mutex mu;
  std::vector<event> events;

  fixture() { REQUIRE(create_store(tandem::fs::posix_file_system(), dir.path())); }

  options opts(std::uint64_t segment_bytes = 64 * 1024) {
    options o;
    o.segment_bytes = segment_bytes;
    o.broker_name = "test";
    o.report = [this](const event& e) {
      std::lock_guard lk(mu);
      events.push_back(e);
    };
    return o;
  }
  std::unique_ptr<store> open(options o, recovery_report* out = nullptr) { return open_at(dir.path(), std::move(o), out); }
  // Opens another store directory (a copy of this one) with these options.
  std::unique_ptr<store> open_at(const fsys::path& at, options o, recovery_report* out = nullptr) {
    recovery_report rep;
    auto s = store::open(at, std::move(o), rep);
    if (!s) FAIL("open failed: ", s.error().message(), " refused at ", rep.refused ? rep.refused->reason : "");
    if (out) *out = rep;
    return std::move(s.value());
  }
  std::size_t count(event_kind k) {
    std::lock_guard lk(mu);
    return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](auto& e) { return e.kind == k; }));
  }
  fsys::path jdir() const { return dir.path() / "journal"; }
  std::vector<fsys::path> files(std::string_view ext) const {
    std::vector<fsys::path> out;
    for (auto& e : fsys::directory_iterator(jdir()))
      if (e.path().extension() == ext) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  void remove_checkpoints() {
    for (auto& p : files(".ckpt")) fsys::remove(p);
  }
};

// The live (target -> msg_seqs) content of an index.
inline std::map<std::string, std::set<std::uint64_t>> live_set(const index& idx) {
  std::map<std::string, std::set<std::uint64_t>> out;
  for (const auto& [t, m] : idx.targets())
    for (const auto& [seq, ref] : m) out[t].insert(seq);
  return out;
}

}  // namespace tandem::journal::test
