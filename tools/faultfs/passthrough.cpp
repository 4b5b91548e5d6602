// passthrough.cpp: divisions
//   1. State: inodes, handles, the operation gate (freeze, power)
//   2. Names: lookup, forget, create/remove/rename
//   3. Attributes and directories
//   4. Data: open, read, write, fsync, fallocate, release
//   5. Locks
//   (control: fail, freeze, crash, status is in passthrough_control.cpp)
//   (the C callback table that libfuse calls is in fuse_ops.cpp)
//
// Lock order: inodes_mutex_ is never held while calling the model or the lock table; an
// inode's io mutex may be held while calling the model (the model takes its own mutex);
// power_mutex_ (shared) is taken after state_mutex_ is released.
#include "tools/faultfs/passthrough.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::faultfs {

// ---- 1. State ----------------------------------------------------------------------------

struct passthrough::inode {
  int fd = -1;  // O_PATH | O_NOFOLLOW on the underlying inode
  file_key key;
  std::uint64_t lookups = 0;
  std::string path;  // relative to the mount root, as last looked up (fault globs, status)
  std::mutex io;     // a write (or truncate, fallocate, fsync) and its undo record
  ~inode() {
    if (fd >= 0) ::close(fd);
  }
};

struct passthrough::handle {
  int fd = -1;
  inode* node = nullptr;
  bool append = false;
  std::uint64_t generation = 0;  // power generation it was opened in
  std::uint64_t id() const { return reinterpret_cast<std::uintptr_t>(this); }
};

struct passthrough::dir_handle {
  DIR* dir = nullptr;
  off_t offset = 0;
  dirent* entry = nullptr;  // read but not yet returned (did not fit)
};

namespace {

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

passthrough::handle& handle_of(fuse_file_info* fi) { return *reinterpret_cast<passthrough::handle*>(fi->fh); }
passthrough::dir_handle& dir_of(fuse_file_info* fi) { return *reinterpret_cast<passthrough::dir_handle*>(fi->fh); }

int open_source(const std::filesystem::path& source) {
  int fd = ::open(source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + source.string());
  return fd;
}

int open_trash(int source_fd, const std::filesystem::path& source) {
  if (::mkdirat(source_fd, trash_name, 0700) != 0 && errno != EEXIST)
    throw std::system_error(errno, std::generic_category(), "cannot create " + (source / trash_name).string());
  int fd = ::openat(source_fd, trash_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + (source / trash_name).string());
  // Whatever an earlier daemon left there belongs to removals that are now durable.
  int list_fd = ::dup(fd);
  if (DIR* d = list_fd >= 0 ? ::fdopendir(list_fd) : nullptr) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(d);
    for (const auto& n : names) ::unlinkat(fd, n.c_str(), 0);
  }
  return fd;
}

range_lock to_range(const struct flock& l, fuse_file_info* fi) {
  range_lock r;
  r.owner = fi->lock_owner;
  r.handle = fi->fh;
  r.type = l.l_type;
  r.start = static_cast<std::uint64_t>(l.l_start);
  r.end = l.l_len == 0 ? UINT64_MAX : static_cast<std::uint64_t>(l.l_start + l.l_len - 1);
  r.pid = l.l_pid;
  return r;
}

}  // namespace

// Every operation but release, releasedir and forget passes the gate first: it waits while
// the file system is frozen, fails with EIO while the power is off, and holds power_mutex_
// shared until the operation is done.
class passthrough::gate {
 public:
  explicit gate(passthrough& fs) {
    fs.operations_.fetch_add(1, std::memory_order_relaxed);
    {
      std::unique_lock g(fs.state_mutex_);
      fs.state_changed_.wait(g, [&] { return !fs.frozen_ || !fs.powered_.load(); });
    }
    if (!fs.powered_.load()) return;
    lock_ = std::shared_lock(fs.power_mutex_);
    if (fs.powered_.load()) error_ = 0;
  }
  int error() const { return error_; }

 private:
  std::shared_lock<std::shared_mutex> lock_;
  int error_ = EIO;
};

