#include "tools/faultfs/power_model.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace tandem::faultfs {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

file_key key_of(const struct stat& st) { return {st.st_dev, st.st_ino}; }

std::error_code key_of_fd(int fd, file_key& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return last_error();
  out = key_of(st);
  return {};
}

int dup_fd(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::error_code read_exact(int fd, std::string& out, std::uint64_t offset, std::uint64_t length) {
  out.resize(length);
  std::uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) break;  // the file is shorter than fstat said a moment ago: keep what is there
    done += static_cast<std::uint64_t>(n);
  }
  out.resize(done);
  return {};
}

std::error_code write_exact(int fd, const std::string& bytes, std::uint64_t offset) {
  std::uint64_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    done += static_cast<std::uint64_t>(n);
  }
  return {};
}

}  // namespace

power_model::power_model(int trash_dir_fd) : trash_fd_(trash_dir_fd) {}

power_model::~power_model() {
  for (auto& [key, f] : files_) ::close(f.path_fd);
  for (auto& e : names_) close_entry(e);
}

power_model::pending_change::pending_change() = default;
power_model::pending_change::pending_change(pending_change&& o) noexcept
    : model_(std::exchange(o.model_, nullptr)), change_(std::move(o.change_)) {}
power_model::pending_change& power_model::pending_change::operator=(pending_change&& o) noexcept {
  if (this != &o) {
    if (model_) model_->forget(*this);
    model_ = std::exchange(o.model_, nullptr);
    change_ = std::move(o.change_);
  }
  return *this;
}
power_model::pending_change::~pending_change() {
  if (model_) model_->forget(*this);
}

void power_model::close_entry(name_entry& e) {
  if (e.dir_fd >= 0) ::close(e.dir_fd);
  if (e.to_dir_fd >= 0) ::close(e.to_dir_fd);
  e.dir_fd = e.to_dir_fd = -1;
}

power_model::file_state* power_model::state_for(int fd, std::error_code& ec, std::uint64_t* size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ec = last_error();
    return nullptr;
  }
  if (size) *size = static_cast<std::uint64_t>(st.st_size);
  auto key = key_of(st);
  auto it = files_.find(key);
  if (it != files_.end()) return &it->second;
  // First change since the file was last synced (or since the mount): what is there now is
  // what a power loss must bring back.
  int path_fd = ::open(proc_path(fd).c_str(), O_PATH | O_CLOEXEC);
  if (path_fd < 0) {
    ec = last_error();
    return nullptr;
  }
  file_state f;
  f.path_fd = path_fd;
  f.synced_size = static_cast<std::uint64_t>(st.st_size);
  return &files_.emplace(key, std::move(f)).first->second;
}

std::error_code power_model::save(file_state& f, int fd, std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  if (offset >= size || length == 0) return {};  // beyond the end: the final truncate undoes it
  undo_record r;
  r.offset = offset;
  if (auto ec = read_exact(fd, r.bytes, offset, std::min(length, size - offset))) return ec;
  f.bytes += r.bytes.size();
  f.undo.push_back(std::move(r));
  return {};
}

std::error_code power_model::before_write(int fd, std::uint64_t offset, std::uint64_t length) {
  std::lock_guard g(mutex_);
  std::error_code ec;
  std::uint64_t size = 0;
  file_state* f = state_for(fd, ec, &size);
  if (!f) return ec;
  return save(*f, fd, offset, length, size);
}

std::error_code power_model::before_truncate(int fd, std::uint64_t new_size) {
  std::lock_guard g(mutex_);
  std::error_code ec;
  std::uint64_t size = 0;
  file_state* f = state_for(fd, ec, &size);
  if (!f) return ec;
  if (new_size >= size) return {};
  return save(*f, fd, new_size, size - new_size, size);
}

void power_model::after_sync(int fd) {
  std::lock_guard g(mutex_);
  file_key key;
  if (key_of_fd(fd, key)) return;
  auto it = files_.find(key);
  if (it == files_.end()) return;
  ::close(it->second.path_fd);
  files_.erase(it);
}

void power_model::created(int dir_fd, const std::string& name, bool is_dir) {
  std::lock_guard g(mutex_);
  name_entry e;
  e.op = name_op::created;
  if (key_of_fd(dir_fd, e.dir)) return;
  e.dir_fd = dup_fd(dir_fd);
  e.name = name;
  e.is_dir = is_dir;
  names_.push_back(std::move(e));
}

std::error_code power_model::keep_in_trash(int dir_fd, const std::string& name, name_entry& e, bool as_replaced) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return last_error();
  if (S_ISDIR(st.st_mode)) {
    // Only an empty directory can go; bringing it back needs its mode, not its inode.
    (as_replaced ? e.replaced_dir : e.is_dir) = true;
    e.dir_mode = st.st_mode & 07777;
    return {};
  }
  std::string trash = std::to_string(++next_trash_);
  if (::linkat(dir_fd, name.c_str(), trash_fd_, trash.c_str(), 0) != 0) return last_error();
  e.trash = std::move(trash);
  return {};
}

