#include "lockmgr/lock_manager.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "unknown"
#endif

namespace tandem::lockmgr {
namespace {

// CLOCK_BOOTTIME, not steady_clock (CLOCK_MONOTONIC): monotonic time stops while the
// machine is suspended, and a master that slept through a suspend must not trust a check
// made before it.
std::int64_t boottime_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string describe(const file_identity& id) {
  return "dev " + std::to_string(id.dev) + " inode " + std::to_string(id.ino);
}

}  // namespace

const char* to_string(wait_mode m) noexcept {
  switch (m) {
    case wait_mode::blocking: return "blocking";
    case wait_mode::polling: return "polling";
  }
  return "unknown";
}

const char* to_string(loss_reason r) noexcept {
  switch (r) {
    case loss_reason::lock_io_error: return "lock_io_error";
    case loss_reason::lock_not_held: return "lock_not_held";
    case loss_reason::lock_file_removed: return "lock_file_removed";
    case loss_reason::lock_file_replaced: return "lock_file_replaced";
    case loss_reason::epoch_changed: return "epoch_changed";
    case loss_reason::epoch_unreadable: return "epoch_unreadable";
  }
  return "unknown";
}

result<std::unique_ptr<lock_manager>> lock_manager::open(options opts) {
  fs::file_system& fs = opts.file_system ? *opts.file_system : fs::posix_file_system();
  if (opts.check_interval <= std::chrono::milliseconds(0) || opts.poll_interval <= std::chrono::milliseconds(0))
    return std::make_error_code(std::errc::invalid_argument);
  auto lock = lock_file::open(fs, opts.dir);
  if (!lock) return lock.error();
  auto kind = detect_fs_kind(lock.value()->native_handle());
  if (!kind) return kind.error();
  auto decision = decide_takeover_delay(kind.value(), opts.check_interval, opts.takeover_delay);
  if (opts.software_version.empty()) opts.software_version = TANDEM_VERSION;
  return std::unique_ptr<lock_manager>(
      new lock_manager(std::move(opts), fs, std::move(lock).value(), std::move(decision)));
}

lock_manager::lock_manager(options opts, fs::file_system& fs, std::unique_ptr<lock_file> lock,
                           takeover_decision takeover)
    : opts_(std::move(opts)),
      fs_(fs),
      lock_(std::move(lock)),
      takeover_(std::move(takeover)),
      self_(this_process()),
      interrupter_(opts_.wake_signal) {}

lock_manager::~lock_manager() { stop_watchdog(); }

void lock_manager::cancel() noexcept { interrupter_.cancel(); }

bool lock_manager::is_master() const noexcept { return state_.load() == state::master; }

std::optional<loss> lock_manager::lost() const {
  std::lock_guard g(lost_mutex_);
  return loss_;
}

std::error_code lock_manager::wait_for_lock() {
  if (opts_.mode == wait_mode::blocking) return lock_->wait(interrupter_);
  if (!interrupter_.arm()) return make_error_code(errc::cancelled);
  std::error_code ec;
  for (;;) {
    ec = lock_->try_lock();
    if (ec != std::errc::resource_unavailable_try_again) break;
    if (!interrupter_.sleep_for(opts_.poll_interval)) {
      ec = make_error_code(errc::cancelled);
      break;
    }
  }
  interrupter_.disarm();
  if (!ec && interrupter_.cancelled()) {
    lock_->unlock();
    ec = make_error_code(errc::cancelled);
  }
  return ec;
}

result<acquisition> lock_manager::acquire() {
  state before = state_.load();
  if ((before != state::idle && before != state::released) ||
      !state_.compare_exchange_strong(before, state::acquiring))
    return make_error_code(errc::busy);
  auto give_up = [&](std::error_code ec, bool unlock) {
    if (unlock) {
      lock_taken_.store(false);
      lock_->unlock();
    }
    state_.store(before);
    return ec;
  };

  acquisition a;
  a.takeover = takeover_;
  a.fs_kind = takeover_.fs.name;
  auto t0 = std::chrono::steady_clock::now();
  if (opts_.verify_exclusion) (void)lock_->open_exclusion_probe(fs_);  // else opened after the wait
  if (auto ec = wait_for_lock()) return give_up(ec, false);
  lock_taken_.store(true);
  a.waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);

