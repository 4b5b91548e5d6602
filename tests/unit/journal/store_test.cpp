#include <doctest/doctest.h>

#include <malloc.h>

#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>

#include "journal/errc.h"
#include "journal/format.h"
#include "journal/reader.h"
#include "journal/store.h"
#include "store_fixture.h"
#include "tests/tandem_skip.h"

using namespace tandem::journal;
using namespace tandem::journal::test;
namespace fsys = std::filesystem;

namespace {

// End of the last valid record, found with the read-only scanner.
struct tail_info {
  fsys::path file;
  std::uint64_t end = 0;
  std::uint64_t last_record_offset = 0;
};
tail_info find_tail(const fsys::path& dir) {
  tail_info t;
  auto r = scan(tandem::fs::posix_file_system(), dir, {false, 0}, [&](const scan_item& i) {
    if (i.kind == scan_item_kind::record) {
      t.file = i.file;
      t.last_record_offset = i.offset;
      t.end = i.offset + i.record_bytes;
    }
    return true;
  });
  REQUIRE(r);
  return t;
}

void poke(const fsys::path& file, std::uint64_t offset, std::string_view bytes) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f);
}

std::vector<std::byte> read_bytes(const fsys::path& file, std::uint64_t offset, std::size_t n) {
  std::ifstream f(file, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  std::vector<std::byte> out(n);
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
  REQUIRE(f);
  return out;
}

void write_bytes(const fsys::path& file, std::uint64_t offset, std::span<const std::byte> bytes) {
  poke(file, offset, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// Re-encodes the header of the record at `offset` with `flags` (checksum recomputed), as
// if the writer had set them: e.g. to make several records one group commit.
void set_record_flags(const fsys::path& file, std::uint64_t offset, std::uint8_t flags) {
  constexpr auto hdr = format::record_header_bytes;
  auto h = read_bytes(file, offset, hdr);
  auto r = parse_record_header(std::span<const std::byte, hdr>(h.data(), hdr));
  auto payload = read_bytes(file, offset + hdr, r.length);
  encode_record_header(r.type, r.lsn, r.epoch, payload, std::span<std::byte, hdr>(h.data(), hdr), flags);
  write_bytes(file, offset, h);
}

// Offsets of every valid record in `file`, in order.
std::vector<std::uint64_t> record_offsets(const fsys::path& dir, const fsys::path& file) {
  std::vector<std::uint64_t> out;
  REQUIRE(scan(tandem::fs::posix_file_system(), dir, {false, 0}, [&](const scan_item& i) {
    if (i.kind == scan_item_kind::record && i.file == file) out.push_back(i.offset);
    return true;
  }));
  return out;
}

char peek(const fsys::path& file, std::uint64_t offset) {
  std::ifstream f(file, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  return c;
}

}  // namespace

TEST_CASE("open refuses a directory that is not a store or is another store") {
  test::temp_dir d;
  recovery_report rep;
  CHECK(store::open(d.path(), {}, rep).error() == errc::not_a_store);
  REQUIRE(create_store(tandem::fs::posix_file_system(), d.path()));
  options o;
  o.expected_store_id = store_id::generate();
  CHECK(store::open(d.path(), o, rep).error() == errc::wrong_store);
}

// The broker's lock manager may leave its first mastership check to this call (lockmgr::
// options::check_before_acquire_returns): open must not write before it.
TEST_CASE("open asks the fence once it has read and before it writes; a refusal leaves the store as it was") {
  fixture fx;
  auto o = fx.opts();
  {
    auto s = fx.open(o);
    REQUIRE(!append_wait(*s, make_message(1, {"/queue/a"}, 100, "p", 1)).ec);
  }
  const auto leftover = fx.jdir() / (std::string("checkpoint-00000000000000ff.ckpt") + std::string(format::temp_suffix));
  { std::ofstream(leftover) << "a temporary a crash left"; }
  auto listing = [&] {
    std::map<std::string, std::uintmax_t> files;
    for (auto& e : fsys::directory_iterator(fx.jdir())) files[e.path().filename().string()] = e.file_size();
    return files;
  };
  const auto before = listing();
  int fences = 0;
  o.fence = [&] {
    ++fences;
    return std::make_error_code(std::errc::permission_denied);
  };
  recovery_report rep;
  auto refused = store::open(fx.dir.path(), o, rep);
  REQUIRE(!refused);
  CHECK(refused.error() == std::errc::permission_denied);
  CHECK(fences == 1);
  CHECK(listing() == before);  // nothing removed, repaired or created

  o.fence = [&] {
    ++fences;
    return std::error_code{};
  };
  auto s = fx.open(o);
  CHECK(fences > 1);
  CHECK(!fsys::exists(leftover));
  CHECK(s->index().live_messages() == 1);
}

TEST_CASE("a temporary gone between recovery's listing and its removal does not fail the open") {
  // The open removes the temporaries its reading listed, after the fence: one renamed or
  // removed meanwhile (a deposed master's checkpoint) is simply no longer there.
  fixture fx;
  auto o = fx.opts();
  { auto s = fx.open(o); }
  const auto gone = fx.jdir() / (std::string("checkpoint-00000000000000fe.ckpt") + std::string(format::temp_suffix));
  const auto left = fx.jdir() / (std::string("identity") + std::string(format::temp_suffix));
  { std::ofstream(gone) << "renamed before the open removes it"; }
  { std::ofstream(left) << "left by a crash"; }
  o.fence = [&] {
    fsys::remove(gone);
    return std::error_code{};
  };
  auto s = fx.open(o);
  CHECK(!fsys::exists(left));
  const auto removed = fx.log.of(event_kind::temp_file_removed);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].file == left);
}

TEST_CASE("every record type round trips through a real store and a reopen") {
  fixture fx;
  auto s = fx.open(fx.opts());
  durable_subscription sub{"client", "sub", "/topic/t", "a > 1"};
  auto sub_key = subscription_target("client", "sub");
  REQUIRE(!append_wait(*s, destination_create{"/queue/a"}).ec);
  REQUIRE(!append_wait(*s, durable_subscription_create{sub}).ec);
  auto m1 = make_message(1, {"/queue/a", sub_key}, 100, "p", 1);
  m1.body = std::string("with\0nul", 8);
  m1.expires_ms = 1000;
  m1.priority = 9;
  REQUIRE(!append_wait(*s, m1).ec);
  auto m2 = make_message(2, {"/queue/a"}, 100, "p", 2);
  auto m3 = make_message(3, {"/queue/b"}, 100, "p", 3);
  REQUIRE(!append_wait(*s, batch{{m2, m3, message_remove{"/queue/a", 1}}}).ec);
  REQUIRE(!append_wait(*s, destination_create{"/queue/gone"}).ec);
  REQUIRE(!append_wait(*s, destination_delete{"/queue/gone"}).ec);
  REQUIRE(!append_wait(*s, durable_subscription_create{{"c2", "s2", "/topic/u", ""}}).ec);
  REQUIRE(!append_wait(*s, durable_subscription_remove{{"c2", "s2", "/topic/u", ""}}).ec);
  CHECK(append_wait(*s, epoch_start{}).ec == errc::invalid_argument);
  auto check = [&](store& st) {
    const auto& idx = st.index();
    CHECK(idx.destinations() == std::set<std::string, std::less<>>{"/queue/a"});
    REQUIRE(idx.durable_subscriptions().size() == 1);
    CHECK(idx.durable_subscriptions().at(sub_key) == sub);
    auto live = live_set(idx);
    CHECK(live == std::map<std::string, std::set<std::uint64_t>>{{"/queue/a", {2}}, {"/queue/b", {3}}, {sub_key, {1}}});
    CHECK(idx.next_msg_seq() == 4);
    CHECK(idx.is_duplicate("p", 2));
    CHECK(!idx.is_duplicate("p", 99));
    auto r1 = st.read(sub_key, 1);
    REQUIRE(r1);
    CHECK(*r1.value() == m1);
    auto r3 = st.read("/queue/b", 3);
    REQUIRE(r3);
    CHECK(*r3.value() == m3);
    CHECK(st.read("/queue/a", 1).error() == errc::not_found);
  };
  check(*s);
  CHECK(!s->close());
  s.reset();
  auto again = fx.open(fx.opts());
  check(*again);
  again->close();
  again.reset();
  fx.remove_checkpoints();
  recovery_report rep;
  auto full = fx.open(fx.opts(), &rep);
  CHECK(!rep.from_checkpoint);
  check(*full);
}

TEST_CASE("group commit completes every callback once with increasing lsns") {
  fixture fx;
  fault_file_system counting;
  auto s = fx.open_on(counting, fx.opts(1 << 20));
  constexpr std::size_t n = 2000;
  std::mutex mu;
  std::vector<std::uint64_t> lsns;
  std::vector<int> calls(n + 1, 0);
  test::completion_tracker w;
  const auto syncs_before = counting.count(op::sync);
  for (std::size_t i = 1; i <= n; ++i) {
    s->append(make_message(i, {"q"}), [&, i](std::error_code ec, std::uint64_t lsn) {
      CHECK(!ec);
      {
        std::lock_guard lk(mu);
        lsns.push_back(lsn);
        calls[i]++;
      }
      w.done();
    });
  }
  REQUIRE(w.wait_for(n));
  std::lock_guard lk(mu);
  CHECK(lsns.size() == n);
  CHECK(std::is_sorted(lsns.begin(), lsns.end()));
  CHECK(std::adjacent_find(lsns.begin(), lsns.end()) == lsns.end());
  CHECK(lsns.back() - lsns.front() == n - 1);
  CHECK(std::all_of(calls.begin() + 1, calls.end(), [](int c) { return c == 1; }));
  // Grouping: far fewer fdatasyncs than appends, and the counters say so.
  CHECK(counting.count(op::sync) - syncs_before < n / 2);
  CHECK(s->index().live_messages() == n);
  const auto& st = s->stats();
  CHECK(st.group_records.load() == n + 1);  // and the epoch_start written at open
  CHECK(st.groups.load() < n / 2);
}

TEST_CASE("a lone appender never waits for a group to fill") {
  // The linger applies only after a group of more than one record; one appender waiting
  // for each completion must not pay it, with or without the option.
  for (auto linger : {std::chrono::microseconds(200), std::chrono::microseconds(1'000'000)}) {
    fixture fx;
    auto o = fx.opts(1 << 20);
    o.group_linger = linger;
    auto s = fx.open(o);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 1; i <= 20; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
    const auto& st = s->stats();
    CHECK(st.lingers.load() == 0);
    CHECK(st.groups.load() == 21);  // epoch_start, then one group per append
    CHECK(st.group_records.load() == 21);
    if (linger.count() == 1'000'000) CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
  }
}

TEST_CASE("after a large group the writer waits, boundedly, for the next one to fill") {
  // Hold the writer in the fdatasync of append 1 while 2..50 queue up: they become one
  // group of 49. Append 51 then finds one record queued where the last group had 49: the
  // writer lingers (at most group_linger) instead of committing a group of one at once.
  fixture fx;
  fault_file_system gated;
  owner_queue loop;
  auto o = fx.opts(1 << 20);
  o.post = loop.poster();
  o.group_linger = std::chrono::milliseconds(20);
  auto s = fx.open_on(gated, o);
  std::size_t completed = 0;
  auto done = [&](std::error_code ec, std::uint64_t) {
    CHECK_FALSE(ec);
    ++completed;
  };
  gated.hold_syncs();
  s->append(make_message(1, {"q"}), done);
  REQUIRE(gated.wait_for_held_sync());
  for (std::uint64_t i = 2; i <= 50; ++i) s->append(make_message(i, {"q"}), done);
  gated.release_syncs();
  REQUIRE(loop.run_until([&] { return completed == 50; }));
  CHECK(s->stats().lingers.load() == 0);  // after a group of one it never waits
  CHECK(s->stats().groups.load() == 3);   // epoch_start, {1}, {2..50}
  s->append(make_message(51, {"q"}), done);
  REQUIRE(loop.run_until([&] { return completed == 51; }));
  CHECK(s->stats().lingers.load() == 1);
  CHECK(s->stats().groups.load() == 4);
  CHECK(s->index().live_messages() == 51);
}

TEST_CASE("reopen after close recovers the same index") {
  fixture fx;
  auto s = fx.open(fx.opts(16 * 1024));
  std::mt19937_64 rng(7);
  std::vector<std::pair<std::string, std::uint64_t>> live;
  for (std::uint64_t seq = 1; seq <= 300; ++seq) {
    std::string t = "/queue/" + std::to_string(rng() % 4);
    REQUIRE(!append_wait(*s, make_message(seq, {t}, rng() % 900)).ec);
    live.emplace_back(t, seq);
    if (rng() % 3 == 0) {
      auto i = rng() % live.size();
      REQUIRE(!append_wait(*s, message_remove{live[i].first, live[i].second}).ec);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  index before = s->index();
  s.reset();
  recovery_report rep;
  auto again = fx.open(fx.opts(16 * 1024), &rep);
  CHECK(rep.from_checkpoint);
  CHECK(again->index() == before);
  CHECK(rep.live_messages == live.size());
}

TEST_CASE("checkpoint plus tail replay equals full replay") {
  fixture fx;
  auto o = fx.opts(16 * 1024);
  auto s = fx.open(o);
  std::mt19937_64 rng(11);
  std::uint64_t seq = 0;
  auto churn = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ++seq;
      REQUIRE(!append_wait(*s, make_message(seq, {"/queue/" + std::to_string(rng() % 3)}, rng() % 500)).ec);
      if (seq > 3 && rng() % 2 == 0) {
        std::uint64_t victim = 1 + rng() % seq;
        for (int q = 0; q < 3; ++q) (void)append_wait(*s, message_remove{"/queue/" + std::to_string(q), victim});
      }
    }
  };
  churn(100);
  checkpoint_wait(*s);
  churn(100);
  index expected = s->index();
  // Drop the store without its final checkpoint: the journal ends in a tail after the
  // mid-way checkpoint. (A failing fence stops the close-time checkpoint.)
  s.reset();
  auto ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 2);
  fsys::remove(ckpts.back());  // the close-time one: now the mid-way checkpoint is newest

  recovery_report rep;
  auto a = fx.open(o, &rep);
  CHECK(rep.from_checkpoint);
  CHECK(rep.records_replayed > 100);
  index from_checkpoint = a->index();
  a.reset();
  fx.remove_checkpoints();
  auto b = fx.open(o, &rep);
  CHECK(!rep.from_checkpoint);
  CHECK(b->index() == from_checkpoint);
  CHECK(b->index() == expected);
}

