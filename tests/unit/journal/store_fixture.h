// The journal unit tests' fixture: a store in a temp dir with its event log. The general
// helpers (temp dirs, completion tracking, an owner queue, the fault file system, append
// and checkpoint with a deadline, test messages) come from tests/support.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "journal/identity.h"
#include "journal/store.h"
#include "tests/support/completion_tracker.h"
#include "tests/support/fault_file_system.h"
#include "tests/support/owner_queue.h"
#include "tests/support/store_factory.h"
#include "tests/support/temp_dir.h"

namespace tandem::journal::test {

namespace fsys = std::filesystem;
using tandem::test::append_wait;
using tandem::test::completion_tracker;
using tandem::test::event_log;
using tandem::test::fault_file_system;
using tandem::test::live_set;
using tandem::test::make_message;
using tandem::test::op;
using tandem::test::outcome;
using tandem::test::owner_queue;
using tandem::test::temp_dir;

inline void checkpoint_wait(store& s) { REQUIRE(!tandem::test::checkpoint_wait(s)); }

struct fixture {
  temp_dir dir{"tandem-journal"};
  event_log log;

  fixture() { tandem::test::make_store(tandem::fs::posix_file_system(), dir.path()); }

  options opts(std::uint64_t segment_bytes = 64 * 1024) {
    options o;
    o.segment_bytes = segment_bytes;
    o.broker_name = "test";
    o.report = log.reporter();
    return o;
  }
  std::unique_ptr<store> open(options o, recovery_report* out = nullptr) { return open_at(dir.path(), std::move(o), out); }
  // Opens another store directory (a copy of this one) with these options.
  std::unique_ptr<store> open_at(const fsys::path& at, options o, recovery_report* out = nullptr) {
    return tandem::test::open_ok(at, std::move(o), out);
  }
  // A store on the fault file system instead (its own "/store"), with these options.
  std::unique_ptr<store> open_on(fault_file_system& fs, options o) {
    tandem::test::make_store(fs, "/store");
    o.fs = &fs;
    return tandem::test::open_ok("/store", std::move(o));
  }
  std::size_t count(event_kind k) const { return log.count(k); }
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

}  // namespace tandem::journal::test
