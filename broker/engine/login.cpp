// CONNECT's password check. The hash is slow on purpose (auth.h: PBKDF2, ~0.4 s of a core),
// so it must not run on the io thread, where it would stall every session: check_login pauses
// the connection's reader, runs credential_checker::verify through offload_ on a worker, and
// when the verdict comes back (on the io thread) records it and carries on with on_connect.
// Frames that arrive meanwhile wait in the session (held_for_login) and run after, in order.
#include <fmt/format.h>

#include "broker/engine/headers.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

namespace {

login_attempt attempt_of(const session& s, std::string_view login, std::string_view passcode) {
  return login_attempt{std::string(login), std::string(passcode), peer_address(s.info.remote_endpoint)};
}

}  // namespace

void engine::impl::check_login(session& s, stomp::frame&& f) {
  // No users: nothing to verify (authenticate decides what a login means then).
  if (!credentials_->has_users()) return on_connect(s, f);
  auto attempt = attempt_of(s, *f.get("login"), header_or(f, "passcode"));
  auto now = credential_checker::clock::now();
  if (auto quick = credentials_->quick(attempt, now)) {
    s.login_checked = std::move(*quick);
    return on_connect(s, f);
  }
  if (!offload_) {
    s.login_checked = credentials_->record(attempt, credentials_->verify(attempt), now);
    return on_connect(s, f);
  }
  s.verifying_login = true;
  s.sink->pause_reading();
  // A reconnect storm after a takeover is many CONNECTs with the same login and passcode and a
  // cold cache: they wait for one hash instead of queueing one each on the worker (at ~0.4 s a
  // hash, 100 queued hashes would outlast connect_timeout). The one check counts once for
  // throttling, under the first waiter's peer address.
  auto key = attempt.login + '\0' + attempt.password;
  auto& waiters = logins_in_flight_[key];
  waiters.push_back({s.id, std::make_shared<stomp::frame>(std::move(f))});
  if (waiters.size() > 1) return;
  auto slow = [checker = credentials_, attempt] { return checker->verify(attempt); };
  auto done = [this, life = std::weak_ptr<int>(life_), key, attempt](bool ok) {
    if (life.expired()) return;
    auto verdict = credentials_->record(attempt, ok, credential_checker::clock::now());
    auto it = logins_in_flight_.find(key);
    if (it == logins_in_flight_.end()) return;
    auto sessions = std::move(it->second);
    logins_in_flight_.erase(it);
    for (auto& [sid, frame] : sessions) resume_after_login(sid, verdict, std::move(*frame));
    flush();
  };
  offload_(std::move(slow), std::move(done));
}

void engine::impl::resume_after_login(session_id sid, const login_verdict& verdict, stomp::frame&& connect) {
  auto* s = find_session(sid);
  if (!s) return;  // the client went away meanwhile
  s->verifying_login = false;
  s->login_checked = verdict;
  handle_frame(*s, std::move(connect));
  auto held = std::move(s->held_for_login);
  for (auto& next : held) {
    if (s->state == session_state::closing) break;
    if (!s->parked.empty()) s->parked.push_back(std::move(next));  // as engine::on_frame does
    else handle_frame(*s, std::move(next));
  }
  if (s->state != session_state::closing) s->sink->resume_reading();
}

result<void> engine::impl::login_result(session& s, std::string_view login, std::string_view passcode) {
  auto attempt = attempt_of(s, login, passcode);
  if (!s.login_checked) {  // a caller that skipped check_login: check inline
    auto now = credential_checker::clock::now();
    auto quick = credentials_->quick(attempt, now);
    s.login_checked = quick ? std::move(*quick) : credentials_->record(attempt, credentials_->verify(attempt), now);
  }
  if (s.login_checked->accepted()) return boost::outcome_v2::success();
  return failure{errc::authentication_failed, s.login_checked->explain(attempt)};
}

}  // namespace tandem::broker
