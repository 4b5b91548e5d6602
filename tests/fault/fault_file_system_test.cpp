// The test double itself: if it modelled power loss wrongly, every crash test built on it
// would prove nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "tests/support/fault_file_system.h"

namespace {

using tandem::test::crash_options;
using tandem::test::fault_file_system;
using tandem::test::op;
namespace tfs = tandem::fs;

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

std::string text_of(const std::optional<std::vector<std::byte>>& v) {
  REQUIRE(v.has_value());
  return std::string(reinterpret_cast<const char*>(v->data()), v->size());
}

std::string read_all(fault_file_system& fs, const std::string& p) {
  auto s = tfs::read_file(fs, p);
  REQUIRE(s.has_value());
  return s.value();
}

// A directory that already exists durably, as a test's data dir would.
void make_dir(fault_file_system& fs, const std::string& dir) {
  REQUIRE_FALSE(fs.create_directories(dir));
  REQUIRE_FALSE(fs.sync_dir("/"));
}

// A durable file: created, written, synced, its directory synced.
void make_file(fault_file_system& fs, const std::string& p, const std::string& text) {
  auto f = fs.open(p, tfs::open_mode::create_exclusive);
  REQUIRE(f.has_value());
  REQUIRE_FALSE(f.value()->write_at(bytes_of(text), 0));
  REQUIRE_FALSE(f.value()->sync());
  REQUIRE_FALSE(fs.sync_dir(std::filesystem::path(p).parent_path()));
}

}  // namespace

TEST_CASE("reads see unsynced writes but only synced data survives a power cut") {
  fault_file_system fs(7);
  make_dir(fs, "/d");
  make_file(fs, "/d/f", "durable!");
  auto f = fs.open("/d/f", tfs::open_mode::read_write);
  REQUIRE(f.has_value());
  REQUIRE_FALSE(f.value()->write_at(bytes_of(std::string("PENDING")), 8));
  CHECK(read_all(fs, "/d/f") == "durable!PENDING");
  CHECK(fs.pending_data_ops() == 1);
  fs.crash(crash_options::lose_all_unsynced());
  CHECK(read_all(fs, "/d/f") == "durable!");
  CHECK(fs.pending_data_ops() == 0);
}

TEST_CASE("sync makes pending writes durable") {
  fault_file_system fs(7);
  make_dir(fs, "/d");
  make_file(fs, "/d/f", "abc");
  auto f = fs.open("/d/f", tfs::open_mode::read_write);
  REQUIRE(f.has_value());
  REQUIRE_FALSE(f.value()->write_at(bytes_of(std::string("XY")), 1));
  REQUIRE_FALSE(f.value()->allocate(0, 6));
  REQUIRE_FALSE(f.value()->sync());
  fs.crash(crash_options::lose_all_unsynced());
  CHECK(text_of(fs.durable_contents("/d/f")) == std::string("aXY\0\0\0", 6));
}

TEST_CASE("a file created without a directory sync can vanish in a power cut") {
  fault_file_system fs(7);
  make_dir(fs, "/d");
  auto f = fs.open("/d/new", tfs::open_mode::create_exclusive);
  REQUIRE(f.has_value());
  REQUIRE_FALSE(f.value()->write_at(bytes_of(std::string("data")), 0));
  REQUIRE_FALSE(f.value()->sync());  // data synced, the name is not
  fs.crash(crash_options::lose_all_unsynced());
  CHECK_FALSE(fs.exists("/d/new").value());
}

TEST_CASE("an atomic replace survives as old or new, never as a mix") {
  // write_file_atomically = tmp, fsync, rename, fsync dir. Crash before the directory sync
  // with every possible prefix of the namespace operations: the file holds old or new.
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    fault_file_system fs(seed);
    make_dir(fs, "/d");
    make_file(fs, "/d/f", "old");
    // Die before the final sync_dir: open(create), write, sync, rename = 4 mutations.
    fs.die_after(4);
    CHECK(tfs::write_file_atomically(fs, "/d/f", bytes_of(std::string("new"))));
    fs.crash();
    auto s = read_all(fs, "/d/f");
    CHECK((s == "old" || s == "new"));
  }
}