  // From here on we hold the lock; every failure gives it back.
  if (opts_.verify_exclusion) {
    if (auto ec = lock_->verify_exclusion(fs_)) return give_up(ec, true);
  }
  auto identity = lock_->identity_of_descriptor();
  if (!identity) return give_up(identity.error(), true);
  held_identity_ = identity.value();

  const auto epoch_path = opts_.dir / epoch_file_name;
  const auto holder_path = opts_.dir / holder_file_name;
  std::optional<std::uint64_t> stored_epoch;
  auto epoch_text = fs::read_file(fs_, epoch_path);
  if (epoch_text) {
    auto parsed = parse_epoch(epoch_text.value());
    if (!parsed) return give_up(parsed.error(), true);
    stored_epoch = parsed.value();
  } else if (epoch_text.error() != std::errc::no_such_file_or_directory) {
    return give_up(epoch_text.error(), true);
  }
  bool holder_exists = false;
  auto holder_text = fs::read_file(fs_, holder_path);
  if (holder_text) {
    holder_exists = true;
    if (auto parsed = parse_holder(holder_text.value())) a.previous = parsed.value();
  } else if (holder_text.error() != std::errc::no_such_file_or_directory) {
    return give_up(holder_text.error(), true);
  }
  // A new store (neither file) has no predecessor to wait for. Otherwise only a holder
  // record that says so proves a clean release; a missing or unreadable one (a crash between
  // the epoch and holder writes, a hand edit) counts as unclean.
  // A clean record of an OLDER epoch than DIR/epoch is not a clean end either: its successor
  // stored the epoch and died before (or while) writing its own holder record.
  if (!stored_epoch && !holder_exists) {
    a.previous_released_cleanly = true;
  } else {
    a.previous_released_cleanly = a.previous && a.previous->clean_release &&
                                  (!stored_epoch || a.previous->epoch == *stored_epoch);
  }

  // The holder record's epoch is a floor too: if someone deleted DIR/epoch, restarting at 1
  // would reuse epochs that are already stamped in the journal.
  std::uint64_t last = std::max(stored_epoch.value_or(0), a.previous ? a.previous->epoch : 0);
  if (last == std::numeric_limits<std::uint64_t>::max()) return give_up(make_error_code(errc::bad_epoch_file), true);
  a.epoch = last + 1;
  auto encoded_epoch = encode_epoch(a.epoch);

  holder_record record;
  record.broker_name = opts_.broker_name;
  record.host = self_.host.empty() ? "unknown" : self_.host;
  record.pid = static_cast<std::int64_t>(::getpid());
  record.epoch = a.epoch;
  record.acquired_at = utc_now_iso8601();
  record.client_url = opts_.client_url;
  record.software_version = opts_.software_version;
  record.lease_ms = static_cast<std::uint64_t>(lease().count());
  record.lock_dev = static_cast<std::uint64_t>(held_identity_.dev);
  record.lock_ino = static_cast<std::uint64_t>(held_identity_.ino);
  record.admin_url = opts_.admin_url;
  record.mount_client_id = opts_.mount_client_id;
  record.boot_id = self_.boot_id;
  record.pid_ns = self_.pid_ns;
  record.pid_start = self_.start_ticks;
  auto encoded_holder = encode_holder(record);
  // Epoch first, then the holder record, with ONE directory sync for both (a takeover's
  // critical path: every sync counts). Both are durable before we read or write the journal.
  // A crash in between leaves the new epoch with the old record (an unclean end, see above)
  // or neither, when nothing was written under the new epoch yet.
  if (auto ec = fs::write_files_atomically(fs_, {{epoch_path, std::as_bytes(std::span(encoded_epoch))},
                                                 {holder_path, std::as_bytes(std::span(encoded_holder))}}))
    return give_up(ec, true);
  record_ = record;
  epoch_.store(a.epoch);
  epoch_file_text_ = std::move(encoded_epoch);

