// ActiveMQ.Scheduler.Management (issue 16): a SEND to this destination is a request to the
// scheduler, never a message. The pure part: which destination it is, what a request's
// headers ask for (parse_scheduler_request), and what the copy of an entry a BROWSE sends
// looks like (browse_copy_headers). The engine's side is scheduler_management.cpp; what a
// client sees is in docs/compatibility.md, "Scheduled and delayed delivery".
//
// ActiveMQ 5.17's names (org.apache.activemq.ScheduledMessage; checked against the running
// broker by tests/integration/16_activemq_diff.py, scenario scheduler_management):
//   AMQ_SCHEDULER_ACTION  BROWSE (needs reply-to), REMOVE (needs scheduledJobId), REMOVEALL
//   ACTION_START_TIME, ACTION_END_TIME  ms since the Unix epoch: BROWSE and REMOVEALL act only
//                        on entries whose next firing is in [start, end], both ends included
// The Java constants of the last two are named AMQ_SCHEDULER_ACTION_START_TIME / _END_TIME,
// which clients write as header names by mistake. ActiveMQ ignores such a header, and a
// lone start or end time, and then acts on every job (a REMOVEALL removes them all); it
// ignores an unknown action, a BROWSE without reply-to and a REMOVE without scheduledJobId.
// Tandem refuses each of these with an ERROR naming the problem and changes nothing.
//
// Thread: any; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/engine/schedule.h"

namespace tandem::broker::detail {

inline constexpr std::string_view scheduler_management_name = "ActiveMQ.Scheduler.Management";
inline constexpr std::string_view header_scheduler_action = "AMQ_SCHEDULER_ACTION";
inline constexpr std::string_view header_action_start_time = "ACTION_START_TIME";
inline constexpr std::string_view header_action_end_time = "ACTION_END_TIME";

enum class scheduler_action { browse, remove, remove_all };

struct scheduler_request {
  scheduler_action action = scheduler_action::browse;
  std::string job_id;    // remove: the job (scheduledJobId)
  std::string reply_to;  // browse: where the copies go, as the client named it
  // browse, remove_all: only entries whose next firing is in [first, last] (ms since the
  // epoch); nullopt = every entry.
  std::optional<std::pair<std::int64_t, std::int64_t>> due_range;

  bool selects_due(std::int64_t due_ms) const {
    return !due_range || (due_range->first <= due_ms && due_ms <= due_range->second);
  }
};

struct scheduler_request_parse {
  std::optional<scheduler_request> request;  // set when the headers make a valid request
  std::string error;                         // otherwise what is wrong, as a sentence
};

// True when `destination` (one destination, not a composite) is the management destination:
// /topic/ActiveMQ.Scheduler.Management, or /queue/... of that name (ActiveMQ looks at the
// name only).
bool is_scheduler_management(std::string_view destination);
// True when some part of a composite destination ("a,b") is.
bool names_scheduler_management(std::string_view destination);

// Reads a management SEND's headers (the first of each name counts, as STOMP says).
scheduler_request_parse parse_scheduler_request(const header_list& headers);

// The headers of the copy of a schedule entry that a BROWSE sends, as ActiveMQ's: the
// sender's headers with the AMQ_SCHEDULED_* ones kept (they say how it is scheduled),
// Tandem's own tandem-schedule-* and `persistent` dropped (the copy is non-persistent),
// type:Advisory, original-destination (where the entry will fire) and scheduledJobId.
header_list browse_copy_headers(const header_list& entry, std::string_view job_id);

}  // namespace tandem::broker::detail
