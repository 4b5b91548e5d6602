// Destination names beyond a plain /queue/NAME or /topic/NAME, as ActiveMQ's STOMP transport
// reads them. Pure functions over names (no engine state), so they are unit-tested alone.
//
//   wildcards    in SUBSCRIBE: NAME is split at '.'; an element "*" matches any one
//                element, a final ">" matches one or more remaining elements
//                ("a.>" matches a.b and a.b.c, not a). Other characters are literal.
//                /topic/ and /queue/ both take them.
//   composite    in SEND: "/queue/a,/topic/b" is sent to each part (each a destination of
//                its own; a part without a /queue/ or /topic/ prefix is refused). In
//                SUBSCRIBE: "/queue/a,/queue/b.>" consumes from each queue a part names or
//                matches (queues only; each part may be a wildcard).
//   virtual      a SEND to /topic/VirtualTopic.X also goes to every existing queue
//   topics       /queue/Consumer.<name>.VirtualTopic.X (<name> one element), ActiveMQ's
//                default virtualDestinationInterceptor; each such queue has competing
//                consumers of its own.
//   temporary    /temp-queue/x and /temp-topic/x belong to the connection that names them:
//                the broker keeps them as /remote-temp-queue/<owner token>.x (and
//                /remote-temp-topic/...), the name a `reply-to` header is rewritten to, so
//                other connections can SEND there; the owner's MESSAGE frames still say
//                /temp-queue/x. They are never journaled and are deleted when the owner's
//                connection closes; a SEND to one that is gone is an ERROR.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tandem::broker::detail {

inline constexpr std::string_view temp_queue_prefix = "/temp-queue/";
inline constexpr std::string_view temp_topic_prefix = "/temp-topic/";
inline constexpr std::string_view remote_temp_queue_prefix = "/remote-temp-queue/";
inline constexpr std::string_view remote_temp_topic_prefix = "/remote-temp-topic/";

// True when `name` (a destination without its /queue/ or /topic/ prefix, or with it) has a
// "*" or ">" element.
bool has_wildcard(std::string_view name);
// Whether destination `name` is matched by `pattern` (same kind prefix, ActiveMQ rules above).
bool wildcard_matches(std::string_view pattern, std::string_view name);
// The parts of a composite destination ("a,b" -> {"a","b"}); one part when there is no ','.
std::vector<std::string_view> split_composite(std::string_view destination);
// Whether a consumer of `subscribed` (one destination, a wildcard, or a composite of them)
// consumes from destination `name`.
bool subscription_covers(std::string_view subscribed, std::string_view name);
// For /topic/VirtualTopic.X: "VirtualTopic.X"; else "".
std::string_view virtual_topic_name(std::string_view destination);
// Whether /queue/NAME is a consumer queue of virtual topic `vt` ("VirtualTopic.X"):
// NAME = "Consumer.<one element>." + vt.
bool is_virtual_topic_queue(std::string_view queue, std::string_view vt);
// The broker-wide name of a connection's temporary destination: "/temp-queue/x" of the
// connection with `owner_token` -> "/remote-temp-queue/<owner_token>.x"; other names as given.
std::string global_temp_name(std::string_view destination, std::string_view owner_token);
bool is_temporary(std::string_view destination);  // /remote-temp-queue/ or /remote-temp-topic/

}  // namespace tandem::broker::detail
