// power_model: what a power loss takes away from the files under tandem-faultfs.
//
// The model is strict on purpose (a drill wants the worst case a correct program must
// survive), after RocksDB's FaultInjectionTestFS ("drop unsynced file data") and the
// namespace rules of SQLite's test6.c and our own tests/fault/fault_file_system.h:
//
// * Data. Every regular file returns to its contents AND size at its last successful
//   fsync or fdatasync, made through any descriptor of the file (both commit data and
//   size). A file created and never synced returns to empty. Nothing unsynced survives,
//   not even a prefix of it.
// * Names. Creations, removals and renames (create, mknod, mkdir, symlink, link, unlink,
//   rmdir, rename) form ONE ordered log. An fsync of a directory makes durable every entry
//   up to the last one that touched that directory, the earlier ones included: a
//   journaling file system (ext4 data=ordered, XFS) commits metadata in order, so a later
//   rename never survives without the creation before it. At a power loss the rest is
//   undone, newest first: a created name comes off; a removed name comes back with the
//   inode it had (kept alive by a link in a hidden trash directory until the removal is
//   durable); a rename is reversed and the file it replaced comes back. An fsync of a
//   regular file does NOT make its name durable (POSIX does not promise it; ext4 happens
//   to), so a program that forgets the directory fsync after creating or renaming loses
//   the name.
// * Not modelled: torn or reordered writes inside what was synced (a synced byte always
//   survives, an unsynced one never does), garbage sectors, metadata other than names and
//   sizes (modes, owners, times and xattrs stay as they are), and a failed fsync dropping
//   dirty pages: a failed fsync commits nothing, a later successful one commits
//   everything written since the last (the optimistic reading of Linux's fsync errors).
//
// How. Before a write, a shrinking truncate or a hole punch, the bytes it replaces are
// copied into the file's undo list; a successful sync drops the list; a power loss writes
// the lists back newest first and truncates each file to its synced size, then undoes the
// name log newest first. Memory use is what was written and not yet synced. Files that
// existed before the mount count as synced.
//
// Threads: every method takes the model's mutex. The caller must keep a write and its
// before_write together (no other write to the same file in between): the FUSE layer
// holds the file's own mutex across both (passthrough.cpp).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace tandem::faultfs {

// An inode of the underlying file system.
struct file_key {
  dev_t dev = 0;
  ino_t ino = 0;
  auto operator<=>(const file_key&) const = default;
};

struct power_model_stats {
  std::uint64_t unsynced_files = 0;   // files with writes not yet synced
  std::uint64_t unsynced_bytes = 0;   // bytes their undo lists hold
  std::uint64_t pending_names = 0;    // name-log entries no directory fsync made durable
};

class power_model {
 public:
  // `trash_dir_fd`: a directory on the same file system as every file the model sees
  // (hard links go there), owned by the caller and hidden from clients. Borrowed.
  explicit power_model(int trash_dir_fd);
  ~power_model();
  power_model(const power_model&) = delete;
  power_model& operator=(const power_model&) = delete;

  // ---- data (fd: an open descriptor of the file, any mode that allows reading) ----
  // Before writing [offset, offset + length): keeps the bytes that the write replaces.
  std::error_code before_write(int fd, std::uint64_t offset, std::uint64_t length);
  // Before ftruncate(new_size): keeps what a shrink cuts off.
  std::error_code before_truncate(int fd, std::uint64_t new_size);
  // After a successful fsync/fdatasync of the file.
  void after_sync(int fd);

  // ---- names (dir_fd: a descriptor of the directory, O_PATH is enough) ----
  // One change of a name, between its before_ call and done() or forget().
  struct name_change;
  class pending_change {
   public:
    pending_change();
    pending_change(pending_change&&) noexcept;
    pending_change& operator=(pending_change&&) noexcept;
    ~pending_change();  // forgets it if neither done() nor forget() was called

   private:
    friend class power_model;
    power_model* model_ = nullptr;
    std::unique_ptr<name_change> change_;
  };

  // After a successful creation of `name` (a file, a directory, a symlink, a node, a link).
  void created(int dir_fd, const std::string& name, bool is_dir);
  // Before unlinkat/rmdir of `name`: keeps the inode (files) or the mode (directories) so a
  // power loss can bring the name back.
  std::error_code before_remove(int dir_fd, const std::string& name, pending_change& out);
  // Before renameat(from_dir/from -> to_dir/to): keeps the entry `to` replaces, if any.
  std::error_code before_rename(int from_dir, const std::string& from, int to_dir, const std::string& to,
                                pending_change& out);
  // The change happened: it joins the name log.
  void done(pending_change& c);
  // The change failed: nothing to undo.
  void forget(pending_change& c);
  // After a successful fsync of a directory: makes the name log durable up to the last
  // entry that touched it.
  void after_dir_sync(int dir_fd);

  // ---- the power loss ----
  // Restores every file's synced contents, then undoes the names no directory sync made
  // durable; afterwards nothing is pending. Goes on after an error and returns the first.
  std::error_code power_loss();

  power_model_stats stats() const;

 private:
  struct undo_record {
    std::uint64_t offset;
    std::string bytes;
  };
  struct file_state {
    int path_fd = -1;               // O_PATH, to reopen the file at a power loss
    std::uint64_t synced_size = 0;
    std::vector<undo_record> undo;  // oldest first
    std::uint64_t bytes = 0;
  };
  enum class name_op { created, removed, renamed };
 public:
  struct name_change {
    name_op op;
    int dir_fd = -1;                // dup'd O_PATH of the (first) directory
    file_key dir;
    std::string name;
    bool is_dir = false;            // created or removed a directory
    mode_t dir_mode = 0;            // removed/replaced directory: its mode, to recreate it
    int to_dir_fd = -1;             // renamed: the target directory
    file_key to_dir;
    std::string to_name;
    std::string trash;              // removed or replaced file: its link in the trash
    bool replaced = false;          // renamed over an existing entry
    bool replaced_dir = false;
  };

 private:
  using name_entry = name_change;

  // `size` (optional): the file's size now, from the same fstat.
  file_state* state_for(int fd, std::error_code& ec, std::uint64_t* size = nullptr);  // REQUIRES: mutex_ held
  std::error_code save(file_state& f, int fd, std::uint64_t offset, std::uint64_t length, std::uint64_t size);
  std::error_code keep_in_trash(int dir_fd, const std::string& name, name_entry& e, bool as_replaced);
  void commit(name_entry& e);
  std::error_code undo(name_entry& e);
  static void close_entry(name_entry& e);

  mutable std::mutex mutex_;
  int trash_fd_;
  std::uint64_t next_trash_ = 0;
  std::map<file_key, file_state> files_;
  std::vector<name_entry> names_;  // oldest first
};

}  // namespace tandem::faultfs
