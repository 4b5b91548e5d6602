// A slave's checkpoint preload (journal/standby.h): it follows the master's checkpoints
// read-only, and a takeover's open uses it only while the file is the one it read.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <functional>
#include <utility>
#include <vector>

#include "journal/detail/preloaded.h"
#include "journal/errc.h"
#include "journal/standby.h"
#include "tests/unit/journal/store_fixture.h"

namespace tandem::journal::test {
namespace {

// A master that leaves a tail behind at close (no close-time checkpoint below 1,000
// records), like one that was killed.
options tail_leaving(fixture& fx) {
  auto o = fx.opts();
  o.close_checkpoint_min_records = 1000;
  o.close_checkpoint_min_bytes = 1ull << 30;
  return o;
}

void append_messages(store& s, std::uint64_t from, std::uint64_t to) {
  for (auto i = from; i <= to; ++i) REQUIRE(!append_wait(s, make_message(i, {"/queue/a"}, 100, "p", i)).ec);
}

// A master that appends each range of messages and checkpoints after it, then runs `then`
// (the slave's turn, more appends) and ends without a close-time checkpoint.
void run_master(fixture& fx, const options& o, std::vector<std::pair<std::uint64_t, std::uint64_t>> checkpointed,
                const std::function<void(store&)>& then = {}) {
  auto master = fx.open(o);
  for (auto [from, to] : checkpointed) {
    append_messages(*master, from, to);
    checkpoint_wait(*master);
  }
  if (then) then(*master);
}

// The store as it is now, copied, to open without a preload as the control.
fsys::path copy_of_store(fixture& fx, const temp_dir& into) {
  const auto to = into.path() / "store";
  fsys::copy(fx.dir.path(), to, fsys::copy_options::recursive);
  return to;
}

fs::file_system& posix_fs() { return tandem::fs::posix_file_system(); }

bool loaded_preloaded(const fixture& fx) {
  auto loaded = fx.log.of(event_kind::checkpoint_loaded);
  return !loaded.empty() && loaded.back().reason == "preloaded";
}

TEST_CASE("a slave's preload follows the master's checkpoints, and the takeover replays only the tail") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  auto master = fx.open(o);
  auto first = slave.refresh();
  REQUIRE(first);
  CHECK(first.value().lsn == 0);  // nothing written yet: nothing to preload

  append_messages(*master, 1, 20);
  checkpoint_wait(*master);
  auto r1 = slave.refresh();
  REQUIRE(r1);
  CHECK(r1.value().loaded_now);
  CHECK(r1.value().live_messages == 20);
  CHECK(r1.value().skipped.empty());
  auto again = slave.refresh();
  REQUIRE(again);
  CHECK(!again.value().loaded_now);  // the same file is not read twice
  CHECK(again.value().lsn == r1.value().lsn);

  append_messages(*master, 21, 30);
  checkpoint_wait(*master);
  auto r2 = slave.refresh();
  REQUIRE(r2);
  CHECK(r2.value().loaded_now);
  CHECK(r2.value().lsn > r1.value().lsn);
  CHECK(r2.value().live_messages == 30);

  append_messages(*master, 31, 35);  // the tail after the last checkpoint
  master.reset();
  temp_dir control_dir{"tandem-standby"};
  const auto control = copy_of_store(fx, control_dir);

  auto preloaded = slave.take();
  REQUIRE(preloaded);
  auto with = o;
  with.preloaded = preloaded;
  recovery_report rep;
  auto taken_over = fx.open(with, &rep);
  CHECK(preloaded->consumed);
  CHECK(loaded_preloaded(fx));
  CHECK(rep.from_checkpoint);
  CHECK(rep.records_replayed < 10);  // the five messages and the checkpoint's own record
  CHECK(taken_over->index().live_messages() == 35);

