// fuse_ops.cpp: the C callback table libfuse calls. Each op_* finds the passthrough behind
// the request (fuse_req_userdata) and calls the member of the same name; the table comes in
// two flavours, with or without getlk/setlk, because with kernel locks libfuse must not see
// lock callbacks at all (it would route POSIX locks through the daemon).
#include "tools/faultfs/passthrough.h"

namespace tandem::faultfs {

namespace {

passthrough& self(fuse_req_t req) { return *static_cast<passthrough*>(fuse_req_userdata(req)); }

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) { self(req).lookup(req, parent, name); }
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  self(req).forget(ino, n);
  fuse_reply_none(req);
}
void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) self(req).forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { self(req).getattr(req, ino, fi); }
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  self(req).setattr(req, ino, attr, to_set, fi);
}
void op_readlink(fuse_req_t req, fuse_ino_t ino) { self(req).readlink(req, ino); }
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  self(req).mknod(req, parent, name, mode, rdev);
}
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) { self(req).mkdir(req, parent, name, mode); }
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { self(req).unlink(req, parent, name, false); }
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { self(req).unlink(req, parent, name, true); }
void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  self(req).symlink(req, link, parent, name);
}
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned flags) {
  self(req).rename(req, parent, name, newparent, newname, flags);
}
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) { self(req).link(req, ino, parent, name); }
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { self(req).open(req, ino, fi); }
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  self(req).read(req, ino, size, off, fi);
}
void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  self(req).write(req, ino, buf, size, off, fi);
}
void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { self(req).flush(req, ino, fi); }
void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { self(req).release(req, ino, fi); }
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) { self(req).fsync(req, ino, datasync, fi); }
void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { self(req).opendir(req, ino, fi); }
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  self(req).readdir(req, ino, size, off, fi);
}
void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) { self(req).releasedir(req, ino, fi); }
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  self(req).fsyncdir(req, ino, datasync, fi);
}
void op_statfs(fuse_req_t req, fuse_ino_t ino) { self(req).statfs(req, ino); }
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  self(req).create(req, parent, name, mode, fi);
}
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  self(req).fallocate(req, ino, mode, offset, length, fi);
}
void op_getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) { self(req).getlk(req, ino, fi, lock); }
void op_setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  self(req).setlk(req, ino, fi, lock, sleep);
}

void op_init(void*, fuse_conn_info* conn) {
  // Every write must reach the daemon when the program makes it.
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_WRITEBACK_CACHE);
}

fuse_lowlevel_ops make_operations(bool with_locks) {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.create = op_create;
  ops.fallocate = op_fallocate;
  if (with_locks) {
    ops.getlk = op_getlk;
    ops.setlk = op_setlk;
  }
  return ops;
}

const fuse_lowlevel_ops daemon_lock_ops = make_operations(true);
const fuse_lowlevel_ops kernel_lock_ops = make_operations(false);

}  // namespace

const fuse_lowlevel_ops& passthrough::operations() const {
  return options_.locks == lock_mode::daemon ? daemon_lock_ops : kernel_lock_ops;
}

}  // namespace tandem::faultfs