TEST_CASE("a checkpoint file in writing holds up no append, and counts only once it is written") {
  // The checkpoint file is written on a thread of its own (writer.cpp): before, its write,
  // fsync and rename ran on the writer thread and every append queued meanwhile waited
  // (100-200 ms on CephFS: a new master's first RECEIPT after its takeover checkpoint).
  // This file system holds the checkpoint's temporary at its creation until released.
  class gated_fs final : public tandem::fs::forwarding_file_system {
   public:
    gated_fs() : forwarding_file_system(tandem::fs::posix_file_system()) {}
    tandem::fs::result<std::unique_ptr<tandem::fs::file>> open(const fsys::path& p, tandem::fs::open_mode m) override {
      if (m == tandem::fs::open_mode::create_exclusive && p.filename().string().find(".ckpt") != std::string::npos) {
        std::unique_lock lk(mu_);
        held_ = true;
        cv_.notify_all();
        cv_.wait(lk, [&] { return released_; });
      }
      return base().open(p, m);
    }
    bool wait_held() {
      std::unique_lock lk(mu_);
      return cv_.wait_for(lk, std::chrono::seconds(30), [&] { return held_; });
    }
    void release() {
      std::lock_guard lk(mu_);
      released_ = true;
      cv_.notify_all();
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool held_ = false;
    bool released_ = false;
  };
  fixture fx;
  gated_fs gfs;
  auto o = fx.opts();
  o.fs = &gfs;
  o.close_checkpoint_min_records = 1000;
  o.close_checkpoint_min_bytes = 1ull << 30;
  auto s = fx.open(o);
  for (std::uint64_t i = 1; i <= 20; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
  completion_tracker ckpt;
  s->checkpoint(ckpt.slot(0));
  REQUIRE(gfs.wait_held());
  // The checkpoint file cannot be created; appends (and their fsyncs) go on regardless.
  completion_tracker more;
  for (std::uint64_t i = 21; i <= 40; ++i) s->append(make_message(i, {"q"}), more.slot(i - 21));
  CHECK(more.wait_all(std::chrono::seconds(10)));  // before: they waited behind the file
  CHECK(ckpt.completed() == 0);
  CHECK(fx.count(event_kind::checkpoint_written) == 0);
  CHECK(fx.files(".ckpt").empty());
  gfs.release();
  REQUIRE(more.wait_all());
  for (const auto& out : more.outcomes()) CHECK(!out.ec);
  REQUIRE(ckpt.wait_all());
  CHECK(!ckpt.outcomes()[0].ec);
  CHECK(fx.count(event_kind::checkpoint_written) == 1);
  CHECK(fx.files(".ckpt").size() == 1);
  index expected = s->index();
  // The next open (no close-time checkpoint: the tail is short, see the options above)
  // replays the 20 appends made while the file was in writing on top of the checkpoint,
  // which holds the first 20.
  s.reset();
  recovery_report rep;
  auto again = fx.open(o, &rep);
  CHECK(rep.from_checkpoint);
  CHECK(rep.records_replayed >= 20);
  CHECK(again->index() == expected);
  REQUIRE(again->index().messages("q"));
  CHECK(again->index().messages("q")->size() == 40);
}

TEST_CASE("torn tail in the last segment is truncated and reported") {
  fixture fx;
  auto o = fx.opts();
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 10; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
  }
  auto tail = find_tail(fx.dir.path());
  // Half a record: a plausible header whose payload never made it.
  poke(tail.file, tail.end, std::string("\x13\x37\xbe\xef\x01\x02\x03\x04\x40\x00\x00\x00\x01", 13));
  recovery_report rep;
  auto s = fx.open(o, &rep);
  REQUIRE(rep.torn_tail);
  CHECK(rep.torn_tail->file == tail.file);
  CHECK(rep.torn_tail->offset == tail.end);
  CHECK(rep.torn_tail->bytes == 13);
  CHECK(fx.count(event_kind::torn_tail_truncated) == 1);
  CHECK(s->index().live_messages() == 10);
  CHECK(peek(tail.file, tail.end) == 0);
}

TEST_CASE("mid-log corruption refuses with file and offset, salvage skips and reports") {
  fixture fx;
  auto o = fx.opts(8 * 1024);
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 40; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"}, 500)).ec);
  }
  fx.remove_checkpoints();
  auto segs = fx.files(".seg");
  REQUIRE(segs.size() > 3);
  // Damage the second record of the second segment (not the last segment).
  std::uint64_t off = 0;
  std::uint64_t n = 0;
  REQUIRE(scan(tandem::fs::posix_file_system(), fx.dir.path(), {false, 0}, [&](const scan_item& i) {
    if (i.kind == scan_item_kind::record && i.file == segs[1] && ++n == 2) off = i.offset;
    return true;
  }));
  REQUIRE(off != 0);
  poke(segs[1], off + 40, "XX");

  recovery_report rep;
  auto refused = store::open(fx.dir.path(), o, rep);
  REQUIRE(!refused);
  CHECK(refused.error() == errc::mid_log_corruption);
  REQUIRE(rep.refused);
  CHECK(rep.refused->file == segs[1]);
  CHECK(rep.refused->offset == off);
  CHECK(rep.refused->reason == "checksum mismatch");
  CHECK(rep.refused->bytes > 0);
  CHECK(fx.count(event_kind::corruption_found) == 1);

  auto summary = scan(tandem::fs::posix_file_system(), fx.dir.path(), {}, {});
  REQUIRE(summary);
  CHECK(summary.value().mid_log_corruption);

  o.recovery = recovery_mode::salvage;
  auto s = fx.open(o, &rep);
  REQUIRE(rep.skipped.size() == 1);
  CHECK(rep.skipped[0].offset == off);
  CHECK(rep.skipped[0].file == segs[1]);
  CHECK(fx.count(event_kind::corruption_skipped) == 1);
  CHECK(s->index().live_messages() == 39);
}

