// The engine's public API. Everything it calls lives in broker/engine/ (README.md there maps
// the files): one file per frame family, and the queue / dispatch / redelivery core.
#include "broker/engine.h"

#include <fmt/format.h>

#include "broker/engine/impl.h"
#include "broker/log.h"

namespace tandem::broker {

using namespace detail;

engine::impl::impl(const engine_config& config, journal::message_store* store)
    : config_(config),
      store_(store),
      dedup_(config.dedup_window, config.dedup_max_producers, store),
      credentials_(std::make_shared<credential_checker>(config.users)),
      policies_(config.destination_policies) {
  if (config.authorization) authz_.emplace(*config.authorization);
  wall_ms_ = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  run_token_ = fmt::format("{:x}", wall_ms_());
}

engine::engine(const engine_config& config, journal::message_store* store) : impl_(std::make_unique<impl>(config, store)) {}

engine::~engine() = default;

void engine::set_login_service(std::shared_ptr<credential_checker> checker, offload_fn offload) {
  impl_->credentials_ = std::move(checker);
  impl_->offload_ = std::move(offload);
}

void engine::set_wall_clock(std::function<std::int64_t()> now_ms) { impl_->wall_ms_ = std::move(now_ms); }

void engine::recover() { impl_->recover(); }

session_id engine::open_session(session_sink& sink, const session_info& info) {
  auto s = std::make_unique<session>();
  s->id = impl_->next_session_++;
  s->sink = &sink;
  s->info = info;
  s->opened_at = std::chrono::system_clock::now();
  auto id = s->id;
  impl_->sessions_.emplace(id, std::move(s));
  ++impl_->connections_total_;
  return id;
}

void engine::on_frame(session_id id, stomp::frame&& frame) {
  auto* s = impl_->find_session(id);
  if (!s) return;
  ++s->frames_in;
  if (s->state == session_state::closing) return;  // after ERROR or DISCONNECT
  if (s->verifying_login) {
    // The reader pauses while the password is checked; a frame it had already parsed waits.
    s->held_for_login.push_back(std::move(frame));
  } else if (!s->parked.empty()) {
    // A SEND is waiting for space: everything after it waits too, in order.
    s->parked.push_back(std::move(frame));
  } else {
    impl_->handle_frame(*s, std::move(frame));
  }
  impl_->flush();
}

void engine::on_writable(session_id id) {
  auto* s = impl_->find_session(id);
  if (!s) return;
  s->backlogged = false;
  for (auto& [sid, sub] : s->subs) impl_->mark_consumer_dirty(*sub);
  impl_->flush();
}

void engine::close_session(session_id id) {
  auto it = impl_->sessions_.find(id);
  if (it == impl_->sessions_.end()) return;
  impl_->end_session_state(*it->second);
  impl_->advise_producers_gone(*it->second);
  if (impl_->advising() && it->second->state != session_state::awaiting_connect)
    impl_->advise_connection(*it->second, false);
  impl_->release_client_id(*it->second);
  impl_->blocked_.erase(id);
  impl_->sessions_.erase(it);
  impl_->flush();
}

void engine::announce_master(const master_change& change) {
  impl_->announce_master(change);
  impl_->flush();
}

void engine::tick(std::chrono::steady_clock::time_point now) {
  const auto now_ms = impl_->wall_ms_();
  impl_->expire_all(now_ms);
  impl_->for_each_queue([&](queue& q) { impl_->release_deferred(q, now_ms); });
  impl_->time_out_blocked(now);
  impl_->collect_inactive(now);
  if (auto news = impl_->dedup_.eviction_news(now)) log::warn("engine", *news);
  impl_->flush();
}

memory_budget& engine::memory() { return impl_->budget_; }

void engine::shutdown() { impl_->shutting_down_ = true; }

void engine::set_disk_full(std::optional<std::string> why) { impl_->disk_full_ = std::move(why); }

}  // namespace tandem::broker
