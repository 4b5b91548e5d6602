#include "tests/support/fault_file_system.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace tandem::test {

namespace {

constexpr std::uint64_t sector_bytes = 512;

std::error_code eio() { return std::make_error_code(std::errc::io_error); }

}  // namespace

std::string_view to_string(op o) noexcept {
  switch (o) {
    case op::open: return "open";
    case op::read: return "read";
    case op::write: return "write";
    case op::sync: return "sync";
    case op::allocate: return "allocate";
    case op::truncate: return "truncate";
    case op::size: return "size";
    case op::rename: return "rename";
    case op::remove: return "remove";
    case op::create_directories: return "create_directories";
    case op::sync_dir: return "sync_dir";
    case op::list: return "list";
    case op::exists: return "exists";
  }
  return "unknown";
}

// One file's contents: the durable image plus the operations since the last sync, in call
// order. `live` is `durable` with `pending` applied (what reads see); keeping it
// materialised makes reads trivial, and sync applies `pending` to `durable` so a sync
// costs what was written since the last one, not the file size.
struct fault_file_system::inode {
  struct data_op {
    enum class kind { write, allocate, truncate } what;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;  // allocate: length; truncate: new size in `offset`
    std::vector<std::byte> bytes;
  };
  std::vector<std::byte> durable;
  std::vector<std::byte> live;
  std::vector<data_op> pending;

  static void apply(std::vector<std::byte>& image, const data_op& d) {
    switch (d.what) {
      case data_op::kind::write:
        if (image.size() < d.offset + d.bytes.size()) image.resize(d.offset + d.bytes.size());
        std::copy(d.bytes.begin(), d.bytes.end(), image.begin() + static_cast<std::ptrdiff_t>(d.offset));
        break;
      case data_op::kind::allocate:
        if (image.size() < d.offset + d.length) image.resize(d.offset + d.length);
        break;
      case data_op::kind::truncate:
        image.resize(d.offset);
        break;
    }
  }
  void push(data_op d) {
    apply(live, d);
    pending.push_back(std::move(d));
  }
  void sync() {
    for (const auto& d : pending) apply(durable, d);
    pending.clear();
  }
};

// A namespace change in one directory, not yet made durable by sync_dir.
struct fault_file_system::dir_op {
  enum class kind { link, unlink, rename, mkdir } what;
  path target;  // link/unlink/mkdir: the entry; rename: destination
  path source;  // rename: the old name
  std::shared_ptr<inode> node;
};

class fault_file_system::handle final : public fs::file {
 public:
  handle(fault_file_system& owner, std::shared_ptr<inode> node, std::filesystem::path p, bool writable,
         std::uint64_t generation)
      : owner_(owner), node_(std::move(node)), path_(std::move(p)), writable_(writable),
        generation_(generation) {}

  fs::result<std::size_t> read_at(std::span<std::byte> out, std::uint64_t offset) override {
    owner_.pass_read_delay();  // outside mu_, as a sync at the gate
    std::lock_guard lock(owner_.mu_);
    if (auto ec = owner_.enter(op::read, false)) return ec;
    if (auto ec = owner_.check_handle(generation_)) return ec;
    const auto& img = node_->live;
    if (offset >= img.size()) return std::size_t{0};
    std::size_t n = std::min<std::uint64_t>(out.size(), img.size() - offset);
    std::memcpy(out.data(), img.data() + offset, n);
    return n;
  }

  std::error_code write_at(std::span<const std::byte> data, std::uint64_t offset) override {
    std::span<const std::byte> one[] = {data};
    return write_at(std::span<const std::span<const std::byte>>(one), offset);
  }

  std::error_code write_at(std::span<const std::span<const std::byte>> buffers,
                           std::uint64_t offset) override {
    std::lock_guard lock(owner_.mu_);
    if (auto ec = owner_.enter(op::write, true)) return ec;
    if (auto ec = owner_.check_handle(generation_)) return ec;
    if (!writable_) return std::make_error_code(std::errc::bad_file_descriptor);
    inode::data_op d{inode::data_op::kind::write, offset};
    for (const auto& b : buffers) d.bytes.insert(d.bytes.end(), b.begin(), b.end());
    if (d.bytes.empty()) return {};
    node_->push(std::move(d));
    return {};
  }

