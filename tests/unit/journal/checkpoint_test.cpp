// Checkpoint images (format.h section 6): round trips, refusals, and what encoding a big
// index costs the owner thread.
#include <doctest/doctest.h>

#include <time.h>

#include <chrono>

#include "journal/detail/checkpoint.h"
#include "journal/detail/codec.h"
#include "journal/errc.h"
#include "journal/format.h"

#include <xxhash.h>

using namespace tandem::journal;
using journal_index = tandem::journal::index;

namespace {

detail::checkpoint_meta sample_meta(const store_id& id) {
  detail::checkpoint_meta m;
  m.id = id;
  m.lsn = 77;
  m.replay = {3, 4096};
  m.next_msg_seq = 1234;
  m.max_epoch = 5;
  m.cut = {2, 800};
  return m;
}

// idx encoded into a checkpoint image (sample_meta, idx's next_msg_seq) and decoded again.
journal_index round_trip(const journal_index& idx, const store_id& id) {
  auto meta = sample_meta(id);
  meta.next_msg_seq = idx.next_msg_seq();
  auto image = detail::encode_checkpoint(meta, idx);
  journal_index back;
  std::string reason;
  REQUIRE_MESSAGE(detail::decode_checkpoint(image, id, &back, reason), reason);
  return back;
}

void fill(journal_index& idx, std::uint64_t messages, std::uint64_t targets) {
  std::vector<std::string> one(1);
  for (std::uint64_t i = 1; i <= messages; ++i) {
    one[0] = "/queue/q" + std::to_string(i % targets);
    idx.add(i, std::span<const std::string>(one),
            message_ref{{1 + i / 1000, static_cast<std::uint32_t>(64 + (i % 1000) * 1100), 1100},
                        static_cast<std::int64_t>(i), static_cast<std::uint8_t>(i % 10)},
            "p" + std::to_string(i % 3), i);
  }
}

}  // namespace

TEST_CASE("a checkpoint round trips the whole index, definition locations included") {
  const auto id = store_id::generate();
  journal_index idx(4);
  fill(idx, 50, 3);
  idx.create_destination("/queue/located", location{2, 64, 56});
  idx.create_destination("/queue/not-yet-durable");
  idx.create_subscription({"c", "s", "/topic/t", "x = 1"}, location{3, 128, 80});
  idx.create_subscription({"c", "pending", "/topic/u", ""});
  auto meta_in = sample_meta(id);
  meta_in.next_msg_seq = idx.next_msg_seq();
  auto image = detail::encode_checkpoint(meta_in, idx);

  journal_index back(4);
  std::string reason;
  auto meta = detail::decode_checkpoint(image, id, &back, reason);
  REQUIRE_MESSAGE(meta, reason);
  CHECK(meta.value().lsn == 77);
  CHECK(meta.value().replay == detail::position{3, 4096});
  CHECK(meta.value().live_messages == 50);
  CHECK(back == idx);
  CHECK(back.destination_locations().size() == 1);
  CHECK(back.subscription_locations().size() == 1);
  CHECK(back.definition_bytes() == 56 + 80);
  CHECK(back.segments().at(1).live_records == 50);
  CHECK(back.segments().at(2).live_records == 1);  // the located destination
  CHECK(back.segments().at(3).live_bytes == 80);   // the located subscription

  // Sealed in two steps (owner encodes, writer seals) gives the same bytes.
  std::vector<std::byte> two_step;
  detail::encode_checkpoint_unsealed(meta_in, idx, two_step);
  detail::seal_checkpoint(two_step);
  CHECK(two_step == image);
}

TEST_CASE("a checkpoint of format version 1, or of a newer version, is refused by name") {
  const auto id = store_id::generate();
  journal_index idx;
  for (std::uint32_t version : {1u, format::checkpoint_format_version + 1}) {
    auto image = detail::encode_checkpoint(sample_meta(id), idx);
    detail::put_u32_at(image.data() + 8, version);
    detail::put_u64_at(image.data() + image.size() - 8, XXH3_64bits(image.data(), image.size() - 8));
    std::string reason;
    auto meta = detail::decode_checkpoint(image, id, nullptr, reason);
    REQUIRE(!meta);
    CHECK(meta.error() == errc::unsupported_version);
    CHECK(reason == "unsupported checkpoint version");
  }
}

// Issue 17: the owner of a durable subscription survives a restart that loads a checkpoint.
TEST_CASE("a checkpoint keeps each durable subscription's owner") {
  const auto id = store_id::generate();
  journal_index idx;
  idx.create_subscription({"app", "feed", "/topic/t", "", "shop"}, location{3, 128, 80});
  idx.create_subscription({"app", "legacy", "/topic/t", "", ""});
  journal_index back = round_trip(idx, id);
  CHECK(back == idx);
  CHECK(back.durable_subscriptions().at(subscription_target("app", "feed")).owner_login == "shop");
  CHECK(back.durable_subscriptions().at(subscription_target("app", "legacy")).owner_login.empty());
}