  a.predecessor_lock_elsewhere = !a.previous_released_cleanly && a.previous && a.previous->lock_ino != 0 &&
                                  (a.previous->lock_dev != static_cast<std::uint64_t>(held_identity_.dev) ||
                                   a.previous->lock_ino != static_cast<std::uint64_t>(held_identity_.ino));
  if (auto wait = predecessor_wait(a); wait > std::chrono::milliseconds(0)) {
    // Cancelled here, holder.json still says "not released": right, because the old master
    // may still be alive, and the next candidate must wait for it as we did.
    if (!interrupter_.arm()) return give_up(make_error_code(errc::cancelled), true);
    bool waited = wait_for_predecessor(a, wait);
    interrupter_.disarm();
    if (!waited) return give_up(make_error_code(errc::cancelled), true);
  }

  {
    std::lock_guard g(lost_mutex_);
    loss_.reset();
    on_lost_called_ = false;
  }
  last_ok_ns_.store(0);  // a check from an earlier mastership vouches for nothing
  state_.store(state::master);
  if (!opts_.check_before_acquire_returns) return a;  // the first fence_check() checks
  if (auto l = run_check(false)) {
    declare_lost(*l);
    lock_taken_.store(false);
    lock_->unlock();
    return make_error_code(errc::lost_mastership);
  }
  return a;
}

// How long the new master waits, epoch already written, before its first journal write:
// long enough for an unclean predecessor that may still run to learn it was deposed (its
// watchdog and its per-group confirm() read the new epoch) and stop. A clean release needs
// nothing. On the same inode of a local file system the kernel freed the lock only because
// the predecessor's descriptor is gone: nothing either, unless configured. Otherwise the
// predecessor's OWN lease counts (holder.json), never ours: a taker with a short check
// interval must not cut short a holder with a long one. The wait ends early when the
// predecessor ran on this host and is proven gone (wait_for_predecessor).
std::chrono::milliseconds lock_manager::predecessor_wait(const acquisition& a) const {
  using std::chrono::milliseconds;
  if (a.previous_released_cleanly) return milliseconds(0);
  milliseconds wait = takeover_.delay;
  const milliseconds their_lease =
      a.previous && a.previous->lease_ms ? milliseconds(a.previous->lease_ms) : lease();
  // A configured delay may lengthen this wait, never shorten it below the lease where the
  // lock proves nothing (fs_kind.h warns about such a setting at start).
  if (a.predecessor_lock_elsewhere || takeover_.fs.shared) wait = std::max(wait, their_lease);
  return wait;
}

// Waits `wait` for an unclean predecessor, or less: until the predecessor is proven gone
// when it ran on this host (holder_process.h: a process that no longer exists appends
// nothing), or until our own fence command has cut it off (options::predecessor_fenced). On
// CephFS the lock moves a few ms before `client evict` returns, so the fence's success may
// come during the wait: the holder is watched in slices, and the fence asked between them.
// A delay set by configuration is still waited in full: the operator asked for it.
// REQUIRES: interrupter_ armed. False when cancelled.
bool lock_manager::wait_for_predecessor(acquisition& a, std::chrono::milliseconds wait) {
  using namespace std::chrono;
  constexpr milliseconds slice{20};
  const auto t0 = steady_clock::now();
  auto elapsed = [&] { return duration_cast<milliseconds>(steady_clock::now() - t0); };
  auto fenced = [&] { return a.previous && opts_.predecessor_fenced && opts_.predecessor_fenced(a.previous->epoch); };
  auto keep_waiting = [this] { return !interrupter_.cancelled(); };
  holder_observation seen;
  if (!a.previous) seen.why = "no readable holder record";
  for (;;) {
    if (fenced()) {
      seen = {holder_state::fenced, "cut off by this broker's fence command (epoch " + std::to_string(a.previous->epoch) + ")"};
      break;
    }
    const milliseconds left = wait - elapsed();
    if (left <= milliseconds(0)) break;
    const milliseconds step = opts_.predecessor_fenced ? std::min(left, slice) : left;
    if (a.previous) {
      seen = await_holder_exit(*a.previous, self_, step, keep_waiting);
      if (interrupter_.cancelled()) return false;
      if (seen.state == holder_state::gone) break;
      // An unobservable holder returns at once: sleep the step instead.
      if (seen.state == holder_state::unobservable && !interrupter_.sleep_for(step)) return false;
    } else if (!interrupter_.sleep_for(step)) {
      return false;
    }
  }
  a.predecessor = seen.state;
  a.predecessor_why = seen.why;
  const bool proven = seen.state == holder_state::gone || seen.state == holder_state::fenced;
  milliseconds floor = proven ? opts_.takeover_delay.value_or(milliseconds(0)) : wait;
  const milliseconds waited = elapsed();
  if (waited < floor && !interrupter_.sleep_for(floor - waited)) return false;
  a.takeover_delay = std::max(waited, floor);
  return true;
}