TEST_CASE("a bad record followed by a valid one in the last segment is mid-log, not a torn tail") {
  fixture fx;
  auto o = fx.opts(1 << 20);
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 5; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
  }
  fx.remove_checkpoints();
  auto tail = find_tail(fx.dir.path());
  std::uint64_t off = 0, k = 0;
  REQUIRE(scan(tandem::fs::posix_file_system(), fx.dir.path(), {false, 0}, [&](const scan_item& i) {
    if (i.kind == scan_item_kind::record && i.header.type == record_type::message_add && ++k == 3) off = i.offset;
    return true;
  }));
  poke(tail.file, off + 60, "!");
  recovery_report rep;
  auto r = store::open(fx.dir.path(), o, rep);
  CHECK(r.error() == errc::mid_log_corruption);
  CHECK(!rep.torn_tail);
}

TEST_CASE("damage followed only by records of its own unsynced group is a torn tail, not mid-log") {
  // A power cut during the last group commit {m4 m5 m6 checkpoint}: writeback put m6 and
  // the checkpoint record on disk but garbled m5. Valid records follow the damage, but
  // none has group_start, so all of them were written after the last completed fdatasync
  // and none was acknowledged (format.h section 7). This used to be refused as mid-log.
  fixture fx;
  auto o = fx.opts(1 << 20);
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 6; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
  }
  fx.remove_checkpoints();
  const auto seg = fx.files(".seg").back();
  auto recs = record_offsets(fx.dir.path(), seg);
  REQUIRE(recs.size() == 8);  // epoch_start, m1..m6, the close's checkpoint record
  for (std::size_t i = 0; i < recs.size(); ++i)
    CHECK(parse_record_header(std::span<const std::byte, format::record_header_bytes>(
                                  read_bytes(seg, recs[i], format::record_header_bytes).data(),
                                  format::record_header_bytes))
              .group_start());  // every append_wait was a group of its own
  for (std::size_t i = 5; i < recs.size(); ++i) set_record_flags(seg, recs[i], 0);  // m5 m6 ckpt
  const auto image = read_bytes(seg, 0, 1 << 20);
  poke(seg, recs[5] + 60, "!");  // m5's payload

  recovery_report rep;
  {
    auto s = fx.open(o, &rep);
    REQUIRE(rep.torn_tail);
    CHECK(rep.torn_tail->offset == recs[5]);
    CHECK(rep.torn_tail->reason == "checksum mismatch");
    CHECK(rep.torn_tail->bytes > recs[7] - recs[5]);  // m5 through the checkpoint record
    CHECK(live_set(s->index()) == std::map<std::string, std::set<std::uint64_t>>{{"q", {1, 2, 3, 4}}});
  }
  // The same damage with m6 written after a completed fdatasync (group_start): synced
  // data was damaged, which recovery refuses.
  fx.remove_checkpoints();
  for (const auto& f : fx.files(".seg"))
    if (f != seg) fsys::remove(f);
  write_bytes(seg, 0, image);
  set_record_flags(seg, recs[6], format::record_flag_group_start);
  poke(seg, recs[5] + 60, "!");
  auto refused = store::open(fx.dir.path(), o, rep);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == errc::mid_log_corruption);
  REQUIRE(rep.refused);
  CHECK(rep.refused->offset == recs[5]);
}

