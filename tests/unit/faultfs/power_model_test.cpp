// power_model on a plain temporary directory (no FUSE): what a power loss keeps and forgets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "tools/faultfs/power_model.h"

namespace fs = std::filesystem;
using tandem::faultfs::power_model;

namespace {

struct scratch {
  fs::path dir, trash;
  int dir_fd = -1, trash_fd = -1;
  scratch() {
    std::string tmpl = (fs::temp_directory_path() / "tandem-power-model-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()));
    dir = fs::path(tmpl) / "d";
    trash = fs::path(tmpl) / "trash";
    fs::create_directories(dir);
    fs::create_directories(trash);
    dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    trash_fd = ::open(trash.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(dir_fd >= 0);
    REQUIRE(trash_fd >= 0);
  }
  ~scratch() {
    ::close(dir_fd);
    ::close(trash_fd);
    std::error_code ec;
    fs::remove_all(dir.parent_path(), ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A write the way the FUSE layer does it: the model first, then the write.
void write_at(power_model& m, int fd, const std::string& text, off_t at) {
  REQUIRE_FALSE(m.before_write(fd, static_cast<std::uint64_t>(at), text.size()));
  REQUIRE(::pwrite(fd, text.data(), text.size(), at) == static_cast<ssize_t>(text.size()));
}

int create(power_model& m, scratch& s, const std::string& name) {
  int fd = ::openat(s.dir_fd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  m.created(s.dir_fd, name, false);
  return fd;
}

void sync_file(power_model& m, int fd) {
  REQUIRE(::fdatasync(fd) == 0);
  m.after_sync(fd);
}

void sync_dir(power_model& m, scratch& s) {
  REQUIRE(::fsync(s.dir_fd) == 0);
  m.after_dir_sync(s.dir_fd);
}

}  // namespace

TEST_CASE("writes after the last sync are forgotten (size included) and synced bytes stay") {
  scratch s;
  power_model m(s.trash_fd);
  int fd = create(m, s, "f");
  sync_dir(m, s);
  write_at(m, fd, "hello world", 0);
  sync_file(m, fd);
  write_at(m, fd, "HELLO", 0);           // overwrite synced bytes
  write_at(m, fd, " and more", 11);      // grow
  write_at(m, fd, "HeLLo", 0);           // overwrite the same bytes twice
  CHECK(m.stats().unsynced_files == 1);
  CHECK(m.stats().unsynced_bytes == 10);  // two 5-byte undo records; the growth costs nothing
  ::close(fd);
  REQUIRE_FALSE(m.power_loss());
  CHECK(slurp(s.dir / "f") == "hello world");
  CHECK(m.stats().unsynced_files == 0);
}

TEST_CASE("a shrink after the last sync is undone, and a grow after a shrink is cut back") {
  scratch s;
  power_model m(s.trash_fd);
  int fd = create(m, s, "f");
  sync_dir(m, s);
  write_at(m, fd, "0123456789", 0);
  sync_file(m, fd);
  REQUIRE_FALSE(m.before_truncate(fd, 4));
  REQUIRE(::ftruncate(fd, 4) == 0);
  write_at(m, fd, "abcdefghijklmnop", 2);
  ::close(fd);
  REQUIRE_FALSE(m.power_loss());
  CHECK(slurp(s.dir / "f") == "0123456789");
}

TEST_CASE("a file created and synced but whose directory was never synced is gone after a power loss") {
  scratch s;
  power_model m(s.trash_fd);
  int fd = create(m, s, "new");
  write_at(m, fd, "data", 0);
  sync_file(m, fd);  // the data is durable, the name is not
  ::close(fd);
  CHECK(m.stats().pending_names == 1);
  REQUIRE_FALSE(m.power_loss());
  CHECK_FALSE(fs::exists(s.dir / "new"));
}

TEST_CASE("a directory sync makes every earlier name change durable, in order") {
  scratch s;
  power_model m(s.trash_fd);
  ::close(create(m, s, "a"));
  ::close(create(m, s, "b"));
  sync_dir(m, s);
  ::close(create(m, s, "c"));
  CHECK(m.stats().pending_names == 1);
  REQUIRE_FALSE(m.power_loss());
  CHECK(fs::exists(s.dir / "a"));
  CHECK(fs::exists(s.dir / "b"));
  CHECK_FALSE(fs::exists(s.dir / "c"));
}

TEST_CASE("an unlink without a directory sync comes back with its synced contents") {
  scratch s;
  power_model m(s.trash_fd);
  int fd = create(m, s, "victim");
  write_at(m, fd, "keep me", 0);
  sync_file(m, fd);
  sync_dir(m, s);
  write_at(m, fd, "XXXX", 0);  // unsynced, through a descriptor that outlives the name
  power_model::pending_change c;
  REQUIRE_FALSE(m.before_remove(s.dir_fd, "victim", c));
  REQUIRE(::unlinkat(s.dir_fd, "victim", 0) == 0);
  m.done(c);
  ::close(fd);
  CHECK_FALSE(fs::exists(s.dir / "victim"));
  REQUIRE_FALSE(m.power_loss());
  CHECK(slurp(s.dir / "victim") == "keep me");
  CHECK(fs::is_empty(s.trash));
}

TEST_CASE("a durable unlink stays unlinked and leaves nothing in the trash") {
  scratch s;
  power_model m(s.trash_fd);
  ::close(create(m, s, "gone"));
  sync_dir(m, s);
  power_model::pending_change c;
  REQUIRE_FALSE(m.before_remove(s.dir_fd, "gone", c));
  REQUIRE(::unlinkat(s.dir_fd, "gone", 0) == 0);
  m.done(c);
  CHECK_FALSE(fs::is_empty(s.trash));
  sync_dir(m, s);
  CHECK(fs::is_empty(s.trash));
  REQUIRE_FALSE(m.power_loss());
  CHECK_FALSE(fs::exists(s.dir / "gone"));
}

namespace {

// The atomic-replace pattern: epoch holds "7" (synced, name durable), epoch.tmp gets "8",
// is synced and renamed over epoch; the directory is synced after the rename only when told.
void replace_epoch(power_model& m, scratch& s, bool sync_dir_after_rename) {
  int old_fd = create(m, s, "epoch");
  write_at(m, old_fd, "7", 0);
  sync_file(m, old_fd);
  sync_dir(m, s);
  ::close(old_fd);
  int fd = create(m, s, "epoch.tmp");
  write_at(m, fd, "8", 0);
  sync_file(m, fd);
  ::close(fd);
  power_model::pending_change c;
  REQUIRE_FALSE(m.before_rename(s.dir_fd, "epoch.tmp", s.dir_fd, "epoch", c));
  REQUIRE(::renameat(s.dir_fd, "epoch.tmp", s.dir_fd, "epoch") == 0);
  m.done(c);
  if (sync_dir_after_rename) sync_dir(m, s);
  CHECK(slurp(s.dir / "epoch") == "8");
}

}  // namespace

TEST_CASE("write, sync, rename over the old file without a directory sync: the old file comes back") {
  scratch s;
  power_model m(s.trash_fd);
  replace_epoch(m, s, false);
  REQUIRE_FALSE(m.power_loss());
  CHECK(slurp(s.dir / "epoch") == "7");
  CHECK_FALSE(fs::exists(s.dir / "epoch.tmp"));
}

TEST_CASE("with the directory synced after the rename, the new file survives") {
  scratch s;
  power_model m(s.trash_fd);
  replace_epoch(m, s, true);
  REQUIRE_FALSE(m.power_loss());
  CHECK(slurp(s.dir / "epoch") == "8");
  CHECK(fs::is_empty(s.trash));
}

TEST_CASE("a change that failed is forgotten, and its trash link with it") {
  scratch s;
  power_model m(s.trash_fd);
  ::close(create(m, s, "x"));
  sync_dir(m, s);
  {
    power_model::pending_change c;
    REQUIRE_FALSE(m.before_remove(s.dir_fd, "x", c));
    // the unlink "fails": c goes out of scope without done()
  }
  CHECK(fs::is_empty(s.trash));
  CHECK(m.stats().pending_names == 0);
}