  recovery_report plain_rep;
  auto plain = fx.open_at(control, o, &plain_rep);  // the same store, read from the files alone
  CHECK(!loaded_preloaded(fx));
  CHECK(plain_rep.records_replayed == rep.records_replayed);
  CHECK(live_set(plain->index()) == live_set(taken_over->index()));
}

TEST_CASE("a preload whose checkpoint file was written anew under its name is not used") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  run_master(fx, o, {{1, 10}, {11, 20}}, [&](store& master) {
    REQUIRE(slave.refresh());
    append_messages(master, 21, 25);
  });
  // The newest file replaced whole (what a rename over it does) by other bytes: here the
  // older checkpoint's, which replay from further back to the same index.
  auto ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 2);
  fsys::copy_file(ckpts.front(), ckpts.back().string() + ".new");
  fsys::rename(ckpts.back().string() + ".new", ckpts.back());

  auto with = o;
  with.preloaded = slave.take();
  REQUIRE(with.preloaded);
  recovery_report rep;
  auto s = fx.open(with, &rep);
  CHECK(!with.preloaded->consumed);
  CHECK(!loaded_preloaded(fx));
  CHECK(rep.from_checkpoint);
  CHECK(rep.records_replayed > 15);  // from the older checkpoint's position
  CHECK(s->index().live_messages() == 25);
}

TEST_CASE("a preload built with other dedup bounds than the open's is not used") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window + 1, o.max_producers);
  run_master(fx, o, {{1, 10}}, [&](store&) { REQUIRE(slave.refresh()); });
  auto with = o;
  with.preloaded = slave.take();
  REQUIRE(with.preloaded);
  auto s = fx.open(with);
  CHECK(!with.preloaded->consumed);
  CHECK(!loaded_preloaded(fx));
  CHECK(s->index().live_messages() == 10);
}

