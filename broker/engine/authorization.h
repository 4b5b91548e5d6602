// Per-destination authorization, ActiveMQ's authorizationPlugin model (issue 17, finding 7:
// any login could read any queue, dead-letter queues included).
//
// The config key "authorization" is a list of entries; each names queues or topics by a
// pattern and gives the groups that may read (SUBSCRIBE), write (SEND) and admin (create the
// destination: the first SEND or SUBSCRIBE to a destination that does not exist yet):
//
//   "authorization": [
//     {"queue": ">",           "read": ["ops"],       "write": ["ops"],       "admin": ["ops"]},
//     {"queue": "orders.>",    "read": ["shipping"],  "write": ["shop"],      "admin": ["shop"]},
//     {"topic": "prices.*",    "read": ["anonymous"], "write": ["pricer"],    "admin": ["pricer"]}
//   ]
//
// Patterns match the name without /queue/ or /topic/, element by element ('.' separates):
// '*' matches one element, '>' (last) matches the rest, zero or more elements. A user's
// groups come from "users" (user_account::groups); a session without a login (allow_anonymous)
// is in group "anonymous". As in ActiveMQ, the groups of every matching entry are united; a
// destination that no entry matches is refused. Without the key nothing is checked (every
// login may do everything), as before issue 17.
//
// Durable subscriptions belong to the login that made them (subscribe.cpp): another login
// presenting the same client-id cannot take one over or remove it. The owner is kept in
// memory; after a restart the first login to reattach claims it (the journal record has no
// owner field).
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/engine_config.h"

namespace tandem::broker {

enum class permission { read, write, admin };
std::string_view to_string(permission p);

// True when `name` (without its /queue/ or /topic/ prefix) matches `pattern`.
bool destination_matches(std::string_view pattern, std::string_view name);

class authorization_map {
 public:
  explicit authorization_map(std::vector<authorization_entry> entries) : entries_(std::move(entries)) {}
  // The groups that may do `p` on `destination` ("/queue/NAME" or "/topic/NAME").
  std::set<std::string> allowed(std::string_view destination, permission p) const;
  bool permits(const std::vector<std::string>& groups, std::string_view destination, permission p) const;

 private:
  std::vector<authorization_entry> entries_;
};

}  // namespace tandem::broker