  std::error_code sync() override {
    owner_.pass_sync_gate();  // outside mu_: a held sync must not stop the rest of the file system
    std::lock_guard lock(owner_.mu_);
    if (auto ec = owner_.enter(op::sync, true)) return ec;
    if (auto ec = owner_.check_handle(generation_)) return ec;
    node_->sync();
    return {};
  }

  std::error_code allocate(std::uint64_t offset, std::uint64_t length) override {
    std::lock_guard lock(owner_.mu_);
    if (auto ec = owner_.enter(op::allocate, true)) return ec;
    if (auto ec = owner_.check_handle(generation_)) return ec;
    if (!writable_) return std::make_error_code(std::errc::bad_file_descriptor);
    node_->push({inode::data_op::kind::allocate, offset, length, {}});
    return {};
  }

  std::error_code truncate(std::uint64_t size) override {
    std::lock_guard lock(owner_.mu_);
    if (auto ec = owner_.enter(op::truncate, true)) return ec;
    if (auto ec = owner_.check_handle(generation_)) return ec;
    if (!writable_) return std::make_error_code(std::errc::invalid_argument);
    node_->push({inode::data_op::kind::truncate, size, 0, {}});
    return {};
  }

  fs::result<std::uint64_t> size() override {
    std::lock_guard lock(owner_.mu_);
    if (auto ec = owner_.enter(op::size, false)) return ec;
    if (auto ec = owner_.check_handle(generation_)) return ec;
    return static_cast<std::uint64_t>(node_->live.size());
  }

  int native_handle() const override { return -1; }
  const std::filesystem::path& path() const override { return path_; }

 private:
  fault_file_system& owner_;
  std::shared_ptr<inode> node_;
  std::filesystem::path path_;
  bool writable_;
  std::uint64_t generation_;
};

fault_file_system::fault_file_system(std::uint64_t seed) : rng_(seed) {
  live_dirs_.insert("/");
  durable_dirs_.insert("/");
}

fault_file_system::~fault_file_system() = default;

fault_file_system::path fault_file_system::norm(const path& p) {
  path n = p.lexically_normal();
  // "a/b/" and "a/b" name the same directory.
  if (n.has_relative_path() && !n.has_filename()) n = n.parent_path();
  return n;
}

std::error_code fault_file_system::enter(op o, bool mutating) {
  auto i = static_cast<std::size_t>(o);
  std::uint64_t n = ++counts_[i];
  if (dead_) return eio();
  if (die_at_sync_ && (o == op::sync || o == op::sync_dir) &&
      counts_[static_cast<std::size_t>(op::sync)] + counts_[static_cast<std::size_t>(op::sync_dir)] >= *die_at_sync_) {
    dead_ = true;
    return eio();
  }
  if (mutating) {
    if (die_at_ && mutations_ >= *die_at_) {
      dead_ = true;
      return eio();
    }
    ++mutations_;
  }
  const rule& r = rules_[i];
  if (r.at != 0 && (n == r.at || (r.sticky && n > r.at))) return r.error;
  return {};
}

std::error_code fault_file_system::check_handle(std::uint64_t generation) const {
  // A handle from before a power cut belongs to a process that no longer exists.
  return generation == generation_ ? std::error_code{} : eio();
}

bool fault_file_system::live_dir_exists(const path& dir) const {
  return dir.empty() || live_dirs_.count(dir) != 0;
}

void fault_file_system::record_dir_op(const path& dir, dir_op d) {
  pending_dirs_[dir.empty() ? path("/") : dir].push_back(std::move(d));
}

std::uint64_t fault_file_system::draw(std::uint64_t bound) {
  // Not std::uniform_int_distribution: its output is implementation-defined, and a seed
  // must replay the same run on every build.
  return bound == 0 ? 0 : rng_() % bound;
}

fs::result<std::unique_ptr<fs::file>> fault_file_system::open(const path& raw, fs::open_mode mode) {
  std::lock_guard lock(mu_);
  path p = norm(raw);
  auto it = live_files_.find(p);
  bool creates = it == live_files_.end() &&
                 (mode == fs::open_mode::create_exclusive || mode == fs::open_mode::create_or_open);
  if (auto ec = enter(op::open, creates)) return ec;
  if (live_dirs_.count(p) != 0) return std::make_error_code(std::errc::is_a_directory);
  if (it == live_files_.end()) {
    if (!creates) return std::make_error_code(std::errc::no_such_file_or_directory);
    if (!live_dir_exists(p.parent_path())) return std::make_error_code(std::errc::no_such_file_or_directory);
    auto node = std::make_shared<inode>();
    inodes_.push_back(node);
    it = live_files_.emplace(p, node).first;
    record_dir_op(p.parent_path(), {dir_op::kind::link, p, {}, node});
  } else if (mode == fs::open_mode::create_exclusive) {
    return std::make_error_code(std::errc::file_exists);
  }
  bool writable = mode != fs::open_mode::read_only;
  return std::unique_ptr<fs::file>(std::make_unique<handle>(*this, it->second, p, writable, generation_));
}

