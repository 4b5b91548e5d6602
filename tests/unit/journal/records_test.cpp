#include <doctest/doctest.h>

#include <random>

#include "journal/detail/message_view.h"
#include "journal/errc.h"
#include "journal/format.h"
#include "journal/identity.h"
#include "journal/records.h"
#include "tests/support/temp_dir.h"

using namespace tandem::journal;

namespace {

message_add sample_add(std::uint64_t seq) {
  message_add m;
  m.msg_seq = seq;
  m.targets = {"/queue/a", subscription_target("client-1", "sub")};
  m.message_id = "ID:host-1-" + std::to_string(seq);
  m.producer_id = "producer-7";
  m.producer_seq = seq * 3;
  m.expires_ms = -5;  // negative values must survive (i64)
  m.priority = 9;
  m.persistent = false;
  m.headers = {{"content-type", "text/plain"}, {"x", "1"}, {"x", "2"}, {"", ""}};
  m.body = std::string("a\0b\0\xff", 5);
  return m;
}

std::vector<record> every_record() {
  std::vector<record> all;
  all.push_back(sample_add(42));
  all.push_back(message_add{{1, "", "", 0, 0, 0, true, {}, ""}, {"q"}});
  auto delayed = sample_add(44);  // issue 16: put back with a delay
  delayed.deliver_at_ms = 1'700'000'000'000;
  delayed.redeliveries = 2;
  all.push_back(delayed);
  all.push_back(message_remove{"/queue/a", 42});
  all.push_back(batch{{sample_add(43), message_remove{"/queue/b", 7}}});
  all.push_back(batch{});
  all.push_back(destination_create{"/queue/new"});
  all.push_back(destination_delete{"/queue/old"});
  all.push_back(durable_subscription_create{{"client", "sub", "/topic/t", "color = 'red'"}});
  all.push_back(durable_subscription_create{{"client", "owned", "/topic/t", "", "alice"}});
  all.push_back(durable_subscription_remove{{"client", "sub", "/topic/t", ""}});
  all.push_back(epoch_start{7, 3, 4096, 1234, "broker-a"});
  all.push_back(checkpoint_record{99, "checkpoint-0000000000000063.ckpt"});
  all.push_back(index_state{1000, {{"p1", false, {1, 2, 3}}, {"p1", true, {4}}, {std::string("\0x", 2), false, {}}}});
  all.push_back(index_state{1, {}});
  return all;
}

}  // namespace

TEST_CASE("every record type survives encode and decode unchanged") {
  for (const auto& r : every_record()) {
    std::vector<std::byte> buf;
    REQUIRE(!encode_payload(r, buf));
    auto back = decode_payload(type_of(r), buf);
    REQUIRE(back);
    CHECK(back.value() == r);
    CHECK(to_string(type_of(r)) != "unknown");
  }
}

TEST_CASE("a truncated or extended payload does not decode") {
  for (const auto& r : every_record()) {
    std::vector<std::byte> buf;
    REQUIRE(!encode_payload(r, buf));
    if (!buf.empty()) {
      auto shorter = std::span<const std::byte>(buf).first(buf.size() - 1);
      CHECK(decode_payload(type_of(r), shorter).error() == errc::corrupt_file);
    }
    buf.push_back(std::byte{0});
    CHECK(decode_payload(type_of(r), buf).error() == errc::corrupt_file);
  }
}

