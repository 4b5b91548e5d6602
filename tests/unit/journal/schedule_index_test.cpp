// Issue 16: the index keeps the due time and job id of each entry on
// format::scheduler_target (live_index::schedules()), through appends, removes, batches,
// compaction, replay and checkpoints (format.h sections 5 and 6, checkpoint version 4), and
// a store whose checkpoints are version 2 or 3 still opens with the same index.
#include <doctest/doctest.h>

#include <xxhash.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "journal/detail/checkpoint.h"
#include "journal/detail/codec.h"
#include "journal/errc.h"
#include "journal/format.h"
#include "store_fixture.h"

using namespace tandem::journal;
using namespace tandem::journal::test;
using journal_index = tandem::journal::index;

namespace {

const std::string scheduler(format::scheduler_target);

message_add entry(std::uint64_t seq, std::int64_t due_ms, std::string job_id) {
  auto m = make_message(seq, {scheduler}, 200);
  m.deliver_at_ms = due_ms;
  m.message_id = std::move(job_id);
  return m;
}

// The schedules list a version 4 checkpoint ends its body with, in bytes (format.h
// section 6): what a version 2 or 3 writer would not have written.
std::size_t schedules_list_bytes(const journal_index& idx) {
  std::size_t n = 4;
  for (const auto& [seq, s] : idx.schedules()) n += 8 + 8 + 4 + s.job_id.size();
  return n;
}

// Rewrites a version 4 checkpoint image as the version 3 writer wrote it: no schedules list
// (version 3 kept the durable subscriptions' owners; version 2 is version 3 without them).
void make_version_3(std::vector<std::byte>& image, std::size_t list_bytes) {
  image.resize(image.size() - 8 - list_bytes);  // the trailer, then the list
  detail::put_u32_at(image.data() + 8, 3);
  detail::put_u64_at(image.data() + 88, image.size() - format::checkpoint_header_bytes);
  detail::seal_checkpoint(image);
}

std::vector<std::byte> read_file(const fsys::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

void write_file(const fsys::path& p, const std::vector<std::byte>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

detail::checkpoint_meta meta_for(const store_id& id, const journal_index& idx) {
  detail::checkpoint_meta m;
  m.id = id;
  m.lsn = 9;
  m.replay = {1, 64};
  m.next_msg_seq = idx.next_msg_seq();
  return m;
}

}  // namespace

TEST_CASE("the index keeps each scheduler entry's due time and job id, and only theirs") {
  fixture fx;
  auto s = fx.open(fx.opts());
  REQUIRE(!append_wait(*s, entry(1, 5000, "ID:b-1")).ec);
  REQUIRE(!append_wait(*s, entry(2, 7000, "ID:b-2")).ec);
  auto delayed = make_message(3, {"/queue/q"});
  delayed.deliver_at_ms = 9000;  // a delayed redelivery on a queue: not a schedule
  REQUIRE(!append_wait(*s, delayed).ec);
  const auto& sched = s->index().schedules();
  REQUIRE(sched.size() == 2);
  CHECK(sched.at(1) == schedule_ref{5000, "ID:b-1"});
  CHECK(sched.at(2) == schedule_ref{7000, "ID:b-2"});

  // A firing: one batch removes the entry and adds its next state (same job, new seq).
  batch firing;
  firing.items.emplace_back(message_remove{scheduler, 1});
  firing.items.emplace_back(entry(4, 6000, "ID:b-1"));
  REQUIRE(!append_wait(*s, firing).ec);
  CHECK(!sched.contains(1));
  CHECK(sched.at(4) == schedule_ref{6000, "ID:b-1"});
  // A cancel.
  REQUIRE(!append_wait(*s, message_remove{scheduler, 2}).ec);
  CHECK(sched.size() == 1);
  REQUIRE(!append_wait(*s, entry(5, 8000, "ID:b-5")).ec);
  const journal_index live = s->index();
  s.reset();

  recovery_report rep;
  auto from_checkpoint = fx.open(fx.opts(), &rep);
  CHECK(rep.from_checkpoint);
  CHECK(from_checkpoint->index() == live);
  CHECK(from_checkpoint->index().schedules() == live.schedules());
  from_checkpoint.reset();
  fx.remove_checkpoints();
  auto replayed = fx.open(fx.opts(), &rep);
  CHECK(!rep.from_checkpoint);
  CHECK(replayed->index() == live);
  CHECK(replayed->index().schedules().size() == 2);
}

TEST_CASE("compaction copies of scheduler entries keep their schedules, through a reopen") {
  fixture fx;
  auto o = fx.opts(16 * 1024);
  auto s = fx.open(o);
  for (std::uint64_t i = 1; i <= 40; ++i)
    REQUIRE(!append_wait(*s, entry(i, static_cast<std::int64_t>(1000 * i), "ID:job-" + std::to_string(i))).ec);
  // Churn that leaves the first segments mostly dead, so compaction copies the entries.
  for (std::uint64_t i = 41; i <= 200; ++i) {
    REQUIRE(!append_wait(*s, make_message(i, {"/queue/churn"}, 400)).ec);
    REQUIRE(!append_wait(*s, message_remove{"/queue/churn", i}).ec);
  }
  for (std::uint64_t i = 1; i <= 40; i += 2) REQUIRE(!append_wait(*s, message_remove{scheduler, i}).ec);
  const auto first_segment = s->index().segments().begin()->first;
  checkpoint_wait(*s);
  while (s->compact_step(64 * 1024)) checkpoint_wait(*s);
  checkpoint_wait(*s);
  CHECK(s->index().segments().begin()->first > first_segment);  // something was compacted away
  const journal_index live = s->index();
  REQUIRE(live.schedules().size() == 20);
  CHECK(live.schedules().at(2) == schedule_ref{2000, "ID:job-2"});
  s.reset();
  fx.remove_checkpoints();
  auto replayed = fx.open(o);
  CHECK(replayed->index() == live);
}

TEST_CASE("a checkpoint round trips the schedules; a damaged schedules list is refused") {
  const auto id = store_id::generate();
  journal_index idx;
  const std::vector<std::string> targets{scheduler};
  idx.add(1, std::span<const std::string>(targets), message_ref{{1, 64, 300}, 0, 4}, "", 0, {5000, "ID:a-1"});
  idx.add(2, std::span<const std::string>(targets), message_ref{{1, 400, 300}, 0, 4}, "", 0, {3000, "ID:a-2"});
  const std::vector<std::string> queue{"/queue/q"};
  idx.add(3, std::span<const std::string>(queue), message_ref{{1, 800, 300}, 0, 4}, "", 0, {9000, "m-3"});
  REQUIRE(idx.schedules().size() == 2);
  auto image = detail::encode_checkpoint(meta_for(id, idx), idx);

  journal_index back;
  std::string reason;
  REQUIRE_MESSAGE(detail::decode_checkpoint(image, id, &back, reason), reason);
  CHECK(back == idx);
  CHECK(back.schedules().at(2) == schedule_ref{3000, "ID:a-2"});

  // A list one entry short: the count no longer matches the scheduler target's entries.
  auto short_list = image;
  const std::size_t last = 8 + 8 + 4 + std::string("ID:a-2").size();
  const std::size_t list_at = short_list.size() - 8 - schedules_list_bytes(idx);
  short_list.resize(short_list.size() - 8 - last);
  detail::put_u32_at(short_list.data() + list_at, 1);
  detail::put_u64_at(short_list.data() + 88, short_list.size() - format::checkpoint_header_bytes);
  detail::seal_checkpoint(short_list);
  journal_index refused;
  CHECK(!detail::decode_checkpoint(short_list, id, &refused, reason));
  CHECK(reason == "schedules list does not match the scheduler target's entries");
}

TEST_CASE("a version 3 checkpoint loads when it holds no scheduler entry, and is refused by name when it does") {
  const auto id = store_id::generate();
  journal_index plain;
  const std::vector<std::string> queue{"/queue/q"};
  plain.add(1, std::span<const std::string>(queue), message_ref{{1, 64, 300}, 0, 4}, "p", 1);
  auto image = detail::encode_checkpoint(meta_for(id, plain), plain);
  make_version_3(image, schedules_list_bytes(plain));
  journal_index back;
  std::string reason;
  REQUIRE_MESSAGE(detail::decode_checkpoint(image, id, &back, reason), reason);
  CHECK(back == plain);

  journal_index with_entries = plain;
  const std::vector<std::string> targets{scheduler};
  with_entries.add(2, std::span<const std::string>(targets), message_ref{{1, 400, 300}, 0, 4}, "", 0, {5000, "ID:a-2"});
  image = detail::encode_checkpoint(meta_for(id, with_entries), with_entries);
  make_version_3(image, schedules_list_bytes(with_entries));
  auto refused = detail::decode_checkpoint(image, id, nullptr, reason);
  REQUIRE(!refused);
  CHECK(refused.error() == errc::unsupported_version);
  CHECK(reason == "version 2/3 checkpoint holds scheduled entries without their due times");
}

TEST_CASE("a store whose checkpoints are version 3 opens with its schedules: the log is replayed instead") {
  fixture fx;
  auto s = fx.open(fx.opts());
  for (std::uint64_t i = 1; i <= 10; ++i)
    REQUIRE(!append_wait(*s, entry(i, static_cast<std::int64_t>(100 * i), "ID:old-" + std::to_string(i))).ec);
  REQUIRE(!append_wait(*s, make_message(11, {"/queue/q"})).ec);
  checkpoint_wait(*s);
  const journal_index live = s->index();
  s.reset();  // a checkpoint at close too: two files, both rewritten below
  auto ckpts = fx.files(".ckpt");
  REQUIRE(!ckpts.empty());
  for (const auto& p : ckpts) {
    auto image = read_file(p);
    make_version_3(image, schedules_list_bytes(live));
    write_file(p, image);
  }
  recovery_report rep;
  auto again = fx.open(fx.opts(), &rep);
  CHECK(!rep.from_checkpoint);
  CHECK(fx.count(event_kind::checkpoint_fallback) >= 1);
  CHECK(again->index() == live);
  CHECK(again->index().schedules().at(3) == schedule_ref{300, "ID:old-3"});
  // Its next checkpoint is version 4, which the next open loads.
  again.reset();
  auto third = fx.open(fx.opts(), &rep);
  CHECK(rep.from_checkpoint);
  CHECK(third->index() == live);
}