bool lock_manager::fresh() const noexcept {
  auto lease_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(lease()).count();
  return boottime_ns() - last_ok_ns_.load(std::memory_order_acquire) < lease_ns;
}

std::optional<loss> lock_manager::check_locked() {
  auto fault = [&](check_step step) -> std::error_code {
    return opts_.check_fault ? opts_.check_fault(step) : std::error_code{};
  };
  const std::string lock_path = lock_->path().string();

  if (auto ec = fault(check_step::lock_descriptor))
    return loss{loss_reason::lock_io_error, ec, "I/O on the lock descriptor of " + lock_path + " failed: " + ec.message()};
  auto ours = lock_->identity_of_descriptor();
  if (!ours)
    return loss{loss_reason::lock_io_error, ours.error(), "fstat of the lock descriptor of " + lock_path + " failed: " + ours.error().message()};
  auto other = lock_->locked_by_other();
  if (!other)
    return loss{loss_reason::lock_io_error, other.error(), "F_OFD_GETLK on " + lock_path + " failed: " + other.error().message()};
  if (other.value())
    return loss{loss_reason::lock_not_held, {}, "another open file holds a lock on " + lock_path + ": ours is gone"};
  if (auto ec = lock_->probe_io())
    return loss{loss_reason::lock_io_error, ec, "read of the lock descriptor of " + lock_path + " failed: " + ec.message()};

  if (auto l = check_lock_path(ours.value())) return l;
  return check_epoch();
}

std::optional<loss> lock_manager::check_lock_path(const file_identity& ours) {
  const std::string lock_path = lock_->path().string();
  if (auto ec = opts_.check_fault ? opts_.check_fault(check_step::lock_path) : std::error_code{})
    return loss{loss_reason::lock_io_error, ec, "stat of " + lock_path + " failed: " + ec.message()};
  auto now = lock_->identity_of_path();
  if (!now) {
    if (now.error() == std::errc::no_such_file_or_directory)
      return loss{loss_reason::lock_file_removed, now.error(), lock_path + " no longer exists"};
    return loss{loss_reason::lock_io_error, now.error(), "stat of " + lock_path + " failed: " + now.error().message()};
  }
  if (!(now.value() == held_identity_))
    return loss{loss_reason::lock_file_replaced, {},
                lock_path + " was replaced: it is now " + describe(now.value()) + ", we lock " + describe(held_identity_)};
  // A lock on an unlinked inode guards nothing: a new DIR/lock can be created and locked.
  if (ours.links == 0)
    return loss{loss_reason::lock_file_removed, {}, lock_path + " was unlinked (the inode we lock has no name)"};
  return std::nullopt;
}

std::optional<loss> lock_manager::check_epoch() {
  if (auto l = epoch_check_fault()) return l;
  return read_and_check_epoch();
}

// One call to the file system less per journal group than check_epoch (no size lookup:
// a FUSE or NFS round trip each, docs/failover.md section 1): the file is read for exactly
// as many bytes as ours has and compared with it. Any other valid epoch differs within those
// bytes (its digits, then a newline), and a failed open or read, or any difference, goes
// to check_epoch's full read, which says what is wrong. Damage past those bytes of an
// otherwise unchanged file is left to the watchdog's full check.
std::optional<loss> lock_manager::confirm_epoch() {
  if (auto l = epoch_check_fault()) return l;
  const std::string& ours = epoch_file_text_;
  if (auto f = fs_.open(opts_.dir / epoch_file_name, fs::open_mode::read_only)) {
    std::string now(ours.size(), '\0');
    auto n = f.value()->read_at(std::as_writable_bytes(std::span(now)), 0);
    if (n && n.value() == ours.size() && now == ours) return std::nullopt;
  }
  return read_and_check_epoch();
}