std::error_code fault_file_system::rename(const path& raw_from, const path& raw_to) {
  std::lock_guard lock(mu_);
  path from = norm(raw_from), to = norm(raw_to);
  if (auto ec = enter(op::rename, true)) return ec;
  auto it = live_files_.find(from);
  if (it == live_files_.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
  if (!live_dir_exists(to.parent_path())) return std::make_error_code(std::errc::no_such_file_or_directory);
  if (live_dirs_.count(to) != 0) return std::make_error_code(std::errc::is_a_directory);
  if (from == to) return {};
  auto node = it->second;
  live_files_.erase(it);
  live_files_[to] = node;
  record_dir_op(to.parent_path(), {dir_op::kind::rename, to, from, node});
  // Across directories the old name goes only when its own directory is synced; on a
  // power cut the file may then have neither name (or both), as on a real disk.
  if (from.parent_path() != to.parent_path())
    record_dir_op(from.parent_path(), {dir_op::kind::unlink, from, {}, node});
  return {};
}

std::error_code fault_file_system::remove(const path& raw) {
  std::lock_guard lock(mu_);
  path p = norm(raw);
  if (auto ec = enter(op::remove, true)) return ec;
  auto it = live_files_.find(p);
  if (it == live_files_.end()) {
    if (live_dirs_.count(p) != 0) return std::make_error_code(std::errc::is_a_directory);
    return std::make_error_code(std::errc::no_such_file_or_directory);
  }
  record_dir_op(p.parent_path(), {dir_op::kind::unlink, p, {}, it->second});
  live_files_.erase(it);
  return {};
}

std::error_code fault_file_system::create_directories(const path& raw) {
  std::lock_guard lock(mu_);
  path p = norm(raw);
  if (auto ec = enter(op::create_directories, true)) return ec;
  std::vector<path> missing;
  for (path q = p; !q.empty() && q != q.root_path() && live_dirs_.count(q) == 0; q = q.parent_path()) {
    if (live_files_.count(q) != 0) return std::make_error_code(std::errc::not_a_directory);
    missing.push_back(q);
  }
  for (auto i = missing.rbegin(); i != missing.rend(); ++i) {
    live_dirs_.insert(*i);
    record_dir_op(i->parent_path(), {dir_op::kind::mkdir, *i, {}, nullptr});
  }
  return {};
}

void fault_file_system::make_durable(const dir_op& d) {
  switch (d.what) {
    case dir_op::kind::link: durable_files_[d.target] = d.node; break;
    case dir_op::kind::unlink: {
      auto f = durable_files_.find(d.target);
      if (f != durable_files_.end() && f->second == d.node) durable_files_.erase(f);
      break;
    }
    case dir_op::kind::rename: {
      auto f = durable_files_.find(d.source);
      if (f != durable_files_.end() && f->second == d.node && d.source.parent_path() == d.target.parent_path())
        durable_files_.erase(f);
      durable_files_[d.target] = d.node;
      break;
    }
    case dir_op::kind::mkdir: durable_dirs_.insert(d.target); break;
  }
}

std::error_code fault_file_system::sync_dir(const path& raw) {
  std::lock_guard lock(mu_);
  path p = raw.empty() ? path("/") : norm(raw);
  if (auto ec = enter(op::sync_dir, true)) return ec;
  if (!live_dir_exists(p)) return std::make_error_code(std::errc::no_such_file_or_directory);
  auto it = pending_dirs_.find(p);
  if (it == pending_dirs_.end()) return {};
  for (const auto& d : it->second) make_durable(d);
  pending_dirs_.erase(it);
  return {};
}

fs::result<std::vector<std::string>> fault_file_system::list(const path& raw) {
  std::lock_guard lock(mu_);
  path p = norm(raw);
  if (auto ec = enter(op::list, false)) return ec;
  if (!live_dir_exists(p)) {
    if (live_files_.count(p) != 0) return std::make_error_code(std::errc::not_a_directory);
    return std::make_error_code(std::errc::no_such_file_or_directory);
  }
  std::vector<std::string> names;
  for (const auto& [name, node] : live_files_)
    if (name.parent_path() == p) names.push_back(name.filename().string());
  for (const auto& d : live_dirs_)
    if (d != p && d.parent_path() == p) names.push_back(d.filename().string());
  return names;
}

fs::result<bool> fault_file_system::exists(const path& raw) {
  std::lock_guard lock(mu_);
  path p = norm(raw);
  if (auto ec = enter(op::exists, false)) return ec;
  return live_files_.count(p) != 0 || live_dirs_.count(p) != 0;
}

void fault_file_system::fail(op o, std::uint64_t n, std::error_code error, bool sticky) {
  std::lock_guard lock(mu_);
  auto i = static_cast<std::size_t>(o);
  rules_[i] = {counts_[i] + std::max<std::uint64_t>(n, 1), error, sticky};
}

void fault_file_system::clear_failures() {
  std::lock_guard lock(mu_);
  rules_ = {};
}

std::uint64_t fault_file_system::count(op o) const {
  std::lock_guard lock(mu_);
  return counts_[static_cast<std::size_t>(o)];
}

void fault_file_system::die_after(std::optional<std::uint64_t> n) {
  std::lock_guard lock(mu_);
  if (!n) {
    die_at_.reset();
    return;
  }
  die_at_ = mutations_ + *n;
  if (*n == 0) dead_ = true;
}

void fault_file_system::die_at_sync(std::uint64_t n) {
  std::lock_guard lock(mu_);
  die_at_sync_ = counts_[static_cast<std::size_t>(op::sync)] + counts_[static_cast<std::size_t>(op::sync_dir)] +
                 std::max<std::uint64_t>(n, 1);
}

void fault_file_system::hold_syncs() {
  std::lock_guard lock(gate_mu_);
  gate_held_ = true;
}

void fault_file_system::release_syncs() {
  std::lock_guard lock(gate_mu_);
  gate_held_ = false;
  gate_cv_.notify_all();
}

bool fault_file_system::wait_for_held_sync(std::chrono::milliseconds deadline) {
  std::unique_lock lock(gate_mu_);
  return gate_cv_.wait_for(lock, deadline, [&] { return gate_waiting_ > 0; });
}

void fault_file_system::pass_sync_gate() {
  std::unique_lock lock(gate_mu_);
  if (!gate_held_) return;
  ++gate_waiting_;
  gate_cv_.notify_all();
  // Bounded, so a test that forgets release_syncs fails instead of hanging.
  gate_cv_.wait_for(lock, std::chrono::seconds(60), [&] { return !gate_held_; });
  --gate_waiting_;
}

void fault_file_system::slow_reads(std::chrono::milliseconds delay) {
  std::lock_guard lock(gate_mu_);
  read_delay_ = delay;
  gate_cv_.notify_all();
}

bool fault_file_system::wait_for_slow_read(std::chrono::milliseconds deadline) {
  std::unique_lock lock(gate_mu_);
  return gate_cv_.wait_for(lock, deadline, [&] { return reads_waiting_ > 0; });
}

int fault_file_system::slow_reads_waiting() const {
  std::lock_guard lock(gate_mu_);
  return reads_waiting_;
}

void fault_file_system::pass_read_delay() {
  std::unique_lock lock(gate_mu_);
  if (read_delay_ <= std::chrono::milliseconds(0)) return;
  ++reads_waiting_;
  gate_cv_.notify_all();
  const auto until = std::chrono::steady_clock::now() + read_delay_;
  gate_cv_.wait_until(lock, until, [&] { return read_delay_ <= std::chrono::milliseconds(0); });
  --reads_waiting_;
}

std::uint64_t fault_file_system::sync_points() const {
  std::lock_guard lock(mu_);
  return counts_[static_cast<std::size_t>(op::sync)] + counts_[static_cast<std::size_t>(op::sync_dir)];
}

bool fault_file_system::dead() const {
  std::lock_guard lock(mu_);
  return dead_;
}

std::uint64_t fault_file_system::mutations() const {
  std::lock_guard lock(mu_);
  return mutations_;
}

crash_stats fault_file_system::crash(const crash_options& how) {
  std::lock_guard lock(mu_);
  crash_stats stats;

  // 1. Namespace: per directory (in path order, so a seed replays), a prefix survives.
  for (auto& [dir, ops] : pending_dirs_) {
    std::size_t keep = 0;
    switch (how.directories) {
      case crash_options::dir_policy::keep_all: keep = ops.size(); break;
      case crash_options::dir_policy::lose_all: keep = 0; break;
      case crash_options::dir_policy::random_prefix: keep = draw(ops.size() + 1); break;
    }
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const auto& d = ops[i];
      if (i >= keep) {
        ++stats.dir_ops_lost;
        continue;
      }
      ++stats.dir_ops_applied;
      make_durable(d);
    }
  }
  pending_dirs_.clear();
  // Entries whose directory did not survive are gone with it.
  auto reachable = [&](const path& p) {
    for (path q = p.parent_path(); !q.empty() && q != q.root_path(); q = q.parent_path())
      if (durable_dirs_.count(q) == 0) return false;
    return true;
  };
  std::erase_if(durable_files_, [&](const auto& e) { return !reachable(e.first); });
  std::erase_if(durable_dirs_, [&](const path& d) { return d != "/" && !reachable(d); });

  // 2. Data: each pending operation of each file meets its fate, in call order. Files
  //    in inode-creation order so the draws replay.
  double total = how.apply_weight + how.lose_weight + how.garble_weight;
  for (auto& weak : inodes_) {
    auto node = weak.lock();
    if (!node) continue;
    // in_order: ops [0, cut) applied, op `cut` torn, the rest lost.
    std::size_t cut = how.in_order ? draw(node->pending.size() + 1) : 0;
    for (std::size_t i = 0; i < node->pending.size(); ++i) {
      const auto& d = node->pending[i];
      if (how.in_order) {
        if (i < cut) {
          ++stats.writes_applied;
          inode::apply(node->durable, d);
        } else if (i > cut || d.what != inode::data_op::kind::write) {
          ++stats.writes_lost;
        } else {
          // A prefix of whole sectors reached the disk; the sector being written when the
          // power went holds old bytes, new bytes or garbage.
          ++stats.writes_torn;
          std::uint64_t end = d.offset + d.bytes.size();
          std::uint64_t first_sector_end = std::min<std::uint64_t>(end, (d.offset / sector_bytes + 1) * sector_bytes);
          std::uint64_t sectors = (end - first_sector_end + sector_bytes - 1) / sector_bytes + 1;
          std::uint64_t keep_sectors = draw(sectors + 1);
          std::uint64_t keep_end = keep_sectors == 0 ? d.offset
                                   : std::min<std::uint64_t>(end, first_sector_end + (keep_sectors - 1) * sector_bytes);
          if (node->durable.size() < keep_end) node->durable.resize(keep_end);
          std::copy(d.bytes.begin(), d.bytes.begin() + static_cast<std::ptrdiff_t>(keep_end - d.offset),
                    node->durable.begin() + static_cast<std::ptrdiff_t>(d.offset));
          if (keep_end < end && draw(2) == 0) {
            std::uint64_t g_end = std::min<std::uint64_t>(end, (keep_end / sector_bytes + 1) * sector_bytes);
            if (node->durable.size() < g_end) node->durable.resize(g_end);
            for (std::uint64_t b = keep_end; b < g_end; ++b) node->durable[b] = static_cast<std::byte>(rng_());
          }
        }
        continue;
      }
      enum class fate { apply, lose, garble };
      auto draw_fate = [&] {
        if (total <= 0) return fate::apply;
        double x = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0) * total;
        return x < how.apply_weight                    ? fate::apply
               : x < how.apply_weight + how.lose_weight ? fate::lose
                                                        : fate::garble;
      };
      if (d.what != inode::data_op::kind::write) {
        if (draw_fate() == fate::lose) {
          ++stats.writes_lost;
        } else {
          ++stats.writes_applied;
          inode::apply(node->durable, d);
        }
        continue;
      }
      // Writeback goes sector by sector in no particular order: each sector-sized piece of
      // the write meets its own fate, so a later piece can survive an earlier lost one.
      const std::uint64_t end = d.offset + d.bytes.size();
      for (std::uint64_t piece = d.offset; piece < end;) {
        const std::uint64_t piece_end = std::min<std::uint64_t>(end, (piece / sector_bytes + 1) * sector_bytes);
        const fate f = draw_fate();
        if (f == fate::lose) {
          ++stats.writes_lost;
        } else if (f == fate::apply) {
          ++stats.writes_applied;
          if (node->durable.size() < piece_end) node->durable.resize(piece_end);
          std::copy(d.bytes.begin() + static_cast<std::ptrdiff_t>(piece - d.offset),
                    d.bytes.begin() + static_cast<std::ptrdiff_t>(piece_end - d.offset),
                    node->durable.begin() + static_cast<std::ptrdiff_t>(piece));
        } else {
          ++stats.writes_garbled;
          std::uint64_t from = piece, to = piece_end;
          if (!how.powersafe_overwrite) {
            from = piece / sector_bytes * sector_bytes;
            to = std::max<std::uint64_t>(
                piece_end, std::min<std::uint64_t>(from + sector_bytes, std::max<std::uint64_t>(node->durable.size(), piece_end)));
          }
          if (node->durable.size() < to) node->durable.resize(to);
          for (std::uint64_t b = from; b < to; ++b) node->durable[b] = static_cast<std::byte>(rng_());
        }
        piece = piece_end;
      }
    }
    node->pending.clear();
    node->live = node->durable;
  }

  // 3. The survivors are all there is; the old process's handles are dead.
  live_files_ = durable_files_;
  live_dirs_ = durable_dirs_;
  std::erase_if(inodes_, [](const std::weak_ptr<inode>& w) { return w.expired(); });
  ++generation_;
  dead_ = false;
  die_at_.reset();
  die_at_sync_.reset();
  return stats;
}