// Issue 17: a durable subscription belongs to the login that made it, across restarts.
TEST_CASE("record 6 carries its owner laid out as format.h shows, and record 7 does not") {
  std::vector<std::byte> buf;
  REQUIRE(!encode_payload(record{durable_subscription_create{{"app", "feed", "/topic/t", "", "shop"}}}, buf));
  // The worked example of format.h section 5, record 6.
  const std::string expected_hex =
      "03000000617070" "0400000066656564" "080000002f746f7069632f74" "00000000" "0400000073686f70";
  std::string hex;
  for (auto b : buf) {
    hex += "0123456789abcdef"[static_cast<unsigned>(b) >> 4];
    hex += "0123456789abcdef"[static_cast<unsigned>(b) & 15];
  }
  CHECK(hex == expected_hex);
  CHECK(buf.size() == 39);

  std::vector<std::byte> removal;
  REQUIRE(!encode_payload(record{durable_subscription_remove{{"app", "feed", "/topic/t", "", "shop"}}}, removal));
  CHECK(removal.size() == 31);  // the four definition fields only: removal is by key
  auto back = decode_payload(record_type::durable_subscription_remove, removal);
  REQUIRE(back);
  CHECK(std::get<durable_subscription_remove>(back.value()).owner_login.empty());
}

TEST_CASE("a record 6 written before owners were kept reads as unowned") {
  std::vector<std::byte> buf;
  REQUIRE(!encode_payload(record{durable_subscription_create{{"app", "feed", "/topic/t", "x = 1", "shop"}}}, buf));
  buf.resize(buf.size() - 8);  // a version 2 segment's record 6 ends after the selector
  auto back = decode_payload(record_type::durable_subscription_create, buf);
  REQUIRE(back);
  const auto& sub = std::get<durable_subscription_create>(back.value());
  CHECK(sub == durable_subscription_create{{"app", "feed", "/topic/t", "x = 1", ""}});
  // A torn owner field is still corruption, not "unowned".
  buf.push_back(std::byte{4});
  CHECK(decode_payload(record_type::durable_subscription_create, buf).error() == errc::corrupt_file);
}

TEST_CASE("a message with no target is refused by the encoder") {
  std::vector<std::byte> buf;
  message_add m;
  CHECK(encode_payload(m, buf) == errc::invalid_argument);
}

TEST_CASE("message_add payload layout matches format.h byte by byte") {
  message_add m;
  m.msg_seq = 0x0102030405060708;
  m.targets = {"q"};
  m.message_id = "i";
  m.producer_id = "";
  m.producer_seq = 0;
  m.expires_ms = 0;
  m.priority = 4;
  m.persistent = true;
  m.body = "B";
  std::vector<std::byte> buf;
  REQUIRE(!encode_payload(m, buf));
  const unsigned char expect[] = {
      8, 7, 6, 5, 4, 3, 2, 1,  // msg_seq LE
      1, 0, 0, 0, 1, 0, 0, 0, 'q',  // targets: count 1, "q"
      1, 0, 0, 0, 'i',              // message id
      0, 0, 0, 0,                   // producer id ""
      0, 0, 0, 0, 0, 0, 0, 0,       // producer seq
      0, 0, 0, 0, 0, 0, 0, 0,       // expires
      4,                            // priority
      1,                            // flags: persistent
      0, 0, 0, 0,                   // headers: none
      1, 0, 0, 0, 'B'};             // body
  REQUIRE(buf.size() == sizeof(expect));
  for (std::size_t i = 0; i < buf.size(); ++i) CHECK(static_cast<unsigned char>(buf[i]) == expect[i]);
}

TEST_CASE("segment header round trips and rejects damage") {
  segment_header h;
  h.store = store_id::generate();
  h.seq = 5;
  h.epoch = 3;
  h.capacity = 1 << 20;
  std::array<std::byte, format::segment_header_bytes> b;
  encode_segment_header(h, b);
  auto back = decode_segment_header(b);
  REQUIRE(back);
  CHECK(back.value().store == h.store);
  CHECK(back.value().seq == 5);
  CHECK(back.value().epoch == 3);
  for (std::size_t i = 0; i < b.size(); ++i) {
    auto copy = b;
    copy[i] ^= std::byte{0x10};
    CHECK(!decode_segment_header(copy));
  }
}