passthrough::passthrough(passthrough_options options)
    : options_(std::move(options)),
      root_(std::make_unique<inode>()),
      trash_fd_(open_trash(root_->fd = open_source(options_.source), options_.source)),
      model_(trash_fd_),
      locks_(options_.lease) {
  struct stat st {};
  if (::fstat(root_->fd, &st) != 0) throw std::system_error(errno, std::generic_category(), "cannot stat the source");
  root_->key = {st.st_dev, st.st_ino};
  root_->lookups = 1;
}

passthrough::~passthrough() {
  if (trash_fd_ >= 0) ::close(trash_fd_);
}

passthrough::inode& passthrough::node(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return *root_;
  return *reinterpret_cast<inode*>(ino);
}

bool passthrough::hidden(const inode& parent, const char* name) const {
  return &parent == root_.get() && std::strcmp(name, trash_name) == 0;
}

std::string passthrough::child_path(const inode& parent, const char* name) const {
  std::lock_guard g(inodes_mutex_);
  return parent.path.empty() ? std::string(name) : parent.path + "/" + name;
}

std::string passthrough::path_of(const inode& n) const {
  std::lock_guard g(inodes_mutex_);
  return n.path;
}

int passthrough::check_handle(handle& h) {
  if (h.generation != generation_.load()) return EIO;  // opened before a power loss
  if (options_.locks == lock_mode::daemon) {
    if (locks_.revoked(h.id())) return EIO;
    locks_.renew(h.id(), lock_table::clock::now());
  }
  return 0;
}

int passthrough::fault(fuse_req_t req, op_class op, const inode& n) { return fault(req, op, path_of(n)); }

int passthrough::fault(fuse_req_t req, op_class op, const std::string& path) {
  pid_t process = 0;
  if (rules_.needs_pid()) {
    // FUSE tells the calling thread; rules name processes (the thread group).
    const pid_t tid = fuse_req_ctx(req)->pid;
    std::ifstream status("/proc/" + std::to_string(tid) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Tgid:", 0) == 0) {
        process = static_cast<pid_t>(std::atol(line.c_str() + 5));
        break;
      }
    }
  }
  {
    // A selective freeze: wait here (holding the operation's share of power_mutex_, which
    // a crash waits for; it wakes us first by turning the power off).
    std::unique_lock g(state_mutex_);
    auto frozen = [&] {
      for (const auto& f : partial_freezes_) {
        if ((f.ops & static_cast<unsigned>(op)) &&
            (f.path_glob.empty() || ::fnmatch(f.path_glob.c_str(), path.c_str(), 0) == 0))
          return true;
      }
      return false;
    };
    state_changed_.wait(g, [&] { return !powered_.load() || !frozen(); });
    if (!powered_.load()) return EIO;
  }
  auto d = rules_.check(op, path, process);
  if (d.delay.count() > 0) std::this_thread::sleep_for(d.delay);
  return d.error;
}

// ---- 2. Names ----------------------------------------------------------------------------

int passthrough::find_or_create(inode& parent, const char* name, fuse_entry_param& e) {
  struct stat st {};
  if (::fstatat(parent.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
  std::lock_guard g(inodes_mutex_);
  file_key key{st.st_dev, st.st_ino};
  inode* n = nullptr;
  if (auto it = inodes_.find(key); it != inodes_.end()) {
    n = it->second.get();
  } else {
    int fd = ::openat(parent.fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno;
    // The name may have moved on between the stat and the open: trust what was opened.
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
    key = {st.st_dev, st.st_ino};
    if (auto it = inodes_.find(key); it != inodes_.end()) {
      ::close(fd);
      n = it->second.get();
    } else {
      auto fresh = std::make_unique<inode>();
      fresh->fd = fd;
      fresh->key = key;
      n = fresh.get();
      inodes_.emplace(key, std::move(fresh));
    }
  }
  ++n->lookups;
  n->path = parent.path.empty() ? std::string(name) : parent.path + "/" + name;
  std::memset(&e, 0, sizeof e);
  e.ino = reinterpret_cast<fuse_ino_t>(n);
  e.generation = 1;
  e.attr = st;
  e.attr_timeout = 0;
  e.entry_timeout = 0;
  return 0;
}

void passthrough::reply_entry(fuse_req_t req, inode& parent, const char* name) {
  fuse_entry_param e;
  if (int err = find_or_create(parent, name, e)) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_entry(req, &e);
}

void passthrough::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, ENOENT);
  fuse_entry_param e;
  if (int err = find_or_create(p, name, e)) {
    if (err == ENOENT) {
      // A negative entry the kernel must not cache (timeout 0): after a power loss the
      // name may be back.
      std::memset(&e, 0, sizeof e);
      fuse_reply_entry(req, &e);
      return;
    }
    fuse_reply_err(req, err);
    return;
  }
  fuse_reply_entry(req, &e);
}

void passthrough::forget(fuse_ino_t ino, std::uint64_t n) {
  if (ino == FUSE_ROOT_ID) return;
  std::lock_guard g(inodes_mutex_);
  inode& i = node(ino);
  i.lookups -= std::min(i.lookups, n);
  if (i.lookups == 0) inodes_.erase(i.key);
}

void passthrough::mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, EPERM);
  if (int err = fault(req, op_class::meta, child_path(p, name))) return (void)fuse_reply_err(req, err);
  if (::mknodat(p.fd, name, mode, rdev) != 0) return (void)fuse_reply_err(req, errno);
  model_.created(p.fd, name, false);
  reply_entry(req, p, name);
}