TEST_CASE("a version 1 segment is still read, by the version 1 rules") {
  // Segments written before the group_start flag (format version 1) carry no flags; a
  // store upgraded in place must still open, and there any valid record after damage
  // still means mid-log corruption.
  fixture fx;
  auto o = fx.opts(1 << 20);
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 5; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
  }
  fx.remove_checkpoints();
  const auto seg = fx.files(".seg").back();
  auto recs = record_offsets(fx.dir.path(), seg);
  REQUIRE(recs.size() == 7);
  for (auto off : recs) set_record_flags(seg, off, 0);
  auto h = read_bytes(seg, 0, format::segment_header_bytes);
  auto sh = decode_segment_header(std::span<const std::byte, format::segment_header_bytes>(h.data(), h.size()));
  REQUIRE(sh);
  CHECK(sh.value().version == format::segment_format_version);
  auto v1 = sh.value();
  v1.version = 1;
  encode_segment_header(v1, std::span<std::byte, format::segment_header_bytes>(h.data(), h.size()));
  write_bytes(seg, 0, h);
  const auto image = read_bytes(seg, 0, 1 << 20);

  recovery_report rep;
  {
    auto s = fx.open(o, &rep);
    CHECK(s->index().live_messages() == 5);
    CHECK_FALSE(rep.torn_tail);
  }
  // Damage with valid (unflagged) records after it: mid-log under version 1.
  fx.remove_checkpoints();
  for (const auto& f : fx.files(".seg"))
    if (f != seg) fsys::remove(f);
  write_bytes(seg, 0, image);
  poke(seg, recs[3] + 60, "!");
  auto refused = store::open(fx.dir.path(), o, rep);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == errc::mid_log_corruption);
  // A flag in a version 1 segment is corruption too: it was not written by that format.
  write_bytes(seg, 0, image);
  set_record_flags(seg, recs.back(), format::record_flag_group_start);
  auto summary = scan(tandem::fs::posix_file_system(), fx.dir.path(), {false, 0}, {});
  REQUIRE(summary);
  REQUIRE(summary.value().torn_tail);
  CHECK(summary.value().torn_tail->offset == recs.back());
  CHECK(summary.value().torn_tail->reason == "record flags set in a version 1 segment");
  // Versions outside 1..2 are refused by name.
  v1.version = format::segment_format_version + 1;
  encode_segment_header(v1, std::span<std::byte, format::segment_header_bytes>(h.data(), h.size()));
  write_bytes(seg, 0, h);
  auto newer = store::open(fx.dir.path(), o, rep);
  REQUIRE_FALSE(newer);
  CHECK(newer.error() == errc::unsupported_version);
}

