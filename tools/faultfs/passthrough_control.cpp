// passthrough_control.cpp: what the control socket asks of a running passthrough (fail,
// freeze, crash, status). It runs on the control server's thread, not a FUSE worker, and
// changes what the operations in passthrough.cpp read (the gate, the power model, the lock
// table), under the lock order written at the top of passthrough.cpp.
#include <nlohmann/json.hpp>

#include "tools/faultfs/passthrough.h"

namespace tandem::faultfs {

std::string passthrough::crash() {
  {
    std::lock_guard g(state_mutex_);
    powered_.store(false);
    frozen_ = false;
    partial_freezes_.clear();
    ++crashes_;
  }
  state_changed_.notify_all();
  locks_.clear(EIO);
  std::unique_lock all(power_mutex_);  // no operation is half done from here on
  generation_.fetch_add(1);
  if (auto ec = model_.power_loss()) return "error crash: restoring the synced state failed: " + ec.message();
  return "ok";
}

std::string passthrough::status_json() {
  nlohmann::json j;
  {
    std::lock_guard g(state_mutex_);
    j["frozen"] = frozen_;
    auto partial = nlohmann::json::array();
    for (const auto& f : partial_freezes_) partial.push_back({{"ops", ops_to_string(f.ops)}, {"path", f.path_glob}});
    j["frozen_partly"] = partial;
    j["crashes"] = crashes_;
  }
  j["powered"] = powered_.load();
  j["locks_mode"] = options_.locks == lock_mode::daemon ? "daemon" : "kernel";
  j["lease_ms"] = locks_.lease().count();
  auto rules = nlohmann::json::array();
  for (const auto& r : rules_.list()) {
    rules.push_back({{"ops", ops_to_string(r.ops)}, {"error", r.error ? errno_name(r.error) : "none"},
                     {"delay_ms", r.delay.count()}, {"skip", r.skip}, {"count", r.count}, {"path", r.path_glob},
                     {"pid", r.pid}, {"matched", r.matched}, {"injected", r.injected}});
  }
  j["rules"] = rules;
  j["injected"] = rules_.injected();
  auto s = model_.stats();
  j["unsynced_files"] = s.unsynced_files;
  j["unsynced_bytes"] = s.unsynced_bytes;
  j["pending_names"] = s.pending_names;
  auto locks = nlohmann::json::array();
  const auto now = lock_table::clock::now();
  for (const auto& l : locks_.status(now)) {
    locks.push_back({{"ino", l.file.ino}, {"type", l.lock.type == F_WRLCK ? "write" : "read"}, {"pid", l.lock.pid},
                     {"start", l.lock.start}, {"end", l.lock.end == UINT64_MAX ? nlohmann::json("eof") : nlohmann::json(l.lock.end)},
                     {"expired", l.expired}});
  }
  j["locks"] = locks;
  j["revocations"] = locks_.revocations();
  j["operations"] = operations_.load();
  return j.dump();
}

std::string passthrough::execute(const control_request& request) {
  if (const auto* f = std::get_if<fail_request>(&request)) {
    rules_.add(f->rule);
    return "ok";
  }
  if (const auto* f = std::get_if<freeze_request>(&request)) {
    std::lock_guard g(state_mutex_);
    partial_freezes_.push_back(*f);
    return "ok";
  }
  if (const auto* l = std::get_if<lease_request>(&request)) {
    if (options_.locks != lock_mode::daemon) return "error lease: locks are arbitrated by the kernel (--locks kernel)";
    locks_.set_lease(l->lease);
    return "ok";
  }
  switch (std::get<simple_request>(request).what) {
    case simple_request::verb::clear:
      rules_.clear();
      return "ok";
    case simple_request::verb::freeze: {
      std::lock_guard g(state_mutex_);
      frozen_ = true;
      return "ok";
    }
    case simple_request::verb::thaw: {
      {
        std::lock_guard g(state_mutex_);
        frozen_ = false;
        partial_freezes_.clear();
        locks_.restart_leases(lock_table::clock::now());
      }
      state_changed_.notify_all();
      return "ok";
    }
    case simple_request::verb::crash:
      return crash();
    case simple_request::verb::power_on: {
      {
        std::lock_guard g(state_mutex_);
        powered_.store(true);
      }
      state_changed_.notify_all();
      return "ok";
    }
    case simple_request::verb::status:
      return "ok " + status_json();
  }
  return "error unknown request";
}

}  // namespace tandem::faultfs
