#include "tests/fault/journal_fixtures.h"

#include <algorithm>
#include <stdexcept>

#include "journal/errc.h"
#include "journal/format.h"
#include "journal/identity.h"
#include "journal/reader.h"
#include "journal/records.h"
#include "journal/store.h"
#include "tests/support/fault_file_system.h"
#include "tests/support/store_factory.h"

namespace tandem::fault {
namespace {

namespace jf = journal::format;
using test::crash_options;
using test::fault_file_system;
using test::make_message;
const std::filesystem::path root = "/fixture";

[[noreturn]] void fail(const std::string& step, std::error_code ec = {}) {
  throw std::runtime_error("fixture: " + step + (ec ? ": " + ec.message() : std::string()));
}

void check(std::error_code ec, const std::string& step) {
  if (ec) fail(step, ec);
}

void create(fault_file_system& fs) {
  check(fs.create_directories(root), "mkdir");
  check(fs.sync_dir("/"), "sync /");
  auto id = journal::store_id::parse(fixture_store_id);
  auto made = journal::create_store(fs, root, *id);
  if (!made) fail("create_store", made.error());
  // A fixed creation time, so the tool's output is the same on every run.
  std::string text = "format=tandem-store\nversion=1\nstore_id=" + std::string(fixture_store_id) +
                     "\ncreated_ms=1700000000000\n";
  check(fs::write_file_atomically(fs, root / jf::identity_file_name, std::as_bytes(std::span(text))),
        "rewrite identity");
}

std::unique_ptr<journal::store> open(fault_file_system& fs, std::uint64_t epoch, std::string broker) {
  journal::options o;
  o.fs = &fs;
  o.epoch = epoch;
  o.broker_name = std::move(broker);
  o.segment_bytes = jf::min_segment_bytes;
  o.checkpoint_every_bytes = 1ull << 30;  // only the close writes one: fewer moving parts
  // No compaction of the store's own: it starts when the close's checkpoint completes,
  // racing close() on the writer thread, so a slow run (ASan) sometimes copied and
  // deleted the first segment of the "fenced" store and the golden output differed.
  o.auto_compact_bytes = 0;
  journal::recovery_report rep;
  auto s = journal::store::open(root, std::move(o), rep);
  if (!s) fail("store::open epoch " + std::to_string(epoch), s.error());
  return std::move(s.value());
}

void append(journal::store& s, journal::record r) {
  auto out = test::append_wait(s, std::move(r));
  check(out.ec, "append");
}

// The common workload: destinations, a durable subscription, messages on a queue and on a
// subscription, a remove, a transaction batch. Big enough to fill more than one 4 KiB
// segment.
void workload(journal::store& s) {
  append(s, journal::destination_create{"/queue/orders"});
  append(s, journal::destination_create{"/queue/audit"});
  journal::durable_subscription_create sub;
  sub.client_id = "c1";
  sub.subscription_name = "s1";
  sub.topic = "/topic/prices";
  sub.owner_login = "alice";  // issue 17: dump shows it
  append(s, sub);
  for (std::uint64_t i = 0; i < 8; ++i)
    append(s, make_message(s.allocate_msg_seq(), {"/queue/orders"}, 300, "p1", i + 1));
  append(s, make_message(s.allocate_msg_seq(), {journal::subscription_target("c1", "s1"), "/queue/audit"}, 120));
  append(s, journal::message_remove{"/queue/orders", 1});
  journal::batch b;
  b.items.push_back(make_message(s.allocate_msg_seq(), {"/queue/audit"}, 64, "p2", 1));
  b.items.push_back(journal::message_remove{"/queue/orders", 2});
  append(s, b);
}

// Stops the "process" without a clean close: what was synced stays, nothing more is written.
void crash(fault_file_system& fs, std::unique_ptr<journal::store>& s) {
  fs.die();
  s.reset();
  fs.crash(crash_options::keep_all_unsynced());
}

std::vector<std::filesystem::path> segments(fault_file_system& fs) {
  std::vector<std::filesystem::path> out;
  for (const auto& p : fs.durable_files())
    if (p.extension() == jf::segment_suffix) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

struct record_pos {
  std::filesystem::path file;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::uint32_t length = 0;
};

std::vector<record_pos> records(fault_file_system& fs) {
  std::vector<record_pos> out;
  journal::scan_options so;
  so.decode = false;
  auto r = journal::scan(fs, root, so, [&](const journal::scan_item& it) {
    if (it.kind == journal::scan_item_kind::record)
      out.push_back({it.file, it.offset, it.record_bytes, it.header.length});
    return true;
  });
  if (!r) fail("scan", r.error());
  return out;
}

std::vector<std::byte> contents(fault_file_system& fs, const std::filesystem::path& p) {
  auto c = fs.durable_contents(p);
  if (!c) fail("read " + p.string());
  return *c;
}

}  // namespace

std::vector<std::string> fixture_names() {
  return {"valid", "empty", "torn_tail", "bad_crc_mid_log", "unknown_version", "short_header", "fenced"};
}

void build_fixture(std::string_view name, const std::filesystem::path& dir) {
  fault_file_system fs(1);
  create(fs);
  if (name == "empty") {
    // create_store only: an identity and an empty journal directory.
  } else if (name == "valid") {
    auto s = open(fs, 1, "fixture");
    workload(*s);
    check(s->close(), "close");
  } else if (name == "torn_tail") {
    // The writer died while writing its last record: the second half never reached the
    // disk (the preallocated zeros are still there).
    auto s = open(fs, 1, "fixture");
    workload(*s);
    crash(fs, s);
    auto recs = records(fs);
    if (recs.empty()) fail("torn_tail: no records");
    const auto& last = recs.back();
    auto img = contents(fs, last.file);
    std::uint64_t from = last.offset + jf::record_header_bytes + last.length / 2;
    std::fill(img.begin() + static_cast<std::ptrdiff_t>(from),
              img.begin() + static_cast<std::ptrdiff_t>(last.offset + last.bytes), std::byte{0});
    fs.set_durable_contents(last.file, std::move(img));
  } else if (name == "bad_crc_mid_log") {
    // One byte of a record's payload in the first segment flipped; valid records follow.
    auto s = open(fs, 1, "fixture");
    workload(*s);
    check(s->close(), "close");
    auto recs = records(fs);
    auto first_seg = segments(fs).front();
    std::vector<record_pos> in_first;
    for (const auto& r : recs)
      if (r.file == first_seg) in_first.push_back(r);
    if (in_first.size() < 4) fail("bad_crc_mid_log: first segment too small");
    const auto& victim = in_first[in_first.size() / 2];
    auto img = contents(fs, victim.file);
    img[victim.offset + jf::record_header_bytes + victim.length / 2] ^= std::byte{0x10};
    fs.set_durable_contents(victim.file, std::move(img));
  } else if (name == "unknown_version") {
    // A segment written by a future format version (header checksum valid).
    auto s = open(fs, 1, "fixture");
    workload(*s);
    check(s->close(), "close");
    auto seg = segments(fs).front();
    auto img = contents(fs, seg);
    auto h = journal::decode_segment_header(std::span<const std::byte, jf::segment_header_bytes>(img.data(), jf::segment_header_bytes));
    if (!h) fail("unknown_version: decode header", h.error());
    auto hv = h.value();
    hv.version = jf::segment_format_version + 1;
    journal::encode_segment_header(hv, std::span<std::byte, jf::segment_header_bytes>(img.data(), jf::segment_header_bytes));
    fs.set_durable_contents(seg, std::move(img));
  } else if (name == "short_header") {
    // The writer died creating the next segment: 40 of its 64 header bytes were written.
    auto s = open(fs, 1, "fixture");
    workload(*s);
    crash(fs, s);
    auto segs = segments(fs);
    auto last = contents(fs, segs.back());
    auto h = journal::decode_segment_header(std::span<const std::byte, jf::segment_header_bytes>(last.data(), jf::segment_header_bytes));
    if (!h) fail("short_header: decode header", h.error());
    auto hv = h.value();
    hv.seq += 1;
    std::vector<std::byte> next(jf::segment_header_bytes);
    journal::encode_segment_header(hv, std::span<std::byte, jf::segment_header_bytes>(next.data(), jf::segment_header_bytes));
    next.resize(40);
    auto name16 = segs.back().filename().string();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx.seg", static_cast<unsigned long long>(hv.seq));
    fs.set_durable_contents(segs.back().parent_path() / buf, std::move(next));
  } else if (name == "fenced") {
    // Master A (epoch 1) is paused; B (epoch 2) takes over and cuts the log at A's last
    // record; A wakes up and writes two more records into its segment before noticing.
    auto a = open(fs, 1, "broker-a");
    append(*a, journal::destination_create{"/queue/orders"});
    for (std::uint64_t i = 0; i < 3; ++i) append(*a, make_message(a->allocate_msg_seq(), {"/queue/orders"}, 100));
    auto b = open(fs, 2, "broker-b");
    append(*a, make_message(100, {"/queue/orders"}, 100));
    append(*a, make_message(101, {"/queue/orders"}, 100));
    append(*b, make_message(b->allocate_msg_seq(), {"/queue/orders"}, 100));
    check(b->close(), "close b");
    b.reset();
    crash(fs, a);
  } else {
    fail("unknown fixture " + std::string(name));
  }
  check(fs.export_to(root, dir), "export to " + dir.string());
}

}  // namespace tandem::fault
