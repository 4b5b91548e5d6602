#include "broker/engine/scheduler_request.h"

#include <fmt/format.h>

#include "broker/engine/destinations.h"
#include "broker/engine/headers.h"

namespace tandem::broker::detail {
namespace {

// The names of ActiveMQ's Java constants for the time range, which ActiveMQ does not read
// as headers (file comment).
constexpr std::string_view misnamed_start = "AMQ_SCHEDULER_ACTION_START_TIME";
constexpr std::string_view misnamed_end = "AMQ_SCHEDULER_ACTION_END_TIME";

constexpr std::string_view actions_text = "BROWSE, REMOVE or REMOVEALL";

// The time range, or an error; nullopt range when neither end is given.
std::string read_range(const header_list& headers, std::optional<std::pair<std::int64_t, std::int64_t>>& range) {
  for (auto [wrong, right] : {std::pair{misnamed_start, header_action_start_time}, {misnamed_end, header_action_end_time}})
    if (find_header(headers, wrong))
      return fmt::format("{} is the name of ActiveMQ's Java constant, not of the header: send {} (ActiveMQ "
                         "ignores {} and acts on every job)",
                         wrong, right, wrong);
  auto start = find_header(headers, header_action_start_time);
  auto end = find_header(headers, header_action_end_time);
  if (!start && !end) return {};
  if (!start || !end)
    return fmt::format("{} and {} go together (ActiveMQ ignores one alone and acts on every job)",
                       header_action_start_time, header_action_end_time);
  std::int64_t first = 0, last = 0;
  if (!parse_number(*start, first) || first < 0)
    return fmt::format("{} '{}' is not milliseconds since the Unix epoch", header_action_start_time, *start);
  if (!parse_number(*end, last) || last < 0)
    return fmt::format("{} '{}' is not milliseconds since the Unix epoch", header_action_end_time, *end);
  if (first > last)
    return fmt::format("{} {} is after {} {}: the range is empty", header_action_start_time, first,
                       header_action_end_time, last);
  range.emplace(first, last);
  return {};
}

}  // namespace

bool is_scheduler_management(std::string_view destination) {
  for (std::string_view prefix : {"/topic/", "/queue/"})
    if (destination.size() == prefix.size() + scheduler_management_name.size() && destination.starts_with(prefix) &&
        destination.ends_with(scheduler_management_name))
      return true;
  return false;
}

bool names_scheduler_management(std::string_view destination) {
  // Every SEND asks: a substring search first, so other destinations cost one scan.
  if (destination.find(scheduler_management_name) == std::string_view::npos) return false;
  for (auto part : split_composite(destination))
    if (is_scheduler_management(part)) return true;
  return false;
}

scheduler_request_parse parse_scheduler_request(const header_list& headers) {
  scheduler_request_parse out;
  auto action = find_header(headers, header_scheduler_action);
  if (!action) {
    out.error = fmt::format("a SEND to {} needs header {}: {}", scheduler_management_name, header_scheduler_action,
                            actions_text);
    return out;
  }
  scheduler_request r;
  if (*action == "BROWSE") {
    r.action = scheduler_action::browse;
  } else if (*action == "REMOVE") {
    r.action = scheduler_action::remove;
  } else if (*action == "REMOVEALL") {
    r.action = scheduler_action::remove_all;
  } else {
    out.error = fmt::format("{} '{}' is not {} (upper case, as ActiveMQ)", header_scheduler_action, *action,
                            actions_text);
    return out;
  }
  if (auto why = read_range(headers, r.due_range); !why.empty()) {
    out.error = std::move(why);
    return out;
  }
  switch (r.action) {
    case scheduler_action::browse: {
      auto reply_to = find_header(headers, "reply-to");
      if (!reply_to || reply_to->empty()) {
        out.error = "BROWSE needs a reply-to header: the destination the scheduled messages are copied to";
        return out;
      }
      r.reply_to = std::string(*reply_to);
      break;
    }
    case scheduler_action::remove: {
      auto job = find_header(headers, header_scheduled_job_id);
      if (!job || job->empty()) {
        out.error = fmt::format("REMOVE needs a {} header: the job to remove (BROWSE lists them)", header_scheduled_job_id);
        return out;
      }
      if (r.due_range) {
        out.error = fmt::format("REMOVE takes no {} / {}: it removes one job; REMOVEALL removes a time range",
                                header_action_start_time, header_action_end_time);
        return out;
      }
      r.job_id = std::string(*job);
      break;
    }
    case scheduler_action::remove_all: break;
  }
  out.request = std::move(r);
  return out;
}

header_list browse_copy_headers(const header_list& entry, std::string_view job_id) {
  header_list out;
  out.reserve(entry.size() + 2);
  std::string destination;
  for (const auto& [name, value] : entry) {
    if (name == header_schedule_destination) destination = value;
    if (name == header_schedule_destination || name == header_schedule_left || name == "persistent" ||
        name == "type" || name == "original-destination" || name == header_scheduled_job_id)
      continue;
    out.emplace_back(name, value);
  }
  out.emplace_back("type", "Advisory");
  out.emplace_back("original-destination", std::move(destination));
  out.emplace_back(std::string(header_scheduled_job_id), std::string(job_id));
  return out;
}

}  // namespace tandem::broker::detail