TEST_CASE("a single flipped bit anywhere in a record is detected") {
  std::vector<std::byte> payload;
  REQUIRE(!encode_payload(sample_add(9), payload));
  std::vector<std::byte> rec(format::record_header_bytes + payload.size());
  std::copy(payload.begin(), payload.end(), rec.begin() + format::record_header_bytes);
  encode_record_header(record_type::message_add, 77, 2, payload,
                       std::span<std::byte, format::record_header_bytes>(rec.data(), format::record_header_bytes));
  auto verify = [](const std::vector<std::byte>& r) {
    return verify_record(std::span<const std::byte, format::record_header_bytes>(r.data(), format::record_header_bytes),
                         std::span<const std::byte>(r).subspan(format::record_header_bytes));
  };
  CHECK(verify(rec).empty());
  for (std::size_t i = 0; i < rec.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto copy = rec;
      copy[i] ^= static_cast<std::byte>(1 << bit);
      CHECK_MESSAGE(!verify(copy).empty(), "byte ", i, " bit ", bit);
    }
  }
}

TEST_CASE("an unknown record type with a valid checksum is corruption") {
  std::vector<std::byte> rec(format::record_header_bytes);
  encode_record_header(static_cast<record_type>(200), 1, 0, {},
                       std::span<std::byte, format::record_header_bytes>(rec.data(), format::record_header_bytes));
  auto reason = verify_record(std::span<const std::byte, format::record_header_bytes>(rec.data(), format::record_header_bytes), {});
  CHECK(reason == "unknown record type");
  CHECK(decode_payload(static_cast<record_type>(200), {}).error() == errc::corrupt_file);
}

TEST_CASE("store ids print and parse as 32 hex digits") {
  auto id = store_id::generate();
  auto hex = id.to_hex();
  CHECK(hex.size() == 32);
  CHECK(store_id::parse(hex) == id);
  CHECK(!store_id::parse(hex.substr(1)));
  CHECK(!store_id::parse(std::string(32, 'g')));
}

TEST_CASE("a store is created only explicitly and its identity reads back") {
  tandem::test::temp_dir d;
  auto& fs = tandem::fs::posix_file_system();
  CHECK(read_identity(fs, d.path()).error() == errc::not_a_store);
  auto created = create_store(fs, d.path());
  REQUIRE(created);
  auto id = read_identity(fs, d.path());
  REQUIRE(id);
  CHECK(id.value().id == created.value().id);
  CHECK(id.value().version == format::identity_version);
  CHECK(create_store(fs, d.path()).error() == std::errc::file_exists);
  CHECK(std::filesystem::is_directory(d.path() / "journal"));
}

TEST_CASE("an identity of another format or version is refused by name") {
  tandem::test::temp_dir d;
  auto& fs = tandem::fs::posix_file_system();
  std::string text = "format=tandem-store\nversion=2\nstore_id=" + store_id::generate().to_hex() + "\ncreated_ms=1\n";
  REQUIRE(!tandem::fs::write_file_atomically(fs, d.path() / "identity", std::as_bytes(std::span(text))));
  CHECK(read_identity(fs, d.path()).error() == errc::unsupported_version);
  text = "format=other\nversion=1\n";
  REQUIRE(!tandem::fs::write_file_atomically(fs, d.path() / "identity", std::as_bytes(std::span(text))));
  CHECK(read_identity(fs, d.path()).error() == errc::unsupported_version);
  text = "garbage";
  REQUIRE(!tandem::fs::write_file_atomically(fs, d.path() / "identity", std::as_bytes(std::span(text))));
  CHECK(read_identity(fs, d.path()).error() == errc::corrupt_file);
}

TEST_CASE("error codes have the journal category and operator wording") {
  std::error_code ec = errc::mid_log_corruption;
  CHECK(ec.category().name() == std::string("journal"));
  CHECK(ec.message().find("tandem-journal verify") != std::string::npos);
}