std::optional<loss> lock_manager::epoch_check_fault() {
  const auto ec = opts_.check_fault ? opts_.check_fault(check_step::epoch) : std::error_code{};
  if (!ec) return std::nullopt;
  return loss{loss_reason::epoch_unreadable, ec, "cannot read " + (opts_.dir / epoch_file_name).string() + ": " + ec.message()};
}

std::optional<loss> lock_manager::read_and_check_epoch() {
  const auto epoch_path = (opts_.dir / epoch_file_name).string();
  auto text = fs::read_file(fs_, opts_.dir / epoch_file_name);
  if (!text)
    return loss{loss_reason::epoch_unreadable, text.error(), "cannot read " + epoch_path + ": " + text.error().message()};
  auto stored = parse_epoch(text.value());
  if (!stored)
    return loss{loss_reason::epoch_unreadable, stored.error(), epoch_path + " is malformed: " + stored.error().message()};
  if (stored.value() != epoch_.load())
    return loss{loss_reason::epoch_changed, {},
                epoch_path + " holds epoch " + std::to_string(stored.value()) + ", ours is " + std::to_string(epoch_.load()) +
                    ": a newer master exists"};
  return std::nullopt;
}

std::optional<loss> lock_manager::run_check(bool only_if_stale) {
  std::lock_guard g(check_mutex_);
  if (state_.load() != state::master) return std::nullopt;  // the caller looks at state_
  if (only_if_stale && fresh()) return std::nullopt;        // another thread just checked
  // The check vouches for the moment it STARTED: if this thread is paused half-way, the
  // reads done before the pause are old by the time it finishes.
  auto start = boottime_ns();
  auto l = check_locked();
  auto took = static_cast<std::uint64_t>(std::max<std::int64_t>(0, boottime_ns() - start));
  stats_.checks.fetch_add(1, std::memory_order_relaxed);
  stats_.nanoseconds.fetch_add(took, std::memory_order_relaxed);
  if (took > stats_.max_nanoseconds.load(std::memory_order_relaxed)) stats_.max_nanoseconds.store(took, std::memory_order_relaxed);
  if (l) stats_.failures.fetch_add(1, std::memory_order_relaxed);
  if (l) {
    state_.store(state::lost);  // before the mutex opens: no fence may pass from now on
    return l;
  }
  auto prev = last_ok_ns_.load();
  while (prev < start && !last_ok_ns_.compare_exchange_weak(prev, start)) {
  }
  return std::nullopt;
}

void lock_manager::declare_lost(loss l) {
  lost_callback cb;
  std::string message;
  {
    std::lock_guard g(lost_mutex_);
    state_.store(state::lost);
    if (loss_) return;
    loss_ = l;
    if (on_lost_ && !on_lost_called_) {
      on_lost_called_ = true;
      cb = on_lost_;
      message = std::string(to_string(l.reason)) + ": " + l.message;
    }
  }
  // Outside the mutexes: the callback may call fence_check() or release().
  if (cb) cb(message);
}

std::error_code lock_manager::fence_check() {
  auto s = state_.load();
  if (s == state::lost) return make_error_code(errc::lost_mastership);
  if (s != state::master) return make_error_code(errc::not_master);
  if (fresh()) return {};
  if (auto l = run_check(true)) {
    declare_lost(*l);
    return make_error_code(errc::lost_mastership);
  }
  s = state_.load();
  if (s == state::master) return {};
  return make_error_code(s == state::lost ? errc::lost_mastership : errc::not_master);
}

std::error_code lock_manager::confirm() {
  auto s = state_.load();
  if (s == state::lost) return make_error_code(errc::lost_mastership);
  if (s != state::master) return make_error_code(errc::not_master);
  // No check_mutex_: the watchdog's slower probes must not delay a group, and the two
  // share nothing but state_ (declare_lost is safe from any thread).
  const auto start = boottime_ns();
  auto l = check_lock_path(held_identity_);
  if (!l) l = confirm_epoch();
  stats_.confirms.fetch_add(1, std::memory_order_relaxed);
  stats_.confirm_nanoseconds.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, boottime_ns() - start)),
                                       std::memory_order_relaxed);
  if (l) {
    declare_lost(*l);
    return make_error_code(errc::lost_mastership);
  }
  s = state_.load();  // the watchdog may have found a loss meanwhile
  if (s == state::master) return {};
  return make_error_code(s == state::lost ? errc::lost_mastership : errc::not_master);
}