void passthrough::mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, EPERM);
  if (int err = fault(req, op_class::meta, child_path(p, name))) return (void)fuse_reply_err(req, err);
  if (::mkdirat(p.fd, name, mode) != 0) return (void)fuse_reply_err(req, errno);
  model_.created(p.fd, name, true);
  reply_entry(req, p, name);
}

void passthrough::symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, EPERM);
  if (int err = fault(req, op_class::meta, child_path(p, name))) return (void)fuse_reply_err(req, err);
  if (::symlinkat(link, p.fd, name) != 0) return (void)fuse_reply_err(req, errno);
  model_.created(p.fd, name, false);
  reply_entry(req, p, name);
}

void passthrough::link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& n = node(ino);
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, EPERM);
  if (int err = fault(req, op_class::meta, child_path(p, name))) return (void)fuse_reply_err(req, err);
  if (::linkat(AT_FDCWD, proc_path(n.fd).c_str(), p.fd, name, AT_SYMLINK_FOLLOW) != 0)
    return (void)fuse_reply_err(req, errno);
  model_.created(p.fd, name, false);
  reply_entry(req, p, name);
}

void passthrough::unlink(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, EPERM);
  if (int err = fault(req, op_class::meta, child_path(p, name))) return (void)fuse_reply_err(req, err);
  power_model::pending_change change;
  if (auto ec = model_.before_remove(p.fd, name, change)) return (void)fuse_reply_err(req, ec.value());
  if (::unlinkat(p.fd, name, dir ? AT_REMOVEDIR : 0) != 0) return (void)fuse_reply_err(req, errno);
  model_.done(change);
  fuse_reply_err(req, 0);
}

void passthrough::rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                         const char* newname, unsigned flags) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  // RENAME_EXCHANGE would need an undo of its own; nothing we run uses it.
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return (void)fuse_reply_err(req, EINVAL);
  inode& p = node(parent);
  inode& np = node(newparent);
  if (hidden(p, name) || hidden(np, newname)) return (void)fuse_reply_err(req, EPERM);
  if (int err = fault(req, op_class::meta, child_path(p, name))) return (void)fuse_reply_err(req, err);
  power_model::pending_change change;
  if (auto ec = model_.before_rename(p.fd, name, np.fd, newname, change)) return (void)fuse_reply_err(req, ec.value());
  if (::renameat2(p.fd, name, np.fd, newname, flags) != 0) return (void)fuse_reply_err(req, errno);
  model_.done(change);
  struct stat st {};
  if (::fstatat(np.fd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    std::lock_guard l(inodes_mutex_);
    if (auto it = inodes_.find(file_key{st.st_dev, st.st_ino}); it != inodes_.end())
      it->second->path = np.path.empty() ? std::string(newname) : np.path + "/" + newname;
  }
  fuse_reply_err(req, 0);
}

// ---- 3. Attributes and directories ---------------------------------------------------------

