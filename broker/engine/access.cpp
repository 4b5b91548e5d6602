// Per-destination authorization on SEND and SUBSCRIBE, and durable subscription ownership
// (broker/engine/authorization.h has the model; subscribe.cpp and send.cpp call in here).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "broker/engine/headers.h"
#include "broker/engine/impl.h"

namespace tandem::broker {

using namespace detail;

std::vector<std::string> engine::impl::session_groups(const session& s) const {
  if (s.login.empty()) return {"anonymous"};
  if (s.login_checked && s.login_checked->accepted()) return s.login_checked->groups;
  return {};
}

result<void> engine::impl::authorize_use(const session& s, std::string_view destination, permission p) {
  bool exists = is_queue(destination) ? queues_.contains(destination) : topics_.contains(destination);
  if (!exists && queues_.size() + topics_.size() >= config_.max_destinations) {
    ++destinations_refused_;
    return failure{errc::too_many_destinations,
                   fmt::format("{} would be destination number {}; max_destinations is {}. Unused empty destinations "
                               "are dropped after destination_gc_ms.",
                               destination, queues_.size() + topics_.size() + 1, config_.max_destinations)};
  }
  if (!authz_) return boost::outcome_v2::success();
  auto groups = session_groups(s);
  for (auto needed : {p, permission::admin}) {
    if (needed == permission::admin && exists) break;
    if (authz_->permits(groups, destination, needed)) continue;
    ++authorization_denials_;
    auto allowed = authz_->allowed(destination, needed);
    std::string who = s.login.empty() ? std::string("an anonymous session") : fmt::format("login '{}'", s.login);
    std::string why = needed == permission::admin && needed != p
                          ? fmt::format("{} does not exist yet and creating it needs permission 'admin'", destination)
                          : fmt::format("{} needs permission '{}'", destination, to_string(needed));
    return failure{errc::not_authorized,
                   fmt::format("{}: {} is in none of the groups allowed ({}).", why, who,
                               allowed.empty() ? std::string("no authorization entry matches this destination")
                                               : fmt::format("{}", fmt::join(allowed, ", ")))};
  }
  return boost::outcome_v2::success();
}

failure engine::impl::owned_by_other(const queue& durable, const session& s) const {
  return failure{errc::durable_subscription_owned,
                 fmt::format("Durable subscription '{}' of client-id '{}' belongs to login '{}', not to {}: "
                             "only its owner has permission to subscribe to it or remove it.",
                             durable.subscription_name, durable.client_id, durable.owner_login,
                             s.login.empty() ? std::string("an anonymous session") : fmt::format("login '{}'", s.login))};
}

}  // namespace tandem::broker