TEST_CASE("a segment of a newer format refuses the store even when a checkpoint starts after it") {
  // Regression (issue 11, summary equals recovery): recovery read only the segments after
  // its checkpoint, so a first segment of an unknown version was never looked at and the
  // store opened, while tandem-journal refused it.
  fixture fx;
  auto o = fx.opts(4096);
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 20; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
    CHECK(!s->close());
  }
  REQUIRE(fx.files(".ckpt").size() == 1);
  const auto first = fx.files(".seg").front();
  auto h = read_bytes(first, 0, format::segment_header_bytes);
  auto sh = decode_segment_header(std::span<const std::byte, format::segment_header_bytes>(h.data(), h.size()));
  REQUIRE(sh);
  auto newer = sh.value();
  newer.version = format::segment_format_version + 1;
  encode_segment_header(newer, std::span<std::byte, format::segment_header_bytes>(h.data(), h.size()));
  write_bytes(first, 0, h);
  recovery_report rep;
  auto refused = store::open(fx.dir.path(), o, rep);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == errc::unsupported_version);
}

TEST_CASE("a single flipped bit anywhere in a small journal is detected") {
  fixture fx;
  {
    auto s = fx.open(fx.opts(8 * 1024));
    REQUIRE(!append_wait(*s, destination_create{"q"}).ec);
    REQUIRE(!append_wait(*s, make_message(1, {"q"}, 20)).ec);
    REQUIRE(!append_wait(*s, message_remove{"q", 1}).ec);
    s->close();
  }
  auto segs = fx.files(".seg");
  REQUIRE(segs.size() == 1);
  auto tail = find_tail(fx.dir.path());
  auto& fs = tandem::fs::posix_file_system();
  auto clean = scan(fs, fx.dir.path(), {}, {});
  REQUIRE(clean);
  REQUIRE(clean.value().damaged_ranges == 0);
  const auto records = clean.value().records;
  for (std::uint64_t off = 0; off < tail.end; ++off) {
    char orig = peek(segs[0], off);
    for (int bit : {0, 3, 7}) {
      poke(segs[0], off, std::string(1, static_cast<char>(orig ^ (1 << bit))));
      auto r = scan(fs, fx.dir.path(), {}, {});
      bool detected = !r || r.value().damaged_ranges > 0 || r.value().records != records;
      CHECK_MESSAGE(detected, "undetected flip at offset ", off, " bit ", bit);
      poke(segs[0], off, std::string(1, orig));
    }
  }
}

TEST_CASE("records a deposed master writes after the cut are ignored and reported as fenced") {
  fixture fx;
  std::atomic<bool> deposed{false};
  auto oa = fx.opts(1 << 20);
  oa.epoch = 1;
  oa.fence = [&]() -> std::error_code { return deposed ? std::error_code(errc::fenced) : std::error_code{}; };
  auto a = fx.open(oa);
  for (std::uint64_t i = 1; i <= 5; ++i) REQUIRE(!append_wait(*a, make_message(i, {"q"})).ec);

  // A new master takes over while the old one still runs (paused, partitioned).
  auto ob = fx.opts(1 << 20);
  ob.epoch = 2;
  recovery_report rep_b;
  auto b = fx.open(ob, &rep_b);
  CHECK(b->index().live_messages() == 5);
  // The old master keeps writing into its segment after the cut.
  for (std::uint64_t i = 100; i < 103; ++i) REQUIRE(!append_wait(*a, make_message(i, {"q"})).ec);
  REQUIRE(!append_wait(*b, make_message(6, {"q"})).ec);
  // Its watchdog finally notices: the fence stops everything, including its checkpoint.
  deposed = true;
  CHECK(append_wait(*a, make_message(103, {"q"})).ec == errc::fenced);
  CHECK(a->failed());
  a.reset();
  b.reset();

  auto summary = scan(tandem::fs::posix_file_system(), fx.dir.path(), {}, {});
  REQUIRE(summary);
  CHECK(summary.value().fenced_records == 3);
  CHECK(!summary.value().mid_log_corruption);

  fx.remove_checkpoints();
  auto oc = fx.opts(1 << 20);
  oc.epoch = 3;
  recovery_report rep;
  auto c = fx.open(oc, &rep);
  CHECK(rep.fenced_records == 3);
  CHECK(rep.fenced_last_lsn - rep.fenced_first_lsn == 2);
  CHECK(fx.count(event_kind::fenced_records) == 1);
  auto live = live_set(c->index());
  CHECK(live["q"] == std::set<std::uint64_t>{1, 2, 3, 4, 5, 6});

  // An older epoch can no longer open the store.
  c.reset();
  auto old = fx.opts();
  old.epoch = 2;
  recovery_report r2;
  CHECK(store::open(fx.dir.path(), old, r2).error() == errc::fenced);
}

TEST_CASE("journal fails for good after an fsync error") {
  fixture fx;
  fault_file_system ffs;
  auto s = fx.open_on(ffs, fx.opts());
  REQUIRE(!append_wait(*s, make_message(1, {"q"})).ec);
  ffs.fail(op::sync, 1, std::make_error_code(std::errc::io_error), true);
  auto r = append_wait(*s, make_message(2, {"q"}));
  CHECK(r.ec == std::errc::io_error);
  CHECK(r.lsn == 0);
  ffs.clear_failures();  // even a healed disk is not trusted again
  CHECK(append_wait(*s, make_message(3, {"q"})).ec == errc::journal_failed);
  CHECK(s->failed() == std::errc::io_error);
  CHECK(fx.count(event_kind::journal_failed) == 1);
  // The failed message never became visible.
  CHECK(s->index().live_messages() == 1);
}