TEST_CASE("a version 2 checkpoint, written before owners were kept, loads them unowned") {
  const auto id = store_id::generate();
  // Header of a real checkpoint, body laid out as format.h section 6 says version 2 did.
  auto image = detail::encode_checkpoint(sample_meta(id), journal_index{});
  image.resize(format::checkpoint_header_bytes);
  detail::put_u32_at(image.data() + 8, 2);
  detail::encoder e(image);
  e.u32(0);  // destinations
  e.u32(1);  // durable subscriptions: client_id, name, topic, selector, location
  e.str("app");
  e.str("feed");
  e.str("/topic/t");
  e.str("x = 1");
  e.u64(3);
  e.u32(128);
  e.u32(80);
  e.u32(0);  // dedup windows
  e.u32(0);  // live messages
  detail::put_u64_at(image.data() + 88, image.size() - format::checkpoint_header_bytes);
  detail::seal_checkpoint(image);

  journal_index back;
  std::string reason;
  REQUIRE_MESSAGE(detail::decode_checkpoint(image, id, &back, reason), reason);
  REQUIRE(back.durable_subscriptions().size() == 1);
  const auto& sub = back.durable_subscriptions().at(subscription_target("app", "feed"));
  CHECK(sub == durable_subscription{"app", "feed", "/topic/t", "x = 1", ""});
  CHECK(back.subscription_locations().size() == 1);
}

TEST_CASE("encoding the checkpoint of a million live messages on the owner thread") {
  // The owner thread (the broker's io thread) only walks the index into a buffer kept from
  // the previous checkpoint; the checksum and the write happen on the writer thread. This
  // prints both costs; the figure for 1M entries is in the journal's commit log.
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::uint64_t n = 100000;
#else
  constexpr std::uint64_t n = 1000000;
#endif
  const auto id = store_id::generate();
  journal_index idx;
  fill(idx, n, 16);
  auto meta = sample_meta(id);
  meta.next_msg_seq = idx.next_msg_seq();
  // CPU time of this thread, so a loaded machine (other builds on the same cores) does not
  // count; wall time is printed beside it.
  auto cpu_ms = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
  };
  using wall = std::chrono::steady_clock;
  auto wall_ms = [](wall::time_point t0) { return std::chrono::duration<double, std::milli>(wall::now() - t0).count(); };
  struct cost {
    double cpu = 1e9, wall = 1e9;
  };
  auto measure = [&](cost& c, auto&& f) {
    const double c0 = cpu_ms();
    const auto w0 = wall::now();
    f();
    c.cpu = std::min(c.cpu, cpu_ms() - c0);
    c.wall = std::min(c.wall, wall_ms(w0));
  };

  std::vector<std::byte> buffer;
  cost cold, warm, seal, whole;
  measure(cold, [&] { detail::encode_checkpoint_unsealed(meta, idx, buffer); });  // buffer's first use
  for (int i = 0; i < 3; ++i) {
    buffer.clear();  // what the store does: capacity kept between checkpoints
    measure(warm, [&] { detail::encode_checkpoint_unsealed(meta, idx, buffer); });
  }
  // The store sizes its buffer with the estimate at open: it must cover the image.
  CHECK(buffer.size() + 8 <= detail::checkpoint_size_estimate(idx));
  measure(seal, [&] { detail::seal_checkpoint(buffer); });
  measure(whole, [&] { (void)detail::encode_checkpoint(meta, idx); });  // fresh buffer + checksum, in one go
  MESSAGE(n, " entries, ", buffer.size() / (1 << 20), " MiB. Owner thread, warm buffer: ", warm.cpu, " ms CPU (",
          warm.wall, " ms wall); cold buffer: ", cold.cpu, " ms CPU. Writer thread checksum: ", seal.cpu,
          " ms CPU. All on one thread with a fresh buffer: ", whole.cpu, " ms CPU (", whole.wall, " ms wall)");

  journal_index back;
  std::string reason;
  auto decoded = detail::decode_checkpoint(buffer, id, &back, reason);
  REQUIRE_MESSAGE(decoded, reason);
  CHECK(decoded.value().live_messages == n);
  CHECK(back == idx);
}