TEST_CASE("index_state payload layout matches format.h byte by byte") {
  std::vector<std::byte> buf;
  REQUIRE(!encode_payload(index_state{0x0102, {{"ab", true, {5}}}}, buf));
  const std::vector<std::uint8_t> expected = {
      0x02, 0x01, 0, 0, 0, 0, 0, 0,  // next_msg_seq
      1, 0, 0, 0,                    // windows: 1
      2, 0, 0, 0, 'a', 'b',          // producer_id
      1,                             // extend
      1, 0, 0, 0,                    // seqs: 1
      5, 0, 0, 0, 0, 0, 0, 0};
  REQUIRE(buf.size() == expected.size());
  for (std::size_t i = 0; i < buf.size(); ++i) CHECK_MESSAGE(static_cast<std::uint8_t>(buf[i]) == expected[i], "byte ", i);
  buf[18] = std::byte{2};  // extend must be 0 or 1
  CHECK(decode_payload(record_type::index_state, buf).error() == errc::corrupt_file);
}

TEST_CASE("a compaction copy reads back equal to the original and carries the copy flag") {
  auto m = sample_add(77);
  std::vector<std::byte> plain, copy;
  REQUIRE(!encode_payload(m, plain));
  REQUIRE(!encode_compaction_copy(m, copy));
  REQUIRE(plain.size() == copy.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) differing += plain[i] != copy[i];
  CHECK(differing == 1);  // only the flags byte
  auto back = decode_payload(record_type::message_add, copy);
  REQUIRE(back);
  CHECK(std::get<message_add>(back.value()) == m);
  detail::message_view v;
  REQUIRE(detail::decode_message_view(copy, v));
  CHECK(v.compaction_copy);
  REQUIRE(detail::decode_message_view(plain, v));
  CHECK(!v.compaction_copy);
  CHECK(v.producer_id == "producer-7");
}

TEST_CASE("issue 16: a message's delivery state is encoded after the flags (bit 2) and read back") {
  message_add m;
  m.msg_seq = 1;
  m.targets = {"q"};
  m.persistent = true;
  m.deliver_at_ms = 0x0102030405060708;
  m.redeliveries = 3;
  std::vector<std::byte> buf;
  REQUIRE(!encode_payload(m, buf));
  // msg_seq 8, targets 4+4+1, message id 4, producer id 4, producer seq 8, expires 8,
  // priority 1: the flags byte is at 42, the delivery state right after it.
  const std::size_t flags_at = 8 + 9 + 4 + 4 + 8 + 8 + 1;
  CHECK(static_cast<unsigned>(buf[flags_at]) == (0x01u | 0x04u));
  const unsigned char state[] = {8, 7, 6, 5, 4, 3, 2, 1, 3, 0, 0, 0};
  for (std::size_t i = 0; i < sizeof(state); ++i) CHECK(static_cast<unsigned char>(buf[flags_at + 1 + i]) == state[i]);
  auto back = decode_payload(record_type::message_add, buf);
  REQUIRE(back);
  CHECK(std::get<message_add>(back.value()) == m);
  // The index's view stops before it and still reads the prefix.
  detail::message_view v;
  REQUIRE(detail::decode_message_view(buf, v));
  CHECK(v.msg_seq == 1);
  // A compaction copy keeps it.
  std::vector<std::byte> copy;
  REQUIRE(!encode_compaction_copy(m, copy));
  CHECK(std::get<message_add>(decode_payload(record_type::message_add, copy).value()) == m);
  // Without bit 2 the state is absent (the layout test above) and reads as zeros.
  m.deliver_at_ms = 0;
  m.redeliveries = 0;
  buf.clear();
  REQUIRE(!encode_payload(m, buf));
  CHECK(static_cast<unsigned>(buf[flags_at]) == 0x01u);
  CHECK(std::get<message_add>(decode_payload(record_type::message_add, buf).value()) == m);
}

TEST_CASE("issue 16: an unknown message_add flag bit is still corruption") {
  message_add m;
  m.msg_seq = 1;
  m.targets = {"q"};
  std::vector<std::byte> buf;
  REQUIRE(!encode_payload(m, buf));
  const std::size_t flags_at = 8 + 9 + 4 + 4 + 8 + 8 + 1;
  buf[flags_at] = std::byte{0x08};
  CHECK(!decode_payload(record_type::message_add, buf));
}
