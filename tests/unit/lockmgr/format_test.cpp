// The election's file formats (lockmgr/format.h) and the takeover decision (fs_kind.h):
// pure functions, no locks, no processes.
#include <doctest/doctest.h>

#include <linux/magic.h>

#include <string>

#include "lockmgr/errc.h"
#include "lockmgr/format.h"
#include "lockmgr/fs_kind.h"

namespace lm = tandem::lockmgr;
using namespace std::chrono_literals;

TEST_CASE("the epoch file is two exact lines and round-trips") {
  CHECK(lm::encode_epoch(42) == "tandem-epoch 1\n42\n");
  CHECK(lm::parse_epoch("tandem-epoch 1\n42\n").value() == 42u);
  CHECK(lm::parse_epoch(lm::encode_epoch(18446744073709551615ULL)).value() == 18446744073709551615ULL);
  CHECK(lm::parse_epoch(lm::encode_epoch(1)).value() == 1u);
}

TEST_CASE("every deviation from the epoch format is refused, never read as zero") {
  const char* bad[] = {
      "",                                  // empty (a torn write on a file system without atomic rename)
      "tandem-epoch 1\n",                  // no value
      "tandem-epoch 1\n42",                // no final newline
      "tandem-epoch 1\n42\n\n",            // extra bytes
      "tandem-epoch 1\n042\n",             // leading zero
      "tandem-epoch 1\n0\n",               // zero is never a master's epoch
      "tandem-epoch 1\n+42\n",             // sign
      "tandem-epoch 1\n 42\n",             // space
      "tandem-epoch 1\n-1\n",              // negative
      "tandem-epoch 1\n18446744073709551616\n",  // overflow
      "tandem-epoch 2\n42\n",              // unknown version
      "tandem-epoch 1 \n42\n",             // trailing space in the header
      "TANDEM-EPOCH 1\n42\n",              // wrong magic
      "42\n",                              // no header at all
  };
  for (const char* text : bad) {
    CAPTURE(std::string(text));
    auto r = lm::parse_epoch(text);
    REQUIRE_FALSE(r);
    CHECK(r.error() == lm::errc::bad_epoch_file);
  }
}

TEST_CASE("a holder record round-trips through JSON, released or not") {
  lm::holder_record r;
  r.broker_name = "broker-a";
  r.host = "host-1";
  r.pid = 4242;
  r.epoch = 7;
  r.acquired_at = "2024-05-01T12:00:00.123Z";
  r.client_url = "tcp://10.0.0.5:61613";
  r.software_version = "0.1.0";
  auto back = lm::parse_holder(lm::encode_holder(r));
  REQUIRE(back);
  CHECK(back.value() == r);
  auto j = nlohmann::json::parse(lm::encode_holder(r));
  CHECK(j["format"] == "tandem-holder");
  CHECK(j["version"] == 1);
  CHECK(j["clean_release"] == false);
  CHECK(j["released_at"].is_null());

  r.clean_release = true;
  r.released_at = "2024-05-01T12:30:00.000Z";
  back = lm::parse_holder(lm::encode_holder(r));
  REQUIRE(back);
  CHECK(back.value() == r);
}

TEST_CASE("holder records with a wrong format, version or member type are refused") {
  lm::holder_record r;
  r.epoch = 3;
  auto good = lm::to_json(r);
  auto mutate = [&](auto f) {
    auto j = good;
    f(j);
    return lm::holder_from_json(j);
  };
  CHECK(lm::holder_from_json(good));
  CHECK_FALSE(mutate([](auto& j) { j["format"] = "other"; }));
  CHECK_FALSE(mutate([](auto& j) { j["version"] = 2; }));
  CHECK_FALSE(mutate([](auto& j) { j.erase("epoch"); }));
  CHECK_FALSE(mutate([](auto& j) { j["epoch"] = -1; }));
  CHECK_FALSE(mutate([](auto& j) { j["pid"] = "12"; }));
  CHECK_FALSE(mutate([](auto& j) { j["clean_release"] = 1; }));
  CHECK_FALSE(mutate([](auto& j) { j["released_at"] = 5; }));
  CHECK(mutate([](auto& j) { j["added_by_a_newer_writer"] = true; }));
  auto unparsable = lm::parse_holder("{\"format\": \"tandem-holder\",");
  REQUIRE_FALSE(unparsable);
  CHECK(unparsable.error() == lm::errc::bad_holder_record);
}

TEST_CASE("UTC timestamps are ISO 8601 with milliseconds") {
  auto t = lm::utc_now_iso8601();
  REQUIRE(t.size() == 24);
  CHECK(t[4] == '-');
  CHECK(t[10] == 'T');
  CHECK(t[19] == '.');
  CHECK(t.back() == 'Z');
}

TEST_CASE("local file systems need no takeover delay, shared and unknown ones wait twice the check interval") {
  for (std::uint64_t magic : {std::uint64_t{EXT4_SUPER_MAGIC}, std::uint64_t{0x58465342}, std::uint64_t{BTRFS_SUPER_MAGIC},
                              std::uint64_t{TMPFS_MAGIC}, std::uint64_t{OVERLAYFS_SUPER_MAGIC}}) {
    auto kind = lm::classify_fs_magic(magic);
    CAPTURE(kind.name);
    CHECK_FALSE(kind.shared);
    CHECK(lm::decide_takeover_delay(kind, 1000ms, std::nullopt).delay == 0ms);
  }
  for (std::uint64_t magic : {std::uint64_t{NFS_SUPER_MAGIC}, std::uint64_t{0x65735546}, std::uint64_t{0xFF534D42},
                              std::uint64_t{SMB_SUPER_MAGIC}, std::uint64_t{0x00C36400}, std::uint64_t{0x12345678}}) {
    auto kind = lm::classify_fs_magic(magic);
    CAPTURE(kind.name);
    CHECK(kind.shared);
    auto d = lm::decide_takeover_delay(kind, 1000ms, std::nullopt);
    CHECK(d.delay == 2000ms);
    CHECK_FALSE(d.reason.empty());
  }
  CHECK(lm::classify_fs_magic(NFS_SUPER_MAGIC).name == "nfs");
  CHECK(lm::classify_fs_magic(0x12345678).name == "unknown(0x12345678)");
  // The operator's value wins either way.
  CHECK(lm::decide_takeover_delay(lm::classify_fs_magic(EXT4_SUPER_MAGIC), 1000ms, 250ms).delay == 250ms);
  CHECK(lm::decide_takeover_delay(lm::classify_fs_magic(NFS_SUPER_MAGIC), 1000ms, 0ms).delay == 0ms);
}

TEST_CASE("a holder record's fence members are optional: absent reads as empty, mistyped is refused") {
  lm::holder_record r;
  r.epoch = 4;
  r.admin_url = "http://10.77.0.21:8161";
  r.mount_client_id = "4150";
  auto back = lm::parse_holder(lm::encode_holder(r));
  REQUIRE(back);
  CHECK(back.value() == r);
  auto j = lm::to_json(r);
  CHECK(j["mount_client_id"] == "4150");
  j.erase("admin_url");
  j.erase("mount_client_id");
  auto old = lm::holder_from_json(j);  // a record written before these members existed
  REQUIRE(old);
  CHECK(old.value().admin_url.empty());
  CHECK(old.value().mount_client_id.empty());
  j["mount_client_id"] = 4150;
  CHECK_FALSE(lm::holder_from_json(j));
}