std::uint64_t fault_file_system::pending_data_ops() const {
  std::lock_guard lock(mu_);
  std::uint64_t n = 0;
  for (const auto& weak : inodes_)
    if (auto node = weak.lock()) n += node->pending.size();
  return n;
}

std::uint64_t fault_file_system::pending_dir_ops() const {
  std::lock_guard lock(mu_);
  std::uint64_t n = 0;
  for (const auto& [dir, ops] : pending_dirs_) n += ops.size();
  return n;
}

std::optional<std::vector<std::byte>> fault_file_system::durable_contents(const path& raw) const {
  std::lock_guard lock(mu_);
  auto it = durable_files_.find(norm(raw));
  if (it == durable_files_.end()) return std::nullopt;
  return it->second->durable;
}

void fault_file_system::set_durable_contents(const path& raw, std::vector<std::byte> contents) {
  std::lock_guard lock(mu_);
  path p = norm(raw);
  for (path q = p.parent_path(); !q.empty() && q != q.root_path(); q = q.parent_path()) {
    live_dirs_.insert(q);
    durable_dirs_.insert(q);
  }
  auto it = durable_files_.find(p);
  std::shared_ptr<inode> node;
  if (it != durable_files_.end()) {
    node = it->second;
  } else {
    node = std::make_shared<inode>();
    inodes_.push_back(node);
    durable_files_[p] = node;
  }
  live_files_[p] = node;
  node->pending.clear();
  node->durable = std::move(contents);
  node->live = node->durable;
}