std::error_code lock_manager::check_now() {
  if (auto l = run_check(false)) {
    declare_lost(*l);
    return make_error_code(errc::lost_mastership);
  }
  auto s = state_.load();
  if (s == state::master) return {};
  return make_error_code(s == state::lost ? errc::lost_mastership : errc::not_master);
}

std::error_code lock_manager::start_watchdog(lost_callback on_lost) {
  lost_callback call_now;
  std::string message;
  {
    std::lock_guard g(lost_mutex_);
    on_lost_ = std::move(on_lost);
    if (loss_ && !on_lost_called_ && on_lost_) {
      on_lost_called_ = true;
      call_now = on_lost_;
      message = std::string(to_string(loss_->reason)) + ": " + loss_->message;
    }
  }
  if (call_now) {
    call_now(message);
    return make_error_code(errc::lost_mastership);
  }
  if (state_.load() != state::master) return make_error_code(errc::not_master);
  std::lock_guard g(watchdog_mutex_);
  if (watchdog_.joinable()) return {};
  watchdog_stop_ = false;
  watchdog_ = std::thread([this] { watchdog_loop(); });
  return {};
}

void lock_manager::watchdog_loop() {
  std::unique_lock lk(watchdog_mutex_);
  while (!watchdog_stop_) {
    if (watchdog_cv_.wait_for(lk, opts_.check_interval, [this] { return watchdog_stop_; })) break;
    lk.unlock();
    auto l = run_check(false);
    if (l) {
      declare_lost(*l);
      return;
    }
    if (state_.load() != state::master) return;
    lk.lock();
  }
}

void lock_manager::stop_watchdog() {
  {
    std::lock_guard g(watchdog_mutex_);
    watchdog_stop_ = true;
  }
  watchdog_cv_.notify_all();
  if (!watchdog_.joinable()) return;
  // release() from inside on_lost runs on the watchdog thread, which is about to return.
  if (watchdog_.get_id() == std::this_thread::get_id()) {
    watchdog_.detach();
  } else {
    watchdog_.join();
  }
}

std::error_code lock_manager::release() { return give_up_lock(true); }

std::error_code lock_manager::release_unclean() { return give_up_lock(false); }

std::error_code lock_manager::give_up_lock(bool mark_clean) {
  auto s = state_.load();
  if (s != state::master && s != state::lost) return make_error_code(errc::not_master);
  stop_watchdog();
  if (s == state::master) {
    // From here fence_check() answers not_master: nothing is acknowledged while we let go.
    std::optional<loss> l;
    {
      std::lock_guard g(check_mutex_);
      l = check_locked();
      state_.store(l ? state::lost : state::released);
    }
    if (l) declare_lost(*l);
  }
  if (state_.load() == state::lost) {
    // holder.json may already be the new master's: leave it alone.
    lock_taken_.store(false);
    lock_->unlock();
    return make_error_code(errc::lost_mastership);
  }
  if (!mark_clean) {
    // holder.json keeps clean_release false, as acquire() wrote it and made it durable.
    lock_taken_.store(false);
    return lock_->unlock();
  }
  holder_record record = record_;
  record.clean_release = true;
  record.released_at = utc_now_iso8601();
  auto encoded = encode_holder(record);
  // If marking fails we still unlock: the next master then sees an unclean end and waits
  // the takeover delay, which is merely slower, never unsafe. For the same reason the mark
  // needs no fsync (two of them, on the handover's critical path): it must be visible to
  // the next master, which the rename makes it before we unlock; if a power loss takes it
  // (or leaves holder.json empty), the record reads as unclean again: slower, never unsafe.
  auto ec = fs::replace_file_visibly(fs_, opts_.dir / holder_file_name, std::as_bytes(std::span(encoded)));
  lock_taken_.store(false);
  auto unlock_ec = lock_->unlock();
  return ec ? ec : unlock_ec;
}

}  // namespace tandem::lockmgr