TEST_CASE("a segment roll that hits ENOSPC fails the appends and names the path") {
  fixture fx;
  fault_file_system ffs;
  auto s = fx.open_on(ffs, fx.opts(8 * 1024));
  ffs.fail(op::allocate, 1, std::make_error_code(std::errc::no_space_on_device), true);
  std::error_code last;
  for (std::uint64_t i = 1; i <= 20 && !last; ++i) last = append_wait(*s, make_message(i, {"q"}, 1000)).ec;
  CHECK(last == std::errc::no_space_on_device);
  auto failed = fx.log.of(event_kind::journal_failed);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].file.extension() == ".seg");
  CHECK(failed[0].reason.find("preallocate") != std::string::npos);
}

TEST_CASE("a failing fence fails the group and the journal") {
  fixture fx;
  std::atomic<bool> deposed{false};
  auto o = fx.opts();
  o.fence = [&]() -> std::error_code { return deposed ? std::error_code(errc::fenced) : std::error_code{}; };
  auto s = fx.open(o);
  REQUIRE(!append_wait(*s, make_message(1, {"q"})).ec);
  deposed = true;
  CHECK(append_wait(*s, make_message(2, {"q"})).ec == errc::fenced);
  deposed = false;
  CHECK(append_wait(*s, make_message(3, {"q"})).ec == errc::journal_failed);
}

TEST_CASE("a record larger than a segment is refused") {
  fixture fx;
  auto s = fx.open(fx.opts(8 * 1024));
  CHECK(append_wait(*s, make_message(1, {"q"}, 9000)).ec == errc::record_too_large);
  CHECK(!append_wait(*s, make_message(2, {"q"}, 7000)).ec);
}

TEST_CASE("periodic and never sync policies complete appends and recover them") {
  for (auto policy : {sync_policy::periodic, sync_policy::never}) {
    fixture fx;
    auto o = fx.opts();
    o.sync = policy;
    o.sync_interval = std::chrono::milliseconds(5);
    {
      auto s = fx.open(o);
      for (std::uint64_t i = 1; i <= 50; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"})).ec);
    }
    auto s = fx.open(o);
    CHECK(s->index().live_messages() == 50);
  }
}

TEST_CASE("GC deletes segments that hold no live record") {
  fixture fx;
  auto o = fx.opts(8 * 1024);
  auto s = fx.open(o);
  for (std::uint64_t i = 1; i <= 60; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"}, 700)).ec);
  for (std::uint64_t i = 1; i <= 60; ++i) REQUIRE(!append_wait(*s, message_remove{"q", i}).ec);
  const auto before = fx.files(".seg").size();
  REQUIRE(before > 6);
  checkpoint_wait(*s);
  REQUIRE(!append_wait(*s, destination_create{"x"}).ec);
  checkpoint_wait(*s);
  // GC first makes next_msg_seq and the producer windows durable in an index_state, then
  // deletes; both run on the writer thread, behind a checkpoint barrier.
  while (s->compact_step()) checkpoint_wait(*s);
  checkpoint_wait(*s);
  const auto after = fx.files(".seg").size();
  CHECK(after <= 2);
  CHECK(fx.count(event_kind::segment_deleted) >= before - 2);
  s.reset();
  auto again = fx.open(o);
  CHECK(again->index().live_messages() == 0);
  CHECK(again->index().destinations().count("x") == 1);
}

TEST_CASE("compaction keeps exactly the live set (seeded model check)") {
  for (std::uint64_t seed : {1, 2, 3}) {
    CAPTURE(seed);
    fixture fx;
    auto o = fx.opts(16 * 1024);
    o.checkpoint_every_bytes = 32 * 1024;
    auto s = fx.open(o);
    std::mt19937_64 rng(seed);
    std::map<std::string, std::set<std::uint64_t>> model;
    std::map<std::uint64_t, std::string> bodies;
    std::uint64_t seq = 0;
    const std::vector<std::string> queues = {"a", "b", "c"};
    for (int step = 0; step < 1500; ++step) {
      auto dice = rng() % 10;
      if (dice < 5) {
        ++seq;
        std::vector<std::string> ts = {queues[rng() % 3]};
        if (rng() % 4 == 0 && ts[0] != "c") ts.push_back("c");
        auto m = make_message(seq, ts, 50 + rng() % 400);
        bodies[seq] = m.body;
        for (auto& t : ts) model[t].insert(seq);
        REQUIRE(!append_wait(*s, m).ec);
      } else if (dice < 9) {
        auto& q = model[queues[rng() % 3]];
        if (q.empty()) continue;
        auto it = q.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng() % q.size()));
        auto victim = *it;
        std::string target;
        for (auto& [t, set] : model)
          if (&set == &q) target = t;
        q.erase(it);
        REQUIRE(!append_wait(*s, message_remove{target, victim}).ec);
      } else {
        s->compact_step(8 * 1024);
      }
    }
    while (s->compact_step(64 * 1024)) checkpoint_wait(*s);
    checkpoint_wait(*s);
    checkpoint_wait(*s);
    s->compact_step(0);
    checkpoint_wait(*s);
    std::erase_if(model, [](auto& kv) { return kv.second.empty(); });
    CHECK(live_set(s->index()) == model);
    for (auto& [t, set] : model)
      for (auto m : set) {
        auto r = s->read(t, m);
        REQUIRE(r);
        CHECK(r.value()->body == bodies[m]);
      }
    // Disk stays within 2x live data plus a few segments.
    std::uint64_t disk = fx.files(".seg").size() * o.segment_bytes;
    CHECK(disk <= 2 * s->index().live_bytes() + 4 * o.segment_bytes);
    s.reset();
    auto again = fx.open(o);
    CHECK(live_set(again->index()) == model);
    again.reset();
    // A damaged newest checkpoint falls back to the previous one, which GC kept usable.
    auto ckpts = fx.files(".ckpt");
    REQUIRE(ckpts.size() == 2);
    poke(ckpts.back(), 100, "garbage");
    recovery_report rep;
    auto fallback = fx.open(o, &rep);
    CHECK(rep.checkpoint_file == ckpts.front());
    CHECK(fx.count(event_kind::checkpoint_fallback) == 1);
    CHECK(live_set(fallback->index()) == model);
  }
}

TEST_CASE("a deleted destination stays deleted even with adds in flight") {
  fixture fx;
  auto s = fx.open(fx.opts());
  REQUIRE(!append_wait(*s, destination_create{"q"}).ec);
  test::completion_tracker w;
  s->append(make_message(1, {"q"}), [&](std::error_code, std::uint64_t) { w.done(); });
  s->append(destination_delete{"q"}, [&](std::error_code, std::uint64_t) { w.done(); });
  REQUIRE(w.wait_for(2));
  CHECK(s->index().messages("q") == nullptr);
  CHECK(s->index().destinations().empty());
}

