// tandem::journal::pg::lease: the election of one master per PostgreSQL store, in the
// database itself (the row tandem_lease, schema.h). docs/postgresql.md has the design and
// its failure cases; in short:
//
//   acquire:  UPDATE tandem_lease SET epoch = epoch + 1, holder = me, expires_at = now() +
//             lease WHERE released OR expires_at < now() RETURNING epoch   (poll until a row)
//   renew:    every lease/3, UPDATE ... SET expires_at = now() + lease WHERE epoch = mine
//             zero rows: deposed (a newer epoch exists) -> on_lost
//   release:  UPDATE ... SET released = true WHERE epoch = mine (a clean stop: no wait)
//
// Expiry is judged by the database's clock alone (now() on the primary), so broker clocks
// never matter. The lease is only for liveness: SAFETY comes from the fence, which every
// write transaction of the store runs first (tandem_fence: epoch = mine, or abort), so a
// master that was paused past its lease cannot commit anything once a successor bumped the
// epoch, and a successor's bump waits for the row lock of any write transaction in flight,
// so it recovers everything the old master committed.
//
// A master that cannot renew (database unreachable, failover in progress) for a whole
// lease calls on_lost: by then a slave may have taken over. Connections carry TCP
// keepalives and a user timeout of `lease` (connection.h), so a dead server is noticed
// within about one lease.
//
// Threads: acquire() blocks its caller (the broker's election thread); cancel() from any
// thread ends it with errc::closed. The renewal runs on a thread of its own, started by
// start_renewing(); on_lost runs there, once, and must only post. release() and the
// destructor from the owner thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "journal/pg/connection.h"

namespace tandem::journal::pg {

struct lease_options {
  std::string conninfo;
  std::string broker_name;
  std::string client_url;
  std::chrono::milliseconds duration{5000};       // how long a holder stays master unrenewed
  std::chrono::milliseconds poll_interval{500};   // a slave's tries
};

// The row as a slave or tandemctl sees it.
struct lease_holder {
  std::uint64_t epoch = 0;
  std::string broker_name, host, client_url;
  long long pid = 0;
  bool released = true;
  long long expires_in_ms = 0;  // negative: expired
};

class lease {
 public:
  explicit lease(lease_options o);
  ~lease();
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;

  // Blocks until this process holds the lease; returns the new epoch. `on_wait` runs
  // (on the caller's thread) the first time the lease is found held by someone else, and
  // again whenever the holder changes; `on_error` when the database cannot be reached (the
  // wait goes on). Errors: errc::closed (cancel()), errc::not_a_store (no schema).
  std::optional<std::uint64_t> acquire(const std::function<void(const lease_holder&)>& on_wait,
                                       const std::function<void(const std::string&)>& on_error, std::error_code& ec);
  void cancel();

  // Starts the renewal thread for `epoch`. on_lost(reason) runs once, on that thread.
  void start_renewing(std::function<void(const std::string&)> on_lost);
  // Stops renewing and marks the lease released (a clean stop). Errors: io_error.
  std::error_code release(std::string& detail);
  std::uint64_t epoch() const { return epoch_; }

  // One read of the row (any connection). nullopt and `error` when unreadable.
  static std::optional<lease_holder> query(connection& c, std::string& error);

 private:
  void renew_loop();
  bool sleep_for(std::chrono::milliseconds d);  // false when cancelled / stopping

  lease_options opts_;
  std::optional<connection> conn_;
  std::uint64_t epoch_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::function<void(const std::string&)> on_lost_;
  std::thread renewer_;
};

}  // namespace tandem::journal::pg
