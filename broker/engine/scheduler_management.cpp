// ActiveMQ.Scheduler.Management over STOMP (issue 16): a SEND to /topic/ActiveMQ.Scheduler.
// Management (or /queue/...) with AMQ_SCHEDULER_ACTION is a request to the scheduler, acted
// on at once and never delivered. The headers are read by parse_scheduler_request
// (scheduler_request.h, which also says where Tandem is stricter than ActiveMQ).
//
//   BROWSE     each pending entry (in next-firing order) is copied to the reply-to
//              destination as a non-persistent message (browse_copy_headers); the RECEIPT
//              comes after the last copy. Bodies not in memory are read off the io thread,
//              one at a time (scheduler_browse_step), as the queue browser does.
//   REMOVE     cancel_scheduled(job): the admin API's cancel, journaled before the RECEIPT,
//   REMOVEALL  so a failover or restart after the RECEIPT never fires what was removed.
//
// Who may: with "authorization" configured, a login in group "admin" (the admin API's
// rule for scheduled messages); see authorize_scheduler_management. Without it, anyone,
// as for every destination then.
#include <algorithm>

#include <fmt/format.h>

#include "broker/engine/destinations.h"
#include "broker/engine/headers.h"
#include "broker/engine/impl.h"
#include "broker/log.h"

