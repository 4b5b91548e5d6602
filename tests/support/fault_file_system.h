// tandem::fault::fault_file_system: the file-system seam's test double for crash and
// fault tests (journal/fs/file_system.h).
//
// What it models. Everything lives in memory. Each file (an "inode") has a durable image
// and a list of operations not yet synced (writes, fallocate, truncate); reads see the
// image with those applied, as a process sees the page cache. `file::sync` (fdatasync)
// makes that file's pending operations durable. Each directory has a list of namespace
// operations (create, rename, remove, mkdir) not yet made durable by `sync_dir`.
//
// Power loss (`crash()`), after SQLite's test6.c and RocksDB's FaultInjectionTestFS:
// - every pending data operation is, by a seeded draw, applied, lost, or (writes only,
//   each 512-byte piece of a write on its own, as writeback does not keep order)
//   turned into garbage (over its own bytes, or with powersafe_overwrite off over the
//   whole 512-byte sectors it touched: a torn sector on such a disk holds neither the old
//   nor the new bytes);
// - for each directory a seeded-length prefix of its pending namespace operations is
//   applied (a journaling file system commits metadata in order, so a later rename never
//   survives without the creation before it); the rest is lost;
// - what remains becomes the only state: every handle opened before the crash fails with
//   EIO from then on, and the test reopens the journal on the durable image.
//
// Dying before the power cut. A crash test must stop the system under test at a chosen
// moment without its later calls reaching "disk". `die_after(n)` (or `die()`) makes the
// file system dead after its nth mutating operation: every later call fails with EIO and
// changes nothing, so the store under test sees I/O errors (and reports no further
// success) while the test closes it; then `crash()` computes the survivor image.
//
// Error injection, after Beast's fail_count: `fail(op, n, error)` makes the nth future
// call of kind `op` fail with `error` (without effect); `sticky` keeps failing every later
// one (ENOSPC does not go away). A failed sync keeps its pending operations pending: the
// page cache may or may not still hold them, which the next crash() decides.
//
// Seeded: the same seed, options and call sequence give the same outcome, so a failing
// run replays from its seed (printed by the tests).
//
// Holding syncs: hold_syncs() makes every file sync wait until release_syncs(), so a test
// can keep a writer inside its group commit while it queues more work (wait_for_held_sync
// says when one is waiting). The wait happens outside the file system's lock.
//
// Slow reads: slow_reads(d) makes every file read wait d before it runs, as a hung NFS or
// CephFS mount answers late (slow_reads(0) lets the waiting ones go at once);
// wait_for_slow_read says when one is waiting, slow_reads_waiting how many. Also outside
// the lock, so writes and syncs go on meanwhile.
//
// Threads: every method of the file system and of its files may be called from any
// thread (one mutex guards all state; a test double needs no concurrency).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "journal/fs/file_system.h"

namespace tandem::test {

// Kinds of calls that can be counted and failed.
enum class op {
  open,
  read,
  write,      // both write_at overloads
  sync,       // file::sync (fdatasync)
  allocate,
  truncate,
  size,
  rename,
  remove,
  create_directories,
  sync_dir,
  list,
  exists,
};
inline constexpr std::size_t op_count = 13;
std::string_view to_string(op o) noexcept;

// How crash() treats what was never synced.
struct crash_options {
  // Weights of the three fates of each sector-sized piece of a pending write
  // (normalised; all zero = apply). fallocate/truncate are applied or lost.
  double apply_weight = 1.0;
  double lose_weight = 1.0;
  double garble_weight = 1.0;
  // Namespace operations not followed by sync_dir: a random-length prefix survives
  // (default), or all / none.
  enum class dir_policy { random_prefix, keep_all, lose_all } directories = dir_policy::random_prefix;
  // A disk that writes back each file in call order: a random prefix of its pending
  // operations survives, the first one after it is torn (a prefix of its sectors
  // survives, the rest is garbage or lost), later ones are lost. Without it (the default)
  // every pending write meets its fate independently, as with page-cache writeback, which
  // may persist a later write without an earlier one.
  bool in_order = false;
  // Powersafe overwrite (SQLite's term): a garbled write damages only its own bytes; the
  // other bytes of the sectors it touched keep their durable value, as on a disk whose
  // sector writes are atomic (each sector holds its old or its new contents). With false,
  // garbage covers every sector the write touched, including bytes synced long ago that
  // share a sector with it (SQLite test6.c without SQLITE_IOCAP_POWERSAFE_OVERWRITE).
  bool powersafe_overwrite = true;

  // Presets.
  static crash_options lose_all_unsynced() {  // LevelDB's DropUnsyncedFileData
    return {0.0, 1.0, 0.0, dir_policy::lose_all, false, true};
  }
  static crash_options keep_all_unsynced() {  // a process crash: the page cache survives
    return {1.0, 0.0, 0.0, dir_policy::keep_all, false, true};
  }
};

// What a crash() did, for the test's log.
struct crash_stats {
  std::uint64_t writes_applied = 0;
  std::uint64_t writes_lost = 0;
  std::uint64_t writes_garbled = 0;
  std::uint64_t writes_torn = 0;  // in_order: the write at the cut, partly applied
  std::uint64_t dir_ops_applied = 0;
  std::uint64_t dir_ops_lost = 0;
};

class fault_file_system final : public fs::file_system {
 public:
  explicit fault_file_system(std::uint64_t seed = 1);
  ~fault_file_system() override;