// Issue 19: a big target's entries load into a node_arena (node_arena.h) instead of one
// malloc each; the index must be the one the adds built, and stay so through removes.
TEST_CASE("a big target loads into an arena and equals the index its adds built, through removes") {
  const auto id = store_id::generate();
  journal_index idx;
  fill(idx, 80'000, 2);  // 40,000 a target, past the arena's threshold
  journal_index back = round_trip(idx, id);
  REQUIRE(back.messages("/queue/q0") != nullptr);
  CHECK(back.messages("/queue/q0")->get_allocator().arena() != nullptr);
  CHECK(back == idx);
  CHECK(back.next_msg_seq() == idx.next_msg_seq());
  CHECK(back.segments() == idx.segments());
  // Individual acks in the middle, a drained head, then new adds after the load.
  for (std::uint64_t seq = 2; seq <= 80'000; seq += 7) {
    CHECK(back.remove("/queue/q" + std::to_string(seq % 2), seq));
    CHECK(idx.remove("/queue/q" + std::to_string(seq % 2), seq));
  }
  for (std::uint64_t seq = 1; seq <= 30'000; ++seq) {
    (void)back.remove("/queue/q" + std::to_string(seq % 2), seq);
    (void)idx.remove("/queue/q" + std::to_string(seq % 2), seq);
  }
  const std::string target = "/queue/q1";
  for (std::uint64_t seq = 80'001; seq <= 80'100; ++seq) {
    const message_ref ref{{99, 64, 1100}, 0, 4};
    back.add(seq, std::span<const std::string>(&target, 1), ref, "", 0);
    idx.add(seq, std::span<const std::string>(&target, 1), ref, "", 0);
  }
  CHECK(back == idx);
  CHECK(content_digest(back) == content_digest(idx));
}

#include "journal/fs/file_system.h"
#include "tests/support/temp_dir.h"

// Issue 19: recovery checks the fallback checkpoint from its header and checksum in small
// reads instead of loading a second copy of the index.
TEST_CASE("verify_checkpoint_file accepts a sound file and names what is wrong with a damaged one") {
  tandem::test::temp_dir dir;
  auto& fs = tandem::fs::posix_file_system();
  const auto id = store_id::generate();
  journal_index idx;
  fill(idx, 5'000, 3);
  auto meta_in = sample_meta(id);
  meta_in.next_msg_seq = idx.next_msg_seq();
  const auto image = detail::encode_checkpoint(meta_in, idx);  // > 1 MiB: several pieces
  const auto path = dir.path() / "checkpoint.ckpt";
  auto write = [&](std::span<const std::byte> bytes) {
    REQUIRE(!tandem::fs::write_file_atomically(fs, path, bytes));
  };
  std::string reason;

  write(image);
  auto ok = detail::verify_checkpoint_file(fs, path, id, reason);
  REQUIRE_MESSAGE(ok, reason);
  CHECK(ok.value().lsn == 77);
  CHECK(ok.value().replay == detail::position{3, 4096});

  auto wrong_store = detail::verify_checkpoint_file(fs, path, store_id::generate(), reason);
  REQUIRE(!wrong_store);
  CHECK(wrong_store.error() == errc::wrong_store);

  auto flipped = image;
  flipped[flipped.size() / 2] ^= std::byte{1};
  write(flipped);
  auto bad_sum = detail::verify_checkpoint_file(fs, path, id, reason);
  REQUIRE(!bad_sum);
  CHECK(bad_sum.error() == errc::corrupt_file);
  CHECK(reason == "checksum mismatch");

  write(std::span(image).first(image.size() - 100));
  auto truncated = detail::verify_checkpoint_file(fs, path, id, reason);
  REQUIRE(!truncated);
  CHECK(reason == "length does not match the file size (truncated?)");

  write(std::span(image).first(10));
  auto tiny = detail::verify_checkpoint_file(fs, path, id, reason);
  REQUIRE(!tiny);
  CHECK(reason == "file too short");

  auto future = image;
  detail::put_u32_at(future.data() + 8, format::checkpoint_format_version + 1);
  write(future);
  auto version = detail::verify_checkpoint_file(fs, path, id, reason);
  REQUIRE(!version);
  CHECK(version.error() == errc::unsupported_version);
}

TEST_CASE("read_checkpoint_image reads the whole file and leaves room to grow") {
  tandem::test::temp_dir dir;
  auto& fs = tandem::fs::posix_file_system();
  const auto id = store_id::generate();
  journal_index idx;
  fill(idx, 5'000, 3);
  const auto image = detail::encode_checkpoint(sample_meta(id), idx);
  const auto path = dir.path() / "checkpoint.ckpt";
  REQUIRE(!tandem::fs::write_file_atomically(fs, path, image));
  std::vector<std::byte> read;
  REQUIRE(!detail::read_checkpoint_image(fs, path, read));
  CHECK(read == image);
  CHECK(read.capacity() >= image.size() + image.size() / 2);
  CHECK(detail::read_checkpoint_image(fs, dir.path() / "missing.ckpt", read) == std::errc::no_such_file_or_directory);
}