namespace tandem::broker {

using namespace detail;

namespace {

constexpr std::string_view scheduler_key = journal::format::scheduler_target;
constexpr std::string_view admin_group = "admin";

}  // namespace

struct engine::impl::scheduler_browse {
  session_id sid = 0;
  std::uint64_t slot = 0;
  std::string reply_to;  // as the broker keeps it (a temporary name resolved)
  bool to_topic = false;
  std::vector<std::pair<std::uint64_t, std::string>> entries;  // (seq, job id) by next firing
  std::size_t next = 0;
  bool stepping = false;  // inside scheduler_browse_step: a read answered inline lands there
  bool reading = false;   // a body read is under way
};

void engine::impl::on_scheduler_management(session& s, stomp::frame& f) {
  auto dest = checked_destination(f);
  if (!dest) return fail(s, std::move(dest).error(), &f);
  if (!is_scheduler_management(dest.value()))
    return fail(s, {errc::bad_scheduler_request,
                    fmt::format("'{}' names {} in a composite destination: send a scheduler request alone, to "
                                "/topic/{}.", dest.value(), scheduler_management_name, scheduler_management_name)},
                &f);
  if (f.get("transaction"))
    return fail(s, {errc::bad_scheduler_request,
                    fmt::format("A request to {} acts at once and cannot be part of a transaction: send it without "
                                "the transaction header.", scheduler_management_name)},
                &f);
  if (auto ok = authorize_scheduler_management(s); !ok) return fail(s, std::move(ok).error(), &f);
  auto parsed = parse_scheduler_request(f.headers);
  if (!parsed.request) return fail(s, {errc::bad_scheduler_request, parsed.error + "."}, &f);
  if (shutting_down_)
    return fail(s, {errc::shutting_down, "The broker is stopping and takes no more requests; reconnect."}, &f);
  const auto& r = *parsed.request;
  if (r.action == scheduler_action::browse) return browse_schedules(s, f, r);

  auto slot = add_receipt(s, f, 1);
  auto done = [this, life = std::weak_ptr<int>(life_), sid = s.id, slot](std::error_code ec, std::uint64_t) {
    if (life.expired()) return;
    settle_slot(sid, slot, ec, errc::scheduler_request_not_stored, "removal of scheduled messages");
    flush();
  };
  schedule_selection which;
  if (r.action == scheduler_action::remove) which.job_id = r.job_id;
  which.due_range = r.due_range;
  const auto removed = cancel_schedules(which, std::move(done));
  schedule_changed();
  log::info("engine", "scheduled messages removed over STOMP",
            {log::kv("login", s.login), log::kv("job_id", r.job_id), log::kv("removed", removed)});
}

// ActiveMQ's authorizationPlugin asks for write permission on the management topic and
// nothing more, so whoever may write there may read the body of every scheduled message
// and remove every job. Tandem asks what its admin API asks for the same acts (browsing
// bodies, cancelling: group "admin"); the authorization entries are not consulted for this
// destination. A BROWSE also needs write permission on its reply-to, as a SEND there would.
result<void> engine::impl::authorize_scheduler_management(const session& s) {
  if (!authz_) return boost::outcome_v2::success();
  auto groups = session_groups(s);
  if (std::find(groups.begin(), groups.end(), admin_group) != groups.end()) return boost::outcome_v2::success();
  ++authorization_denials_;
  return failure{errc::not_authorized,
                 fmt::format("{} browses and removes every scheduled message: {} is not in group '{}' (the group "
                             "the admin API's scheduled-message cancel needs).",
                             scheduler_management_name,
                             s.login.empty() ? std::string("an anonymous session") : fmt::format("login '{}'", s.login),
                             admin_group)};
}

void engine::impl::browse_schedules(session& s, stomp::frame& f, const scheduler_request& r) {
  auto reply = std::string_view(r.reply_to);
  if ((!is_queue(reply) && !is_topic(reply) && !is_local_temp(reply)) || has_wildcard(reply) ||
      reply.find(',') != std::string_view::npos || is_scheduler_management(reply))
    return fail(s, {errc::bad_scheduler_request,
                    fmt::format("BROWSE's reply-to '{}' is not one destination to copy to: use /queue/NAME, "
                                "/topic/NAME or a /temp-queue/.", r.reply_to)},
                &f);
  auto resolved = resolve_destination(s, reply, false);
  if (!resolved) return fail(s, std::move(resolved).error(), &f);
  auto st = std::make_shared<scheduler_browse>();
  st->reply_to = std::move(resolved).value();
  st->to_topic = is_topic(st->reply_to);
  if (auto ok = authorize_use(s, st->reply_to, permission::write); !ok) return fail(s, std::move(ok).error(), &f);
  // The copies are held in memory like non-persistent messages. Refused when there is no
  // room now (parking it would retry it at once: retry_blocked asks about the management
  // topic, which always has room); once started, the copies are not held back, as
  // ActiveMQ sends them with producer flow control off.
  if (auto space = check_space(st->reply_to, st->to_topic, false); !space)
    return fail(s, std::move(space).error(), &f);
  for (const auto& [seq, e] : schedules_.page(0, schedules_.size()))
    if (r.selects_due(e->due_ms)) st->entries.emplace_back(seq, e->job_id);
  st->sid = s.id;
  st->slot = add_receipt(s, f, 1);
  scheduler_browse_step(st);
}

namespace {

// The copy of a schedule entry that a BROWSE sends: a non-persistent message.
message browse_copy(const message& entry, std::string_view job_id) {
  message copy;
  copy.persistent = false;
  copy.priority = entry.priority;
  copy.expires_ms = entry.expires_ms;
  copy.headers = browse_copy_headers(entry.headers, job_id);
  copy.body = entry.body;
  return copy;
}

}  // namespace

void engine::impl::scheduler_browse_step(const std::shared_ptr<scheduler_browse>& st) {
  // Onto the reply-to destination, as a non-persistent SEND would go.
  auto copy_to_reply = [this, st](const message& entry, std::string_view job_id) {
    std::optional<journal::message_add> never;  // non-persistent: nothing is journaled
    apply_send(plan_send(st->reply_to, st->to_topic, browse_copy(entry, job_id), never));
  };
  st->stepping = true;
  while (st->next < st->entries.size()) {
    // The asker left, or its temporary reply-to went with its connection: nobody to copy to.
    const bool reply_gone = is_temporary(st->reply_to) &&
                            !(st->to_topic ? topics_.contains(st->reply_to) : queues_.contains(st->reply_to));
    if (!find_session(st->sid) || reply_gone) break;
    const auto& [seq, job_id] = st->entries[st->next];
    const auto* e = schedules_.find(seq);  // fired or removed since the request: not pending
    message_ptr body = e ? e->memory : nullptr;
    if (e && !body && store_) body = store_->cached(scheduler_key, seq);
    if (e && !body && store_) {
      st->reading = true;
      read_body_off_thread(nullptr, seq, nullptr, std::string(scheduler_key), [this, st, copy_to_reply](queue*, body_read r) {
        st->reading = false;
        // Gone: fired or removed meanwhile. An unreadable entry is counted by the read and
        // left out of the copies (it stays scheduled; read_then_fire logs it when its time comes).
        if (r.body) copy_to_reply(*r.body, st->entries[st->next].second);
        ++st->next;
        if (!st->stepping) {
          scheduler_browse_step(st);
          flush();
        }
      });
      if (st->reading) {
        st->stepping = false;
        return;  // the callback goes on
      }
      continue;  // answered inline (a store without a reader thread)
    }
    if (body) copy_to_reply(*body, job_id);
    ++st->next;
  }
  st->stepping = false;
  st->next = st->entries.size();
  flush();  // the copies go out before the RECEIPT to a subscriber on this connection
  complete_slot(st->sid, st->slot);
}

}  // namespace tandem::broker