TEST_CASE("the preload skips a damaged newest checkpoint, says which and why, and holds none") {
  fixture fx;
  const auto o = tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  run_master(fx, o, {{1, 10}});
  auto ckpts = fx.files(".ckpt");
  REQUIRE(ckpts.size() == 1);
  {
    std::fstream f(ckpts.back(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(format::checkpoint_header_bytes + 4);
    f.write("garbage", 7);
  }
  auto r = slave.refresh();
  REQUIRE(r);
  CHECK(r.value().lsn == 0);
  CHECK(!r.value().loaded_now);
  CHECK(r.value().skipped.find(ckpts.back().filename().string()) != std::string::npos);
  CHECK(r.value().skipped.find("checksum") != std::string::npos);
  CHECK(slave.take() == nullptr);
  auto again = slave.refresh();  // not read again until a newer one appears
  REQUIRE(again);
  CHECK(again.value().skipped.empty());
}

TEST_CASE("the preload's settled segment starts stand in for reading them at open") {
  fixture fx;
  auto o = tail_leaving(fx);
  // Three masters' segments, each begun with its epoch_start: the store's own compaction
  // must not copy the first one's few messages forward and delete it while a master is
  // still open after its checkpoint (it did once in CI under ASan: 2 fence points of 3).
  o.auto_compact_bytes = 0;
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  for (std::uint64_t epoch = 1; epoch <= 3; ++epoch) {
    o.epoch = epoch;
    run_master(fx, o, {{10 * epoch, 10 * epoch + 5}});
  }
  REQUIRE(slave.refresh());
  auto pre = slave.take();
  REQUIRE(pre);
  auto inv = detail::take_inventory(posix_fs(), fx.jdir());
  REQUIRE(inv);
  auto fences = detail::find_fence_points(posix_fs(), fx.jdir(), inv.value().segments, pre->id);
  REQUIRE(fences);
  REQUIRE(fences.value().size() == 3);
  // Every segment but the last, which a master may still be writing.
  REQUIRE(inv.value().segments.size() == 3);
  REQUIRE(pre->segment_starts.size() == 2);
  CHECK(!pre->segment_starts.contains(inv.value().segments.back()));
  std::vector<detail::fence_point> known_fences;
  for (const auto& [seq, start] : pre->segment_starts) {
    CHECK(start.settled);
    if (start.fence) known_fences.push_back(*start.fence);
  }
  REQUIRE(known_fences.size() == 2);
  CHECK(known_fences[0].epoch == fences.value()[0].epoch);
  CHECK(known_fences[1].at.segment == fences.value()[1].at.segment);

  // A start the preload says settled is believed: one claiming a newer epoch fences the
  // open (which shows it was not read again) ...
  o.epoch = 4;
  auto& first = pre->segment_starts.begin()->second;
  first.fence->epoch = 99;
  auto with = o;
  with.preloaded = pre;
  recovery_report rep;
  auto refused = store::open(fx.dir.path(), with, rep);
  REQUIRE(!refused);
  CHECK(refused.error() == errc::fenced);
  // ... and an unsettled one is read from the segment.
  first.settled = false;
  auto s = fx.open(with);
  CHECK(s->index().live_messages() == 18);
}

// The POSIX file system, noting which files are opened read-only.
class opens_noted : public fs::forwarding_file_system {
 public:
  opens_noted() : forwarding_file_system(posix_fs()) {}
  std::vector<fsys::path> read_only_opens;
  std::function<void(const fsys::path&)> on_open;
  fs::result<std::unique_ptr<fs::file>> open(const fsys::path& path, fs::open_mode mode) override {
    if (mode == fs::open_mode::read_only) read_only_opens.push_back(path);
    if (on_open) on_open(path);
    return base().open(path, mode);
  }
  bool opened(const fsys::path& path) const {
    return std::find(read_only_opens.begin(), read_only_opens.end(), path) != read_only_opens.end();
  }
};

// The takeover's open with the slave's preload, noting which files it opens (the store
// goes first: it uses `noted`).
struct takeover {
  opens_noted noted;
  recovery_report report;
  std::unique_ptr<store> opened;
};
std::unique_ptr<takeover> take_over(fixture& fx, options o, std::shared_ptr<preloaded_checkpoint> pre) {
  auto t = std::make_unique<takeover>();
  o.preloaded = std::move(pre);
  o.fs = &t->noted;
  t->opened = fx.open(o, &t->report);
  return t;
}

std::vector<std::uint64_t> segments_of(const fixture& fx) {
  auto inv = detail::take_inventory(posix_fs(), fx.jdir());
  REQUIRE(inv);
  return inv.value().segments;
}

// tail_leaving, for a tail of several segments.
options long_tail_leaving(fixture& fx) {
  auto o = tail_leaving(fx);
  o.close_checkpoint_min_records = 1ull << 30;
  return o;
}

TEST_CASE("the preload holds the sealed segments after its checkpoint; the takeover replays them from memory") {
  fixture fx;
  const auto o = long_tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  auto master = fx.open(o);
  append_messages(*master, 1, 20);
  checkpoint_wait(*master);
  append_messages(*master, 21, 1500);  // several 64 KiB segments after the checkpoint
  auto r = slave.refresh();
  REQUIRE(r);
  const auto segments = segments_of(fx);
  REQUIRE(segments.size() >= 4);
  CHECK(r.value().sealed_segments >= 2);
  CHECK(r.value().sealed_bytes > 100 * 1024);
  append_messages(*master, 1501, 1510);  // the last segment goes on after the preload
  master.reset();
  temp_dir control_dir{"tandem-standby"};
  const auto control = copy_of_store(fx, control_dir);

  auto pre = slave.take();
  REQUIRE(pre);
  CHECK(!pre->sealed.contains(segments.back()));  // the master was writing it
  auto t = take_over(fx, o, pre);
  auto& [noted, rep, taken_over] = *t;
  CHECK(rep.preloaded_segment_bytes > 100 * 1024);
  for (const auto& [seq, capture] : pre->sealed) CHECK(!noted.opened(detail::segment_path(fx.jdir(), seq)));
  CHECK(noted.opened(detail::segment_path(fx.jdir(), segments.back())));
  CHECK(taken_over->index().live_messages() == 1510);

  recovery_report plain_rep;
  auto plain = fx.open_at(control, o, &plain_rep);
  CHECK(plain_rep.preloaded_segment_bytes == 0);
  CHECK(plain_rep.records_replayed == rep.records_replayed);
  CHECK(live_set(plain->index()) == live_set(taken_over->index()));
  for (std::uint64_t seq : {1ull, 700ull, 1510ull}) {
    auto a = taken_over->read("/queue/a", seq);
    auto b = plain->read("/queue/a", seq);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a.value()->body == b.value()->body);
  }
}

TEST_CASE("each sealed segment is read once: after a segment roll the preload reads only the new ones") {
  fixture fx;
  const auto o = long_tail_leaving(fx);
  opens_noted noted;
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers, &noted);
  auto master = fx.open(o);
  append_messages(*master, 1, 20);
  checkpoint_wait(*master);
  append_messages(*master, 21, 1500);
  auto first = slave.refresh();
  REQUIRE(first);
  REQUIRE(first.value().sealed_segments >= 2);
  CHECK(first.value().sealed_bytes_read_again == 0);  // nothing was held yet
  const auto before = segments_of(fx);
  append_messages(*master, 1501, 3000);  // the last segment seals, and more after it
  const auto after = segments_of(fx);
  REQUIRE(after.size() >= before.size() + 2);
  noted.read_only_opens.clear();
  auto second = slave.refresh();
  REQUIRE(second);
  CHECK(second.value().sealed_segments == after.size() - 1 - (before.size() - 1 - first.value().sealed_segments));
  CHECK(second.value().sealed_bytes_read_again == 0);
  // Of the segments, only those sealed since the first refresh were opened to be read.
  for (std::size_t i = 0; i + 1 < before.size(); ++i)
    CHECK(std::count(noted.read_only_opens.begin(), noted.read_only_opens.end(),
                     detail::segment_path(fx.jdir(), before[i])) == 0);
  master.reset();
  temp_dir control_dir{"tandem-standby"};
  const auto control = copy_of_store(fx, control_dir);

  auto pre = slave.take();
  REQUIRE(pre);
  auto t = take_over(fx, o, pre);
  CHECK(t->report.preloaded_segment_bytes == second.value().sealed_bytes);
  for (const auto& [seq, capture] : pre->sealed) CHECK(!t->noted.opened(detail::segment_path(fx.jdir(), seq)));
  recovery_report plain_rep;
  auto plain = fx.open_at(control, o, &plain_rep);
  CHECK(plain_rep.records_replayed == t->report.records_replayed);
  CHECK(live_set(plain->index()) == live_set(t->opened->index()));
}

