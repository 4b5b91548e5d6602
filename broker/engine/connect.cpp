// CONNECT / STOMP (version and heart-beat negotiation, authentication, client-id) and
// DISCONNECT: the start and the orderly end of a session.
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/auth.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/log.h"
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
  // Heart-beats: the client's wish, raised to the broker's floors (heartbeat_send_ms,
  // heartbeat_expect_ms; 0 turns a direction off). CONNECTED carries the negotiated periods,
  // which the client's own max(ours, theirs) rule (STOMP 1.2) turns into the same values.
  // A STOMP 1.0 client gets "0,0", as ActiveMQ and RabbitMQ answer: 1.0 has no heart-beats.
  stomp::heart_beat_periods periods{};
  if (s.version != stomp::version::v1_0)
    periods = stomp::negotiate_heart_beat({config_.heartbeat_send, config_.heartbeat_expect}, theirs);
  connected.add("heart-beat", stomp::format_heart_beat({periods.send_every, periods.expect_every}));
  s.sink->set_heartbeat(periods.send_every, periods.expect_every);
  send_frame(s, connected);
  if (advising()) advise_connection(s, true);
}

// Sets s.login when CONNECT's login and passcode match a configured user.
//
// No users configured and anonymous access allowed is "no security", as ActiveMQ without an
// authentication plugin: every CONNECT is accepted, whatever login and passcode it carries
// (stock clients send guest/guest), and the login is kept only as a label. Where such a
// broker may listen is config.cpp's check_no_security_listeners.
result<void> engine::impl::authenticate(session& s, const stomp::frame& f) {
  auto login = f.get("login");
  if (config_.users.empty() && config_.allow_anonymous) {
    if (login) {
      static log::rate_limiter limiter(std::chrono::seconds(10));
      std::uint64_t suppressed = 0;
      if (limiter.allow(suppressed))
        log::info("engine", "unauthenticated CONNECT: no users are configured, the login is not checked",
                  {log::kv("login", *login), log::kv("remote", s.info.remote_endpoint),
                   log::kv("suppressed", suppressed)});
    }
    return boost::outcome_v2::success();
  }
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