std::error_code power_model::before_remove(int dir_fd, const std::string& name, pending_change& out) {
  std::lock_guard g(mutex_);
  name_entry e;
  e.op = name_op::removed;
  if (auto ec = key_of_fd(dir_fd, e.dir)) return ec;
  e.name = name;
  if (auto ec = keep_in_trash(dir_fd, name, e, false)) return ec;
  e.dir_fd = dup_fd(dir_fd);
  out.model_ = this;
  out.change_ = std::make_unique<name_change>(std::move(e));
  return {};
}

std::error_code power_model::before_rename(int from_dir, const std::string& from, int to_dir, const std::string& to,
                                           pending_change& out) {
  std::lock_guard g(mutex_);
  name_entry e;
  e.op = name_op::renamed;
  if (auto ec = key_of_fd(from_dir, e.dir)) return ec;
  if (auto ec = key_of_fd(to_dir, e.to_dir)) return ec;
  e.name = from;
  e.to_name = to;
  struct stat st {};
  if (::fstatat(to_dir, to.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    e.replaced = true;
    if (auto ec = keep_in_trash(to_dir, to, e, true)) return ec;
  } else if (errno != ENOENT) {
    return last_error();
  }
  e.dir_fd = dup_fd(from_dir);
  e.to_dir_fd = dup_fd(to_dir);
  out.model_ = this;
  out.change_ = std::make_unique<name_change>(std::move(e));
  return {};
}

void power_model::done(pending_change& c) {
  std::lock_guard g(mutex_);
  c.model_ = nullptr;
  if (!c.change_) return;
  names_.push_back(std::move(*c.change_));
  c.change_.reset();
}

void power_model::forget(pending_change& c) {
  std::lock_guard g(mutex_);
  c.model_ = nullptr;
  if (!c.change_) return;
  if (!c.change_->trash.empty()) ::unlinkat(trash_fd_, c.change_->trash.c_str(), 0);
  close_entry(*c.change_);
  c.change_.reset();
}

void power_model::commit(name_entry& e) {
  if (!e.trash.empty()) {
    // The removal is durable: the inode may die now. Its unsynced data goes with it.
    struct stat st {};
    bool known = ::fstatat(trash_fd_, e.trash.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    ::unlinkat(trash_fd_, e.trash.c_str(), 0);
    if (known && st.st_nlink <= 1) {
      auto it = files_.find(key_of(st));
      if (it != files_.end()) {
        ::close(it->second.path_fd);
        files_.erase(it);
      }
    }
  }
  close_entry(e);
}

void power_model::after_dir_sync(int dir_fd) {
  std::lock_guard g(mutex_);
  file_key dir;
  if (key_of_fd(dir_fd, dir)) return;
  std::size_t last = names_.size();
  for (std::size_t i = names_.size(); i-- > 0;) {
    const auto& e = names_[i];
    if (e.dir == dir || (e.op == name_op::renamed && e.to_dir == dir)) {
      last = i;
      break;
    }
  }
  if (last == names_.size()) return;
  for (std::size_t i = 0; i <= last; ++i) commit(names_[i]);
  names_.erase(names_.begin(), names_.begin() + static_cast<std::ptrdiff_t>(last + 1));
}

std::error_code power_model::undo(name_entry& e) {
  auto check = [](int rc) { return rc == 0 ? std::error_code{} : last_error(); };
  switch (e.op) {
    case name_op::created:
      return check(::unlinkat(e.dir_fd, e.name.c_str(), e.is_dir ? AT_REMOVEDIR : 0));
    case name_op::removed:
      if (e.is_dir) return check(::mkdirat(e.dir_fd, e.name.c_str(), e.dir_mode));
      return check(::renameat(trash_fd_, e.trash.c_str(), e.dir_fd, e.name.c_str()));
    case name_op::renamed: {
      auto ec = check(::renameat(e.to_dir_fd, e.to_name.c_str(), e.dir_fd, e.name.c_str()));
      if (ec || !e.replaced) return ec;
      if (e.replaced_dir) return check(::mkdirat(e.to_dir_fd, e.to_name.c_str(), e.dir_mode));
      return check(::renameat(trash_fd_, e.trash.c_str(), e.to_dir_fd, e.to_name.c_str()));
    }
  }
  return {};
}

std::error_code power_model::power_loss() {
  std::lock_guard g(mutex_);
  std::error_code first;
  auto note = [&](std::error_code ec) {
    if (ec && !first) first = ec;
  };
  for (auto& [key, f] : files_) {
    int fd = ::open(proc_path(f.path_fd).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      note(last_error());
    } else {
      for (auto it = f.undo.rbegin(); it != f.undo.rend(); ++it) note(write_exact(fd, it->bytes, it->offset));
      if (::ftruncate(fd, static_cast<off_t>(f.synced_size)) != 0) note(last_error());
      if (::fsync(fd) != 0) note(last_error());
      ::close(fd);
    }
    ::close(f.path_fd);
  }
  files_.clear();
  for (auto it = names_.rbegin(); it != names_.rend(); ++it) {
    note(undo(*it));
    close_entry(*it);
  }
  names_.clear();
  return first;
}

power_model_stats power_model::stats() const {
  std::lock_guard g(mutex_);
  power_model_stats s;
  s.unsynced_files = files_.size();
  for (const auto& [key, f] : files_) s.unsynced_bytes += f.bytes;
  s.pending_names = names_.size();
  return s;
}

}  // namespace tandem::faultfs