TEST_CASE("a preload given no room for sealed segments holds none, and one given less holds that much") {
  fixture fx;
  const auto o = long_tail_leaving(fx);
  checkpoint_preloader none(fx.dir.path(), o.producer_window, o.max_producers, nullptr, 0);
  checkpoint_preloader some(fx.dir.path(), o.producer_window, o.max_producers, nullptr, 100 * 1024);
  run_master(fx, o, {{1, 20}}, [&](store& master) {
    append_messages(master, 21, 1500);
    auto r = none.refresh();
    REQUIRE(r);
    CHECK(r.value().loaded_now);  // the checkpoint still is preloaded
    CHECK(r.value().sealed_segments == 0);
    auto s = some.refresh();
    REQUIRE(s);
    CHECK(s.value().sealed_bytes > 0);
    CHECK(s.value().sealed_bytes <= 100 * 1024);
  });
  auto pre = some.take();
  REQUIRE(pre);
  auto t = take_over(fx, o, pre);
  CHECK(t->report.preloaded_segment_bytes > 0);
  CHECK(t->report.preloaded_segment_bytes <= 100 * 1024);
  CHECK(t->opened->index().live_messages() == 1500);
}

TEST_CASE("a sealed segment that is the last one again at the takeover is read from its file") {
  fixture fx;
  const auto o = long_tail_leaving(fx);
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers);
  run_master(fx, o, {{1, 20}}, [&](store& master) {
    append_messages(master, 21, 1500);
    REQUIRE(slave.refresh());
  });
  auto segments = segments_of(fx);
  auto pre = slave.take();
  REQUIRE(pre);
  const std::uint64_t captured_last = std::prev(pre->sealed.end())->first;
  REQUIRE(captured_last == segments[segments.size() - 2]);
  // The newest segment gone (as recovery removes one whose header was never written): the
  // segment before it is the last again, and the last is always read from its file.
  fsys::remove(detail::segment_path(fx.jdir(), segments.back()));
  temp_dir control_dir{"tandem-standby"};
  const auto control = copy_of_store(fx, control_dir);
  auto t = take_over(fx, o, pre);
  auto& [noted, rep, taken_over] = *t;
  CHECK(noted.opened(detail::segment_path(fx.jdir(), captured_last)));
  std::uint64_t served_at_most = 0;
  for (const auto& [seq, capture] : pre->sealed)
    if (seq != captured_last) served_at_most += capture->bytes();
  CHECK(rep.preloaded_segment_bytes > 0);
  CHECK(rep.preloaded_segment_bytes <= served_at_most);
  auto plain = fx.open_at(control, o);
  CHECK(live_set(plain->index()) == live_set(taken_over->index()));
}

