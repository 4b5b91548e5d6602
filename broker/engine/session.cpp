// A session's frames: which handler each client command goes to, and what a session holds
// until it ends (subscriptions, transactions, parked frames, its client-id).
#include <algorithm>

#include <fmt/format.h>

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
  if (!is_topic(*dest) && !is_queue(*dest))
    return failure{errc::unsupported_destination,
                   fmt::format("'{}' is not a destination: use /queue/NAME or /topic/NAME.", *dest)};
  return *dest;
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
}

}  // namespace tandem::broker