std::vector<std::filesystem::path> fault_file_system::durable_files() const {
  std::lock_guard lock(mu_);
  std::vector<path> out;
  for (const auto& [p, node] : durable_files_) out.push_back(p);
  return out;
}

std::error_code fault_file_system::export_to(const path& raw_from, const path& to) const {
  std::lock_guard lock(mu_);
  path from = norm(raw_from);
  std::error_code ec;
  std::filesystem::create_directories(to, ec);
  if (ec) return ec;
  auto under = [&](const path& p) -> std::optional<path> {
    auto rel = p.lexically_relative(from);
    if (rel.empty() || *rel.begin() == "..") return std::nullopt;
    return rel;
  };
  for (const auto& d : durable_dirs_) {
    if (auto rel = under(d)) {
      std::filesystem::create_directories(to / *rel, ec);
      if (ec) return ec;
    }
  }
  for (const auto& [p, node] : durable_files_) {
    auto rel = under(p);
    if (!rel) continue;
    std::ofstream out(to / *rel, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(node->durable.data()),
              static_cast<std::streamsize>(node->durable.size()));
    if (!out) return std::make_error_code(std::errc::io_error);
  }
  return {};
}

std::error_code fault_file_system::import_from(const path& from, const path& to) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(from, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> bytes(raw.size());
    std::memcpy(bytes.data(), raw.data(), raw.size());
    set_durable_contents(to / it->path().lexically_relative(from), std::move(bytes));
  }
  return ec;
}

}  // namespace tandem::test