TEST_CASE("a completed atomic replace survives every power cut") {
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    fault_file_system fs(seed);
    make_dir(fs, "/d");
    make_file(fs, "/d/f", "old");
    REQUIRE_FALSE(tfs::write_file_atomically(fs, "/d/f", bytes_of(std::string("new"))));
    fs.crash();
    CHECK(read_all(fs, "/d/f") == "new");
    CHECK_FALSE(fs.exists("/d/f.tmp").value());
  }
}

TEST_CASE("two files replaced with one directory sync survive every power cut, each old or new before it") {
  // lockmgr writes DIR/epoch and DIR/holder.json this way on every takeover.
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    fault_file_system fs(seed);
    make_dir(fs, "/d");
    make_file(fs, "/d/a", "old a");
    make_file(fs, "/d/b", "old b");
    std::string a = "new a", b = "new b";
    REQUIRE_FALSE(tfs::write_files_atomically(fs, {{"/d/a", bytes_of(a)}, {"/d/b", bytes_of(b)}}));
    fs.crash();
    CHECK(read_all(fs, "/d/a") == "new a");
    CHECK(read_all(fs, "/d/b") == "new b");
  }
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    fault_file_system fs(seed);
    make_dir(fs, "/d");
    make_file(fs, "/d/a", "old a");
    make_file(fs, "/d/b", "old b");
    // Die somewhere before the directory sync (2 x open, write, sync; 2 renames = 8 mutations).
    fs.die_after(1 + seed % 8);
    std::string a = "new a", b = "new b";
    CHECK(tfs::write_files_atomically(fs, {{"/d/a", bytes_of(a)}, {"/d/b", bytes_of(b)}}));
    fs.crash();
    auto sa = read_all(fs, "/d/a"), sb = read_all(fs, "/d/b");
    CHECK((sa == "old a" || sa == "new a"));
    CHECK((sb == "old b" || sb == "new b"));
  }
}

TEST_CASE("a visible replace is seen at once, and a power cut may take it back but never tears it") {
  for (std::uint64_t seed = 1; seed <= 32; ++seed) {
    fault_file_system fs(seed);
    make_dir(fs, "/d");
    make_file(fs, "/d/f", "old");
    REQUIRE_FALSE(tfs::replace_file_visibly(fs, "/d/f", bytes_of(std::string("new"))));
    CHECK(read_all(fs, "/d/f") == "new");
    fs.crash(crash_options::lose_all_unsynced());
    auto s = fs.exists("/d/f").value() ? read_all(fs, "/d/f") : std::string("<gone>");
    // Old, or new, or (the name renamed but its data never synced) empty: never a mix.
    CHECK((s == "old" || s == "new" || s.empty()));
  }
}

TEST_CASE("a removal not followed by a directory sync may be undone by a power cut") {
  fault_file_system fs(3);
  make_dir(fs, "/d");
  make_file(fs, "/d/f", "x");
  REQUIRE_FALSE(fs.remove("/d/f"));
  CHECK_FALSE(fs.exists("/d/f").value());
  fs.crash(crash_options::lose_all_unsynced());
  CHECK(fs.exists("/d/f").value());
  REQUIRE_FALSE(fs.remove("/d/f"));
  REQUIRE_FALSE(fs.sync_dir("/d"));
  fs.crash(crash_options::lose_all_unsynced());
  CHECK_FALSE(fs.exists("/d/f").value());
}

TEST_CASE("garbled writes damage whole sectors, or only their bytes with powersafe overwrite") {
  fault_file_system fs(11);
  make_dir(fs, "/d");
  std::string base(2048, 'a');
  make_file(fs, "/d/f", base);
  auto f = fs.open("/d/f", tfs::open_mode::read_write);
  REQUIRE(f.has_value());
  REQUIRE_FALSE(f.value()->write_at(bytes_of(std::string(10, 'b')), 600));  // sector 1
  tandem::test::crash_options how{0.0, 0.0, 1.0};
  how.powersafe_overwrite = false;
  fs.crash(how);
  auto after = text_of(fs.durable_contents("/d/f"));
  REQUIRE(after.size() == 2048);
  CHECK(after.substr(0, 512) == base.substr(0, 512));
  CHECK(after.substr(1024) == base.substr(1024));
  CHECK(after.substr(512, 88) != base.substr(512, 88));  // synced bytes sharing the sector

  // Powersafe overwrite: only the written bytes turn to garbage.
  auto f2 = fs.open("/d/f", tfs::open_mode::read_write);
  REQUIRE(f2.has_value());
  std::string now = text_of(fs.durable_contents("/d/f"));
  REQUIRE_FALSE(f2.value()->write_at(bytes_of(std::string(10, 'c')), 1600));
  fs.crash({0.0, 0.0, 1.0});
  auto psow = text_of(fs.durable_contents("/d/f"));
  CHECK(psow.substr(0, 1600) == now.substr(0, 1600));
  CHECK(psow.substr(1610) == now.substr(1610));
  CHECK(psow.substr(1600, 10) != std::string(10, 'c'));
}