TEST_CASE("a takeover cuts the preload's reading of sealed segments short, and it keeps nothing of it") {
  fixture fx;
  const auto o = long_tail_leaving(fx);
  opens_noted noted;
  checkpoint_preloader slave(fx.dir.path(), o.producer_window, o.max_producers, &noted);
  // The takeover comes while the preload opens its second sealed segment to capture it
  // (it opened each once before, for its first record).
  std::map<fsys::path, int> opened;
  int captures = 0;
  noted.on_open = [&](const fsys::path& path) {
    if (path.extension() == ".seg" && ++opened[path] == 2 && ++captures == 2) slave.stop_capturing();
  };
  run_master(fx, o, {{1, 20}}, [&](store& master) {
    append_messages(master, 21, 1500);
    auto r = slave.refresh();
    REQUIRE(r);
    CHECK(r.value().loaded_now);  // the checkpoint is still held
    CHECK(r.value().sealed_segments == 0);
    const auto opens = noted.read_only_opens.size();
    auto again = slave.refresh();  // no more reading of segments once stopped
    REQUIRE(again);
    CHECK(again.value().sealed_segments == 0);
    CHECK(noted.read_only_opens.size() - opens <= 2);  // the identity; the checkpoint is held
  });
  CHECK(captures == 2);
  auto pre = slave.take();
  REQUIRE(pre);
  CHECK(pre->sealed.empty());
  recovery_report rep;
  auto with = o;
  with.preloaded = pre;
  auto s = fx.open(with, &rep);
  CHECK(rep.preloaded_segment_bytes == 0);
  CHECK(s->index().live_messages() == 1500);
}

TEST_CASE("a captured segment answers the ranges it holds from memory and reads the rest from its file") {
  temp_dir d{"tandem-standby"};
  const auto jdir = d.path();
  const auto path = detail::segment_path(jdir, 7);
  std::vector<std::byte> content(10000);
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = std::byte(i * 7);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
  }
  detail::sealed_capture_fs::recording rec;
  rec.budget = 3000;
  detail::sealed_capture_fs recorder(posix_fs(), jdir, nullptr, &rec);
  {
    auto f = recorder.open(path, fs::open_mode::read_only);
    REQUIRE(f);
    std::vector<std::byte> buf(2000);
    REQUIRE(f.value()->read_at(buf, 0));
    REQUIRE(f.value()->read_at(buf, 2000));  // over the budget: not kept
  }
  REQUIRE(rec.segments.contains(7));
  CHECK(rec.segments[7]->file_size == 10000);
  CHECK(rec.segments[7]->bytes() == 2000);

  // What is served comes from memory: change the file under it to see which is which.
  detail::captured_segments held{{7, rec.segments[7]}};
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    const char changed[4] = {'x', 'x', 'x', 'x'};
    f.seekp(100);
    f.write(changed, 4);
    f.seekp(5000);
    f.write(changed, 4);
  }
  detail::sealed_capture_fs server(posix_fs(), jdir, &held);
  auto f = server.open(path, fs::open_mode::read_only);
  REQUIRE(f);
  CHECK(f.value()->size().value() == 10000);
  std::vector<std::byte> head(200);
  REQUIRE(f.value()->read_at(head, 0).value() == 200);
  CHECK(head[100] == content[100]);  // the capture's byte, not the file's
  std::vector<std::byte> later(100);
  REQUIRE(f.value()->read_at(later, 4950).value() == 100);
  CHECK(later[50] == std::byte{'x'});  // not captured: the file's
  CHECK(server.served_bytes() == 200);
  CHECK(f.value()->write_at(std::span<const std::byte>(head), 0));  // read-only
  // Other files and other modes go to the file system itself.
  auto rw = server.open(path, fs::open_mode::read_write);
  REQUIRE(rw);
  REQUIRE(rw.value()->read_at(head, 0).value() == 200);
  CHECK(head[100] == std::byte{'x'});
}

