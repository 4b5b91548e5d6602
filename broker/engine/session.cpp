// A session's frames: which handler each client command goes to, and what a session holds
// until it ends (subscriptions, transactions, parked frames, its client-id).
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/destinations.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/stomp/utf8.h"

namespace tandem::broker {

using namespace detail;

session* engine::impl::find_session(session_id id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void engine::impl::handle_frame(session& s, stomp::frame&& f) {
  auto cmd = stomp::command_from_name(f.command);
  if (!cmd || !stomp::is_client_command(*cmd))
    return fail(s, {errc::unknown_command, fmt::format("'{}' is not a STOMP client frame.", f.command)}, &f);
  if (s.state == session_state::awaiting_connect) {
    if (*cmd == stomp::command::connect || *cmd == stomp::command::stomp) {
      if (!s.login_checked && f.get("login")) return check_login(s, std::move(f));
      return on_connect(s, f);
    }
    return fail(
        s, {errc::not_connected, fmt::format("{} before CONNECT: the first frame must be CONNECT or STOMP.", f.command)},
        &f);
  }
  switch (*cmd) {
    case stomp::command::connect:
    case stomp::command::stomp:
      return fail(s, {errc::already_connected, "A second CONNECT on one connection is not allowed."}, &f);
    case stomp::command::send: return on_send(s, std::move(f));
    case stomp::command::subscribe: return on_subscribe(s, f);
    case stomp::command::unsubscribe: return on_unsubscribe(s, f);
    case stomp::command::ack: return on_ack(s, f, false);
    case stomp::command::nack: return on_ack(s, f, true);
    case stomp::command::begin: return on_begin(s, f);
    case stomp::command::commit: return on_commit(s, f);
    case stomp::command::abort: return on_abort(s, f);
    case stomp::command::disconnect: return on_disconnect(s, f);
    default: return;  // server commands were refused above
  }
}

result<std::string_view> engine::impl::checked_destination(const stomp::frame& f) const {
  auto dest = f.get("destination");
  if (!dest) return failure{errc::missing_destination, fmt::format("{} needs a destination header.", f.command)};
  if (!stomp::valid_utf8(*dest))
    return failure{errc::unsupported_destination,
                   fmt::format("The destination '{}' is not valid UTF-8 (invalid bytes shown as \\xNN).", stomp::printable_utf8(*dest))};
  if (dest->size() > config_.max_destination_name_bytes)
    return failure{errc::unsupported_destination,
                   fmt::format("The destination name has {} bytes; max_destination_name_bytes is {}.", dest->size(),
                               config_.max_destination_name_bytes)};
  for (auto part : split_composite(*dest))
    if (!is_topic(part) && !is_queue(part) && !is_local_temp(part))
      return failure{errc::unsupported_destination,
                     fmt::format("'{}' is not a destination: use /queue/NAME, /topic/NAME, /temp-queue/NAME or "
                                 "/temp-topic/NAME.",
                                 part)};
  return *dest;
}

std::string engine::impl::temp_token(const session& s) const {
  return fmt::format("ID:{}-{}-{}", config_.broker_name, run_token_, s.id);
}

result<std::string> engine::impl::resolve_destination(session& s, std::string_view dest, bool consume) {
  if (is_local_temp(dest)) {
    auto global = global_temp_name(dest, temp_token(s));
    if (std::find(s.temp_destinations.begin(), s.temp_destinations.end(), global) == s.temp_destinations.end()) {
      s.temp_destinations.push_back(global);
      if (is_queue(global)) {
        auto& q = get_queue(global);
        q.temp_owner = s.id;
        q.temp_local = std::string(dest);
      } else {
        get_topic(global);
      }
    }
    return global;
  }
  if (is_temporary(dest)) {
    bool exists = is_queue(dest) ? queues_.contains(dest) : topics_.contains(dest);
    if (!exists)
      return failure{errc::no_such_destination,
                     fmt::format("The temporary destination '{}' does not exist (its connection closed).", dest)};
    if (consume && std::find(s.temp_destinations.begin(), s.temp_destinations.end(), dest) == s.temp_destinations.end())
      return failure{errc::not_owner,
                     fmt::format("'{}' belongs to another connection: only its own connection may subscribe.", dest)};
  }
  return std::string(dest);
}

// A temporary destination dies with its connection: its pending messages (never journaled)
// are dropped. Its consumers are the owner's own subscriptions, already gone.
void engine::impl::delete_temp_destinations(session& s) {
  for (const auto& name : s.temp_destinations) {
    if (auto it = queues_.find(name); it != queues_.end()) {
      auto& q = *it->second;
      unmark_dirty(q);
      for (auto* c : q.consumers) c->q = nullptr;  // none expected: consumers are the owner's
      memory_bytes_ -= std::min(memory_bytes_, q.bytes);
      queues_.erase(it);
      if (advising()) advise_destination(name, false);
    }
    if (topics_.erase(name) && advising()) advise_destination(name, false);
    wildcard_topics_.erase(name);
  }
  s.temp_destinations.clear();
}

void engine::impl::release_client_id(session& s) {
  if (s.client_id.empty()) return;
  auto c = client_ids_.find(s.client_id);
  if (c != client_ids_.end() && c->second == s.id) client_ids_.erase(c);
}

void engine::impl::end_session_state(session& s) {
  for (auto& [name, tx] : s.txs) memory_bytes_ -= std::min(memory_bytes_, tx.bytes);
  // Unacked deliveries (acked inside an open transaction or not) all go back with their
  // subscriptions: the transactions die with the session.
  s.txs.clear();
  while (!s.subs.empty()) remove_subscription(s, *s.subs.begin()->second);
  s.parked.clear();
  delete_temp_destinations(s);
}

}  // namespace tandem::broker