  // ---- fs::file_system ----
  fs::result<std::unique_ptr<fs::file>> open(const std::filesystem::path& path, fs::open_mode mode) override;
  std::error_code rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  std::error_code remove(const std::filesystem::path& path) override;
  std::error_code create_directories(const std::filesystem::path& path) override;
  std::error_code sync_dir(const std::filesystem::path& dir) override;
  fs::result<std::vector<std::string>> list(const std::filesystem::path& dir) override;
  fs::result<bool> exists(const std::filesystem::path& path) override;

  // ---- error injection ----
  // The nth call (1 = the next one) of kind `o` from now fails with `error`; with `sticky`
  // every later call of that kind fails too. One rule per kind; a new one replaces it.
  void fail(op o, std::uint64_t n, std::error_code error, bool sticky = false);
  void clear_failures();
  // Calls of kind `o` so far (including failed ones), for choosing n.
  std::uint64_t count(op o) const;

  // ---- holding syncs (see the header comment) ----
  void hold_syncs();
  void release_syncs();
  // True once a file sync waits at the gate; false after `deadline`.
  bool wait_for_held_sync(std::chrono::milliseconds deadline = std::chrono::seconds(30));

  // ---- slow reads (see the header comment) ----
  void slow_reads(std::chrono::milliseconds delay);
  // True once a file read waits in its delay; false after `deadline`.
  bool wait_for_slow_read(std::chrono::milliseconds deadline = std::chrono::seconds(30));
  int slow_reads_waiting() const;

  // ---- power loss ----
  // After `n` more mutating calls (write, sync, allocate, truncate, open that creates,
  // rename, remove, create_directories, sync_dir) the file system is dead: that call and
  // every later one fail with EIO and change nothing. 0 = dead now. nullopt = never.
  void die_after(std::optional<std::uint64_t> n);
  void die() { die_after(0); }
  // Dies at the nth sync point from now (file sync or sync_dir, 1 = the next one): that
  // call and every later one fail with EIO. To crash at every sync point of a procedure,
  // count its sync points once (sync_points()) and replay it with n = 1, 2, ...
  void die_at_sync(std::uint64_t n);
  // file::sync plus sync_dir calls so far.
  std::uint64_t sync_points() const;
  bool dead() const;
  // Mutating calls so far (what die_after counts).
  std::uint64_t mutations() const;
  // Simulates a power cut (see the header comment), then revives the file system on the
  // surviving image. Old handles fail with EIO from now on. Failure rules are kept.
  crash_stats crash(const crash_options& how = {});
  // Pending (unsynced) data operations and namespace operations, summed over all files.
  std::uint64_t pending_data_ops() const;
  std::uint64_t pending_dir_ops() const;

  // ---- direct access to the durable image (for damage tests and golden files) ----
  // Both act on the durable image only and require that nothing is pending on the file
  // (call after crash() or after every sync); they bypass error injection.
  std::optional<std::vector<std::byte>> durable_contents(const std::filesystem::path& path) const;
  void set_durable_contents(const std::filesystem::path& path, std::vector<std::byte> contents);
  // Durable regular files (full paths), sorted.
  std::vector<std::filesystem::path> durable_files() const;
  // Copies the durable image under `from` (in this file system) to the real directory `to`
  // (created), e.g. to run `tandem-journal` on a crashed image.
  std::error_code export_to(const std::filesystem::path& from, const std::filesystem::path& to) const;
  // Loads a real directory tree as durable files under `to`.
  std::error_code import_from(const std::filesystem::path& from, const std::filesystem::path& to);

 private:
  struct inode;
  struct dir_op;
  class handle;
  friend class handle;

  using path = std::filesystem::path;

  void pass_sync_gate();
  void pass_read_delay();
  // Counts a call, applies the failure rule and the death countdown. Called under mu_.
  std::error_code enter(op o, bool mutating);
  std::error_code check_handle(std::uint64_t generation) const;
  static path norm(const path& p);
  bool live_dir_exists(const path& dir) const;
  void record_dir_op(const path& dir, dir_op d);
  // Applies a namespace operation to the durable image (sync_dir, or crash() keeping it).
  void make_durable(const dir_op& d);
  std::uint64_t draw(std::uint64_t bound);  // uniform in [0, bound)

  struct rule {
    std::uint64_t at = 0;  // absolute call count that fails (0 = none)
    std::error_code error;
    bool sticky = false;
  };

  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::uint64_t generation_ = 1;
  std::array<std::uint64_t, op_count> counts_{};
  std::array<rule, op_count> rules_{};
  std::uint64_t mutations_ = 0;
  std::optional<std::uint64_t> die_at_;  // mutation count at which death starts
  std::optional<std::uint64_t> die_at_sync_;  // sync point count at which death starts
  bool dead_ = false;

  // Live namespace (what the process sees) and durable namespace (what survives).
  std::map<path, std::shared_ptr<inode>> live_files_;
  std::set<path> live_dirs_;
  std::map<path, std::shared_ptr<inode>> durable_files_;
  std::set<path> durable_dirs_;
  std::map<path, std::vector<dir_op>> pending_dirs_;  // by parent directory
  // Every inode that may hold pending data (weak: an unlinked, closed file just goes).
  std::vector<std::weak_ptr<inode>> inodes_;

  mutable std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_held_ = false;
  int gate_waiting_ = 0;
  std::chrono::milliseconds read_delay_{0};
  int reads_waiting_ = 0;
};

}  // namespace tandem::test