// The POSIX file system as another host's client of a network file system sees it (bug 9
// of docs/failover.md section 4): each page read is kept, and later reads of it return the
// kept copy, zeros where the master wrote since, until drop_cached_pages() on a file of that
// path.
class page_caching_fs : public fs::forwarding_file_system {
 public:
  static constexpr std::uint64_t page = 4096;
  page_caching_fs() : forwarding_file_system(posix_fs()) {}
  std::map<fsys::path, std::map<std::uint64_t, std::vector<std::byte>>> cache;

  fs::result<std::unique_ptr<fs::file>> open(const fsys::path& path, fs::open_mode mode) override {
    auto f = base().open(path, mode);
    if (!f || mode != fs::open_mode::read_only) return f;
    return std::unique_ptr<fs::file>(std::make_unique<cached_file>(*this, std::move(f.value())));
  }

 private:
  class cached_file : public fs::file {
   public:
    cached_file(page_caching_fs& owner, std::unique_ptr<fs::file> f) : owner_(owner), f_(std::move(f)) {}
    fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
      auto size = f_->size();
      if (!size) return size.error();
      const std::uint64_t end = std::min<std::uint64_t>(offset + out.size(), size.value());
      auto& pages = owner_.cache[f_->path()];
      for (std::uint64_t at = offset; at < end;) {
        const std::uint64_t p = at / page;
        auto it = pages.find(p);
        if (it == pages.end()) {
          std::vector<std::byte> data(page);
          auto n = f_->read_at(data, p * page);
          if (!n) return n.error();
          std::fill(data.begin() + static_cast<std::ptrdiff_t>(n.value()), data.end(), std::byte{0});
          it = pages.emplace(p, std::move(data)).first;
        }
        const std::uint64_t in_page = at - p * page;
        const std::uint64_t n = std::min(end - at, page - in_page);
        std::memcpy(out.data() + (at - offset), it->second.data() + in_page, n);
        at += n;
      }
      return static_cast<std::size_t>(end > offset ? end - offset : 0);
    }
    std::error_code write_at(std::span<const std::byte>, std::uint64_t) override { return refused(); }
    std::error_code write_at(std::span<const std::span<const std::byte>>, std::uint64_t) override { return refused(); }
    std::error_code sync() override { return refused(); }
    std::error_code allocate(std::uint64_t, std::uint64_t) override { return refused(); }
    std::error_code truncate(std::uint64_t) override { return refused(); }
    fs::result<std::uint64_t> size() override { return f_->size(); }
    std::error_code drop_cached_pages() override {
      owner_.cache.erase(f_->path());
      return {};
    }
    int native_handle() const override { return f_->native_handle(); }
    const fsys::path& path() const override { return f_->path(); }

   private:
    static std::error_code refused() { return std::make_error_code(std::errc::operation_not_permitted); }
    page_caching_fs& owner_;
    std::unique_ptr<fs::file> f_;
  };
};

TEST_CASE("a takeover without a preload reads the last segment past its host's cache of the file") {
  // Before 2026-12-08 recovery read the last segment through the kernel's cache: a page an
  // operator's tool had read on the new master's host while the old master wrote on into
  // it came back with zeros where records were, and those records were lost.
  fixture fx;
  const auto o = long_tail_leaving(fx);
  page_caching_fs host2;
  auto master = fx.open(o);
  append_messages(*master, 1, 25);
  const auto last = segments_of(fx).back();
  {
    auto f = host2.open(detail::segment_path(fx.jdir(), last), fs::open_mode::read_only);
    REQUIRE(f);
    std::vector<std::byte> head(8 * page_caching_fs::page);
    REQUIRE(f.value()->read_at(head, 0));
  }
  append_messages(*master, 26, 35);
  REQUIRE(segments_of(fx).back() == last);
  master.reset();
  auto with = o;
  with.fs = &host2;
  auto taken_over = fx.open(with);
  CHECK(taken_over->index().live_messages() == 35);
}

TEST_CASE("the preload of a directory that is not a store says so") {
  temp_dir empty{"tandem-standby"};
  checkpoint_preloader slave(empty.path(), 1024, 0);
  auto r = slave.refresh();
  REQUIRE(!r);
  CHECK(r.error() == errc::not_a_store);
}

}  // namespace
}  // namespace tandem::journal::test