TEST_CASE("a remove appended while its add is in flight stays removed, live and after recovery") {
  // Regression (fault-test seed 3002): the remove found nothing in the index, the add
  // completed after it and put the message back, and a checkpoint then carried it past
  // the remove's lsn into every later recovery.
  fixture fx;
  auto o = fx.opts();
  {
    owner_queue loop;
    o.post = loop.poster();
    auto s = fx.open(o);
    std::size_t completed = 0;
    std::error_code first_error;
    auto done = [&](std::error_code ec, std::uint64_t) {
      if (ec && !first_error) first_error = ec;
      ++completed;
    };
    // Nothing runs on the owner thread until run_until: every add below is in flight when
    // the removes are appended.
    s->append(make_message(1, {"q"}), done);
    s->append(make_message(2, {"q", "r"}), done);
    s->append(message_remove{"q", 1}, done);
    s->append(message_remove{"r", 2}, done);
    batch b;
    b.items.push_back(make_message(3, {"q"}));
    b.items.push_back(message_remove{"q", 3});  // after the add in the same batch: removed
    b.items.push_back(message_remove{"q", 4});  // before the add of 4 below: a no-op
    s->append(std::move(b), done);
    s->append(make_message(4, {"q"}), done);
    REQUIRE(loop.run_until([&] { return completed == 6; }));
    REQUIRE_FALSE(first_error);
    const std::map<std::string, std::set<std::uint64_t>> expected{{"q", {2, 4}}};
    CHECK(live_set(s->index()) == expected);
    bool checkpointed = false;
    s->checkpoint([&](std::error_code ec, std::uint64_t) {
      CHECK_FALSE(ec);
      checkpointed = true;
    });
    REQUIRE(loop.run_until([&] { return checkpointed; }));
    CHECK(live_set(s->index()) == expected);
  }
  o.post = {};
  recovery_report rep;
  auto s = fx.open(o, &rep);
  CHECK(rep.from_checkpoint);
  CHECK(live_set(s->index()) == std::map<std::string, std::set<std::uint64_t>>{{"q", {2, 4}}});
  s.reset();
  fx.remove_checkpoints();
  auto replayed = fx.open(o, &rep);
  CHECK_FALSE(rep.from_checkpoint);
  CHECK(live_set(replayed->index()) == std::map<std::string, std::set<std::uint64_t>>{{"q", {2, 4}}});
}

TEST_CASE("a batch that adds and removes one message leaves it removed when nothing else is in flight") {
  // Regression (issue 11, one apply path): the early-remove bookkeeping ran only with other
  // appends in flight, so a lone batch's remove of its own add was forgotten and the add
  // put the message back when the batch completed; replay of the same log did not.
  fixture fx;
  auto s = fx.open(fx.opts());
  batch b;
  b.items.push_back(make_message(1, {"q", "r"}));
  b.items.push_back(message_remove{"q", 1});
  REQUIRE(!append_wait(*s, std::move(b)).ec);
  const std::map<std::string, std::set<std::uint64_t>> expected{{"r", {1}}};
  CHECK(live_set(s->index()) == expected);
  CHECK(!s->close());
  s.reset();
  fx.remove_checkpoints();
  recovery_report rep;
  auto replayed = fx.open(fx.opts(), &rep);
  CHECK_FALSE(rep.from_checkpoint);
  CHECK(live_set(replayed->index()) == expected);
}

TEST_CASE("a destination or subscription dropped while adds to it are in flight stays empty after recovery") {
  fixture fx;
  auto o = fx.opts();
  const durable_subscription_create sub{"c", "s", "/topic/t", ""};
  const auto sub_target = subscription_target("c", "s");
  {
    owner_queue loop;
    o.post = loop.poster();
    auto s = fx.open(o);
    std::size_t completed = 0;
    auto done = [&](std::error_code ec, std::uint64_t) {
      CHECK_FALSE(ec);
      ++completed;
    };
    s->append(destination_create{"q"}, done);
    s->append(sub, done);
    REQUIRE(loop.run_until([&] { return completed == 2; }));
    s->append(make_message(1, {"q", sub_target}), done);
    s->append(make_message(2, {"q"}), done);
    s->append(destination_delete{"q"}, done);
    s->append(durable_subscription_remove{"c", "s", "/topic/t", ""}, done);
    s->append(destination_create{"q"}, done);  // re-created empty
    s->append(make_message(3, {"q"}), done);
    REQUIRE(loop.run_until([&] { return completed == 8; }));
    const std::map<std::string, std::set<std::uint64_t>> expected{{"q", {3}}};
    CHECK(live_set(s->index()) == expected);
    bool checkpointed = false;
    s->checkpoint([&](std::error_code ec, std::uint64_t) {
      CHECK_FALSE(ec);
      checkpointed = true;
    });
    REQUIRE(loop.run_until([&] { return checkpointed; }));
  }
  o.post = {};
  recovery_report rep;
  auto s = fx.open(o, &rep);
  CHECK(rep.from_checkpoint);
  CHECK(live_set(s->index()) == std::map<std::string, std::set<std::uint64_t>>{{"q", {3}}});
  CHECK(s->index().durable_subscriptions().empty());
}

TEST_CASE("a producer's dedup window answers like a plain list, in order and out of order") {
  // seq_window keeps a fast path for ascending seqs; it must agree with the plain rule
  // (last N distinct seqs, oldest first) whatever the order.
  std::mt19937_64 rng(42);
  for (int run = 0; run < 200; ++run) {
    const std::size_t limit = 1 + rng() % 16;
    seq_window w;
    std::deque<std::uint64_t> plain;
    std::uint64_t next = 1 + rng() % 5;
    for (int i = 0; i < 200; ++i) {
      std::uint64_t seq;
      switch (rng() % 6) {
        case 0: seq = rng() % (next + 3); break;           // anywhere, often a repeat
        case 1: seq = next > 4 ? next - 1 - rng() % 4 : 1; break;  // a little late
        default: seq = next++; break;                      // ascending, the usual case
      }
      bool agree = true;
      for (std::uint64_t probe = 0; probe < next + 3; ++probe)
        agree = agree && w.contains(probe) == (std::find(plain.begin(), plain.end(), probe) != plain.end());
      REQUIRE(agree);
      w.push(seq, limit);
      if (std::find(plain.begin(), plain.end(), seq) == plain.end()) {
        plain.push_back(seq);
        while (plain.size() > limit) plain.pop_front();
      }
      REQUIRE(w == plain);
    }
    CHECK(seq_window(plain) == plain);
  }
}