void passthrough::getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  if (fi) {
    if (int err = check_handle(handle_of(fi))) return (void)fuse_reply_err(req, err);
  }
  if (int err = fault(req, op_class::stat, node(ino))) return (void)fuse_reply_err(req, err);
  struct stat st {};
  if (::fstatat(node(ino).fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_attr(req, &st, 0);
}

void passthrough::setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& n = node(ino);
  handle* h = fi ? &handle_of(fi) : nullptr;
  if (h) {
    if (int err = check_handle(*h)) return (void)fuse_reply_err(req, err);
  }
  if (to_set & FUSE_SET_ATTR_MODE) {
    int rc = h ? ::fchmod(h->fd, attr->st_mode) : ::fchmodat(AT_FDCWD, proc_path(n.fd).c_str(), attr->st_mode, 0);
    if (rc != 0) return (void)fuse_reply_err(req, errno);
  }
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    if (::fchownat(n.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return (void)fuse_reply_err(req, errno);
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (int err = fault(req, op_class::write, n)) return (void)fuse_reply_err(req, err);
    int fd = h ? h->fd : ::open(proc_path(n.fd).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return (void)fuse_reply_err(req, errno);
    int err = 0;
    {
      std::lock_guard io(n.io);
      if (auto ec = model_.before_truncate(fd, static_cast<std::uint64_t>(attr->st_size))) err = ec.value();
      else if (::ftruncate(fd, attr->st_size) != 0) err = errno;
    }
    if (!h) ::close(fd);
    if (err) return (void)fuse_reply_err(req, err);
  }
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
    struct timespec tv[2];
    tv[0].tv_sec = 0;
    tv[0].tv_nsec = UTIME_OMIT;
    tv[1] = tv[0];
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) tv[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) tv[1] = attr->st_mtim;
    int rc = h ? ::futimens(h->fd, tv) : ::utimensat(AT_FDCWD, proc_path(n.fd).c_str(), tv, 0);
    if (rc != 0) return (void)fuse_reply_err(req, errno);
  }
  struct stat st {};
  if (::fstatat(n.fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_attr(req, &st, 0);
}

void passthrough::readlink(fuse_req_t req, fuse_ino_t ino) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlinkat(node(ino).fd, "", buf, sizeof buf - 1);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  buf[n] = '\0';
  fuse_reply_readlink(req, buf);
}

void passthrough::opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& n = node(ino);
  if (int err = fault(req, op_class::open, n)) return (void)fuse_reply_err(req, err);
  int fd = ::openat(n.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int err = errno;
    ::close(fd);
    return (void)fuse_reply_err(req, err);
  }
  auto* dh = new dir_handle{d, 0, nullptr};
  fi->fh = reinterpret_cast<std::uintptr_t>(dh);
  if (fuse_reply_open(req, fi) == -ENOENT) {  // the opener was interrupted: no releasedir follows
    ::closedir(d);
    delete dh;
  }
}

void passthrough::readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  const bool at_root = ino == FUSE_ROOT_ID;
  dir_handle& dh = dir_of(fi);
  std::vector<char> buf(size);
  std::size_t used = 0;
  if (off != dh.offset) {
    ::seekdir(dh.dir, off);
    dh.entry = nullptr;
    dh.offset = off;
  }
  for (;;) {
    if (!dh.entry) {
      errno = 0;
      dh.entry = ::readdir(dh.dir);
      if (!dh.entry) {
        if (errno != 0 && used == 0) return (void)fuse_reply_err(req, errno);
        break;
      }
    }
    const dirent* e = dh.entry;
    if (!(at_root && std::strcmp(e->d_name, trash_name) == 0)) {
      struct stat st {};
      st.st_ino = e->d_ino;
      st.st_mode = static_cast<mode_t>(e->d_type) << 12;
      std::size_t need = fuse_add_direntry(req, buf.data() + used, size - used, e->d_name, &st, e->d_off);
      if (need > size - used) break;  // keep it for the next call
      used += need;
    }
    dh.offset = e->d_off;
    dh.entry = nullptr;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void passthrough::releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* dh = &dir_of(fi);
  ::closedir(dh->dir);
  delete dh;
  fuse_reply_err(req, 0);
}