TEST_CASE("the same seed replays the same power cut") {
  auto run = [](std::uint64_t seed) {
    fault_file_system fs(seed);
    make_dir(fs, "/d");
    make_file(fs, "/d/f", std::string(4096, 'a'));
    auto f = fs.open("/d/f", tfs::open_mode::read_write);
    REQUIRE(f.has_value());
    for (int i = 0; i < 8; ++i)
      REQUIRE_FALSE(f.value()->write_at(bytes_of(std::string(100, static_cast<char>('b' + i))), 512u * i));
    fs.crash();
    return text_of(fs.durable_contents("/d/f"));
  };
  CHECK(run(5) == run(5));
  CHECK(run(5) != run(6));
}

TEST_CASE("the nth operation of a kind fails with the chosen error and changes nothing") {
  fault_file_system fs(1);
  make_dir(fs, "/d");
  make_file(fs, "/d/f", "abc");
  auto f = fs.open("/d/f", tfs::open_mode::read_write);
  REQUIRE(f.has_value());
  fs.fail(op::write, 2, std::make_error_code(std::errc::no_space_on_device));
  CHECK_FALSE(f.value()->write_at(bytes_of(std::string("1")), 3));
  CHECK(f.value()->write_at(bytes_of(std::string("2")), 4) == std::errc::no_space_on_device);
  CHECK_FALSE(f.value()->write_at(bytes_of(std::string("3")), 4));
  CHECK(read_all(fs, "/d/f") == "abc13");

  fs.fail(op::sync, 1, std::make_error_code(std::errc::io_error), /*sticky=*/true);
  CHECK(f.value()->sync() == std::errc::io_error);
  CHECK(f.value()->sync() == std::errc::io_error);
  fs.clear_failures();
  CHECK_FALSE(f.value()->sync());
}

TEST_CASE("a dead file system fails every call and handles from before a crash stay dead") {
  fault_file_system fs(1);
  make_dir(fs, "/d");
  make_file(fs, "/d/f", "abc");
  auto f = fs.open("/d/f", tfs::open_mode::read_write);
  REQUIRE(f.has_value());
  fs.die_after(1);
  CHECK_FALSE(f.value()->write_at(bytes_of(std::string("X")), 0));  // the one allowed
  CHECK(f.value()->sync() == std::errc::io_error);
  CHECK(fs.dead());
  CHECK(fs.list("/d").error() == std::errc::io_error);
  fs.crash(crash_options::lose_all_unsynced());
  CHECK_FALSE(fs.dead());
  CHECK(read_all(fs, "/d/f") == "abc");
  std::byte b[1];
  CHECK(f.value()->read_at(b, 0).error() == std::errc::io_error);
}

TEST_CASE("read-only handles refuse writes") {
  fault_file_system fs(1);
  make_dir(fs, "/d");
  make_file(fs, "/d/f", "abc");
  auto f = fs.open("/d/f", tfs::open_mode::read_only);
  REQUIRE(f.has_value());
  CHECK(f.value()->write_at(bytes_of(std::string("X")), 0) == std::errc::bad_file_descriptor);
  CHECK(fs.open("/d/missing", tfs::open_mode::read_only).error() == std::errc::no_such_file_or_directory);
  CHECK(fs.open("/d/f", tfs::open_mode::create_exclusive).error() == std::errc::file_exists);
}

TEST_CASE("list names files and subdirectories of one directory") {
  fault_file_system fs(1);
  make_dir(fs, "/d/sub");
  make_file(fs, "/d/a", "1");
  make_file(fs, "/d/sub/b", "2");
  auto names = fs.list("/d").value();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a", "sub"});
}