TEST_CASE("index memory per live message stays under 128 bytes") {
#if defined(__SANITIZE_ADDRESS__)
  TANDEM_SKIP("under AddressSanitizer: mallinfo2 does not see its allocator");
#else
  constexpr std::uint64_t n = 100000;
  auto before = ::mallinfo2().uordblks;
  {
    index idx;
    std::vector<std::string> targets = {"/queue/a"};
    for (std::uint64_t i = 1; i <= n; ++i)
      idx.add(i, std::span<const std::string>(targets), message_ref{{1 + i / 1000, static_cast<std::uint32_t>(i), 1100}, 0, 4}, "", 0);
    auto after = ::mallinfo2().uordblks;
    double per = static_cast<double>(after - before) / n;
    MESSAGE("index bytes per live message: ", per);
    CHECK(per <= 128.0);
  }
#endif
}

TEST_CASE("the body cache serves repeated reads and stays bounded") {
  fixture fx;
  auto o = fx.opts(1 << 20);
  o.body_cache_bytes = 4096;
  auto s = fx.open(o);
  for (std::uint64_t i = 1; i <= 20; ++i) REQUIRE(!append_wait(*s, make_message(i, {"q"}, 1000)).ec);
  auto a = s->read("q", 5);
  auto b = s->read("q", 5);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a.value() == b.value());  // same cached object
  for (std::uint64_t i = 1; i <= 20; ++i) REQUIRE(s->read("q", i));
  auto c = s->read("q", 5);
  REQUIRE(c);
  CHECK(c.value() != a.value());  // evicted meanwhile, decoded again
  CHECK(*c.value() == *a.value());
}

// Issue 16: a scheduled message is a message_add on format::scheduler_target with its next
// firing in deliver_at_ms; a firing is one batch (remove the entry, add the fired message,
// add the entry's next state). Replay must give the firing whole or not at all: a torn
// batch at the tail leaves the entry as it was, so the next master fires it again once.
TEST_CASE("issue 16: a schedule entry and its firing batch replay whole, or not at all when torn") {
  fixture fx;
  auto o = fx.opts();
  const std::string sched(format::scheduler_target);
  auto entry = make_message(1, {sched});
  entry.deliver_at_ms = 1'700'000'005'000;
  entry.headers = {{"AMQ_SCHEDULED_PERIOD", "5000"}, {"tandem-schedule-left", "1"}};
  auto fired = make_message(2, {"/queue/a"});
  auto next = entry;
  next.msg_seq = 3;
  next.deliver_at_ms = 1'700'000'010'000;
  next.headers.back().second = "0";
  const auto snapshot_whole = fx.dir.path() / "whole";
  const auto snapshot_torn = fx.dir.path() / "torn";
  {
    auto s = fx.open(o);
    REQUIRE(!append_wait(*s, entry).ec);
    batch firing;
    firing.items.emplace_back(message_remove{sched, 1});
    firing.items.emplace_back(fired);
    firing.items.emplace_back(next);
    REQUIRE(!append_wait(*s, firing).ec);
    // A crash now: copies of the store as the disk holds it (no close, no checkpoint).
    for (const auto& to : {snapshot_whole, snapshot_torn}) {
      fsys::create_directories(to);
      fsys::copy(fx.dir.path() / "identity", to / "identity");
      fsys::copy(fx.jdir(), to / "journal", fsys::copy_options::recursive);
    }
  }
  {
    auto s = fx.open_at(snapshot_whole, o);
    const auto* live = s->index().messages(sched);
    REQUIRE(live);
    CHECK(live->size() == 1);
    CHECK(live->contains(3));
    CHECK(s->index().messages("/queue/a"));
    auto m = s->read(sched, 3);
    REQUIRE(m);
    CHECK(m.value()->deliver_at_ms == 1'700'000'010'000);
    CHECK(m.value()->headers == next.headers);
  }
  auto tail = find_tail(snapshot_torn);
  // The batch was the last record written; its second half never reached the disk.
  const auto half = (tail.end - tail.last_record_offset) / 2;
  poke(tail.file, tail.last_record_offset + half, std::string(tail.end - tail.last_record_offset - half, '\0'));
  recovery_report rep;
  auto s = fx.open_at(snapshot_torn, o, &rep);
  REQUIRE(rep.torn_tail);
  const auto* live = s->index().messages(sched);
  REQUIRE(live);
  CHECK(live->size() == 1);
  CHECK(live->contains(1));
  CHECK(!s->index().messages("/queue/a"));
  auto m = s->read(sched, 1);
  REQUIRE(m);
  CHECK(m.value()->deliver_at_ms == 1'700'000'005'000);
}

// Issue 19: recovery checks the fallback checkpoint by its header and checksum in small
// reads (verify_checkpoint_file) instead of loading it: a sound one is kept, a damaged
// one is dropped at open, and the newest loads either way.
TEST_CASE("a sound fallback checkpoint is kept at open, a damaged one is dropped") {
  fixture fx;
  auto o = fx.opts();
  {
    auto s = fx.open(o);
    for (std::uint64_t i = 1; i <= 20; ++i) REQUIRE(!append_wait(*s, make_message(i, {"/queue/a"}, 100, "p", i)).ec);
    checkpoint_wait(*s);
    REQUIRE(!append_wait(*s, make_message(21, {"/queue/a"}, 100, "p", 21)).ec);
  }  // close writes the second checkpoint
  auto ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 2);
  {
    recovery_report rep;
    auto s = fx.open(o, &rep);
    CHECK(rep.checkpoint_file == ckpts.back());
    CHECK(fx.files(".ckpt") == ckpts);  // the fallback stays
    CHECK(s->index().live_messages() == 21);
  }  // close writes a third; the first is trimmed
  ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 2);
  poke(ckpts.front(), format::checkpoint_header_bytes + 4, "garbage");
  recovery_report rep;
  auto s = fx.open(o, &rep);
  CHECK(rep.checkpoint_file == ckpts.back());
  CHECK(fx.files(".ckpt") == std::vector<fsys::path>{ckpts.back()});
  CHECK(s->index().live_messages() == 21);
}