void passthrough::fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  if (int err = fault(req, op_class::fsync, node(ino))) return (void)fuse_reply_err(req, err);
  int fd = ::dirfd(dir_of(fi).dir);
  if ((datasync ? ::fdatasync(fd) : ::fsync(fd)) != 0) return (void)fuse_reply_err(req, errno);
  model_.after_dir_sync(fd);
  fuse_reply_err(req, 0);
}

void passthrough::statfs(fuse_req_t req, fuse_ino_t ino) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  struct statvfs s {};
  if (::fstatvfs(node(ino).fd, &s) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_statfs(req, &s);
}

// ---- 4. Data -------------------------------------------------------------------------------

namespace {

// Flags for the daemon's own descriptor: it reads what a write replaces (power_model), so a
// write-only open is widened to read-write; O_APPEND is done by hand (the offset must be
// known before the write, for the undo record); O_TRUNC goes through the model.
int underlying_flags(int flags) {
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_TRUNC | O_APPEND | O_DIRECT);
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  return flags | O_CLOEXEC;
}

}  // namespace

void passthrough::open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& n = node(ino);
  if (int err = fault(req, op_class::open, n)) return (void)fuse_reply_err(req, err);
  int fd = ::open(proc_path(n.fd).c_str(), underlying_flags(fi->flags));
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  if (fi->flags & O_TRUNC) {
    int err = fault(req, op_class::write, n);
    if (!err) {
      std::lock_guard io(n.io);
      if (auto ec = model_.before_truncate(fd, 0)) err = ec.value();
      else if (::ftruncate(fd, 0) != 0) err = errno;
    }
    if (err) {
      ::close(fd);
      return (void)fuse_reply_err(req, err);
    }
  }
  auto* h = new handle{fd, &n, (fi->flags & O_APPEND) != 0, generation_.load()};
  fi->fh = h->id();
  fi->direct_io = 1;
  fi->keep_cache = 0;
  if (fuse_reply_open(req, fi) == -ENOENT) {
    ::close(fd);
    delete h;
  }
}

void passthrough::create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  inode& p = node(parent);
  if (hidden(p, name)) return (void)fuse_reply_err(req, EPERM);
  const std::string path = child_path(p, name);
  if (int err = fault(req, op_class::meta, path)) return (void)fuse_reply_err(req, err);
  if (int err = fault(req, op_class::open, path)) return (void)fuse_reply_err(req, err);
  const int flags = underlying_flags(fi->flags);
  bool created = true;
  int fd = ::openat(p.fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) {
    created = false;
    fd = ::openat(p.fd, name, flags | O_NOFOLLOW);
    if (fd >= 0 && (fi->flags & O_TRUNC)) {
      std::error_code ec = model_.before_truncate(fd, 0);
      if (ec || ::ftruncate(fd, 0) != 0) {
        int err = ec ? ec.value() : errno;
        ::close(fd);
        return (void)fuse_reply_err(req, err);
      }
    }
  }
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  if (created) model_.created(p.fd, name, false);
  fuse_entry_param e;
  if (int err = find_or_create(p, name, e)) {
    ::close(fd);
    return (void)fuse_reply_err(req, err);
  }
  auto* h = new handle{fd, reinterpret_cast<inode*>(e.ino), (fi->flags & O_APPEND) != 0, generation_.load()};
  fi->fh = h->id();
  fi->direct_io = 1;
  fi->keep_cache = 0;
  if (fuse_reply_create(req, &e, fi) == -ENOENT) {
    ::close(fd);
    delete h;
  }
}

void passthrough::read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  handle& h = handle_of(fi);
  if (int err = check_handle(h)) return (void)fuse_reply_err(req, err);
  if (int err = fault(req, op_class::read, *h.node)) return (void)fuse_reply_err(req, err);
  thread_local std::vector<char> buf;
  buf.resize(size);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(h.fd, buf.data() + done, size - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return (void)fuse_reply_err(req, errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  fuse_reply_buf(req, buf.data(), done);
}

void passthrough::write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  handle& h = handle_of(fi);
  if (int err = check_handle(h)) return (void)fuse_reply_err(req, err);
  if (int err = fault(req, op_class::write, *h.node)) return (void)fuse_reply_err(req, err);
  std::lock_guard io(h.node->io);
  if (h.append) {
    struct stat st {};
    if (::fstat(h.fd, &st) != 0) return (void)fuse_reply_err(req, errno);
    off = st.st_size;
  }
  if (auto ec = model_.before_write(h.fd, static_cast<std::uint64_t>(off), size)) return (void)fuse_reply_err(req, ec.value());
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(h.fd, buf + done, size - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done == 0) return (void)fuse_reply_err(req, errno);
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  fuse_reply_write(req, done);
}

