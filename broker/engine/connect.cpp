// CONNECT / STOMP (version and heart-beat negotiation, authentication, client-id) and
// DISCONNECT: the start and the orderly end of a session.
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/auth.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/stomp/header_values.h"

namespace tandem::broker {

using namespace detail;

namespace {

// The server header of CONNECTED: keep in step with project(VERSION) in CMakeLists.txt.
constexpr std::string_view server_version = "0.1.0";

}  // namespace

void engine::impl::on_connect(session& s, stomp::frame& f) {
  auto version = stomp::choose_version(f.get("accept-version"));
  if (!version)
    return fail(s,
                {errc::unsupported_version, fmt::format("Supported protocol versions are {}; the client offered '{}'.",
                                                        stomp::supported_versions, header_or(f, "accept-version"))},
                &f);
  stomp::heart_beat theirs{};
  if (auto hb = f.get("heart-beat"); hb && version.value() != stomp::version::v1_0) {
    auto parsed = stomp::parse_heart_beat(*hb);
    if (!parsed) return fail(s, {errc::bad_heart_beat, fmt::format("heart-beat '{}' is not '<ms>,<ms>'.", *hb)}, &f);
    theirs = parsed.value();
  }
  if (auto ok = authenticate(s, f); !ok) {
    ++auth_failures_;
    return fail(s, std::move(ok).error(), &f);
  }
  if (auto cid = f.get("client-id"); cid && !cid->empty()) {
    // ActiveMQ's InvalidClientIDException: two live connections must not share a durable
    // subscriber identity.
    if (client_ids_.contains(std::string(*cid)))
      return fail(s, {errc::client_id_in_use, fmt::format("client-id '{}' is in use by another connection.", *cid)},
                  &f);
    s.client_id = std::string(*cid);
    client_ids_.emplace(s.client_id, s.id);
  }

  s.version = version.value();
  s.state = session_state::connected;
  s.sink->set_version(stomp::version_name(s.version));

  stomp::frame connected;
  connected.command = "CONNECTED";
  connected.add("version", std::string(stomp::version_name(s.version)));
  connected.add("server", fmt::format("Tandem/{}", server_version));
  connected.add("session", fmt::format("{}-{}", config_.broker_name, s.id));
  if (s.version != stomp::version::v1_0) {
    stomp::heart_beat ours{config_.heartbeat_send, config_.heartbeat_expect};
    connected.add("heart-beat", stomp::format_heart_beat(ours));
    auto periods = stomp::negotiate_heart_beat(ours, theirs);
    s.sink->set_heartbeat(periods.send_every, periods.expect_every);
  } else {
    s.sink->set_heartbeat(std::chrono::milliseconds{0}, std::chrono::milliseconds{0});
  }
  send_frame(s, connected);
}

// Sets s.login when CONNECT's login and passcode match a configured user.
result<void> engine::impl::authenticate(session& s, const stomp::frame& f) {
  auto login = f.get("login");
  if (!login) {
    if (config_.allow_anonymous) return boost::outcome_v2::success();
    return failure{errc::authentication_failed, "This broker requires login and passcode headers on CONNECT."};
  }
  if (auto ok = login_result(s, *login, header_or(f, "passcode")); !ok) return ok;
  s.login = std::string(*login);
  return boost::outcome_v2::success();
}

void engine::impl::on_disconnect(session& s, stomp::frame& f) {
  // The receipt (if any) goes after every receipt still owed, then the connection closes.
  receipt_slot slot;
  slot.id = s.next_slot++;
  if (auto r = f.get("receipt")) slot.receipt_id = std::string(*r);
  slot.close = true;
  s.slots.push_back(std::move(slot));
  s.state = session_state::closing;
  flush_slots(s);
}

}  // namespace tandem::broker