void passthrough::flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  gate g(*this);
  // A close() by any process drops that process's POSIX locks on the file (fcntl
  // semantics); OFD locks live until release.
  if (!g.error() && options_.locks == lock_mode::daemon)
    locks_.release_owner(node(ino).key, fi->lock_owner, lock_table::clock::now());
  fuse_reply_err(req, 0);
}

void passthrough::release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* h = &handle_of(fi);
  if (options_.locks == lock_mode::daemon) locks_.release_handle(h->id(), lock_table::clock::now());
  ::close(h->fd);
  delete h;
  fuse_reply_err(req, 0);
}

void passthrough::fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  handle& h = handle_of(fi);
  if (int err = check_handle(h)) return (void)fuse_reply_err(req, err);
  if (int err = fault(req, op_class::fsync, *h.node)) return (void)fuse_reply_err(req, err);
  std::lock_guard io(h.node->io);
  if ((datasync ? ::fdatasync(h.fd) : ::fsync(h.fd)) != 0) return (void)fuse_reply_err(req, errno);
  model_.after_sync(h.fd);
  fuse_reply_err(req, 0);
}

void passthrough::fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  handle& h = handle_of(fi);
  if (int err = check_handle(h)) return (void)fuse_reply_err(req, err);
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  if (int err = fault(req, op_class::write, *h.node)) return (void)fuse_reply_err(req, err);
  std::lock_guard io(h.node->io);
  if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    if (auto ec = model_.before_write(h.fd, static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(length)))
      return (void)fuse_reply_err(req, ec.value());
  }
  // Plain allocation changes no byte; a size it adds goes at the power loss's truncate.
  if (::fallocate(h.fd, mode, offset, length) != 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_err(req, 0);
}

// ---- 5. Locks ------------------------------------------------------------------------------

void passthrough::getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  if (int err = check_handle(handle_of(fi))) return (void)fuse_reply_err(req, err);
  if (int err = fault(req, op_class::lock, node(ino))) return (void)fuse_reply_err(req, err);
  auto found = locks_.test(node(ino).key, to_range(*lock, fi), lock_table::clock::now());
  struct flock out = *lock;
  if (!found) {
    out.l_type = F_UNLCK;
  } else {
    out.l_type = found->type;
    out.l_whence = SEEK_SET;
    out.l_start = static_cast<off_t>(found->start);
    out.l_len = found->end == UINT64_MAX ? 0 : static_cast<off_t>(found->end - found->start + 1);
    out.l_pid = found->pid;
  }
  fuse_reply_lock(req, &out);
}

namespace {
void on_interrupt(fuse_req_t req, void* data) { static_cast<passthrough*>(data)->interrupted(req); }
}  // namespace

void passthrough::setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  gate g(*this);
  if (g.error()) return (void)fuse_reply_err(req, g.error());
  if (int err = check_handle(handle_of(fi))) return (void)fuse_reply_err(req, err);
  if (int err = fault(req, op_class::lock, node(ino))) return (void)fuse_reply_err(req, err);
  auto request = to_range(*lock, fi);
  // The interrupt callback must be in place before the request can be queued; if the
  // request was interrupted already, set() sees it and answers EINTR itself.
  if (sleep) fuse_req_interrupt_func(req, on_interrupt, this);
  locks_.set(
      node(ino).key, request, sleep != 0, req, [req](int error) { fuse_reply_err(req, error); },
      lock_table::clock::now(), [req] { return fuse_req_interrupted(req) != 0; });
}

void passthrough::interrupted(fuse_req_t req) { locks_.cancel(req); }

void passthrough::tick() {
  {
    std::lock_guard g(state_mutex_);
    if (frozen_ || !powered_.load()) return;
  }
  locks_.tick(lock_table::clock::now());
}

}  // namespace tandem::faultfs
