#include "tools/drill/policy_workload.h"

#include <fmt/format.h>

#include "broker/stomp/frame.h"

namespace tandem::drill {
namespace {

// Scheduled workload: every fifth seq repeats (three firings in all).
constexpr std::uint64_t repeat_every = 5;
constexpr std::uint32_t repeat_count = 2;
constexpr int repeat_period_ms = 300;

bool repeats(std::uint64_t seq) { return seq % repeat_every == 0; }

}  // namespace

std::optional<workload_kind> parse_workload_kind(std::string_view text) {
  for (auto k : {workload_kind::plain, workload_kind::groups, workload_kind::scheduled, workload_kind::redelivery})
    if (name(k) == text) return k;
  return std::nullopt;
}

std::string_view name(workload_kind k) {
  switch (k) {
    case workload_kind::plain: return "plain";
    case workload_kind::groups: return "groups";
    case workload_kind::scheduled: return "scheduled";
    case workload_kind::redelivery: return "redelivery";
  }
  return "?";
}

std::uint32_t group_of(std::uint64_t seq) { return static_cast<std::uint32_t>(seq % group_count); }

void add_policy_headers(workload_kind k, stomp::frame& f, std::uint32_t p, std::uint64_t seq) {
  switch (k) {
    case workload_kind::groups:
      f.add("JMSXGroupID", fmt::format("drill-p{}-g{}", p, group_of(seq)));
      break;
    case workload_kind::scheduled:
      // Spread over 100..1000 ms, so firings of one producer interleave out of send order.
      f.add("AMQ_SCHEDULED_DELAY", std::to_string(100 + (seq * 37) % 900));
      if (repeats(seq)) {
        f.add("AMQ_SCHEDULED_PERIOD", std::to_string(repeat_period_ms));
        f.add("AMQ_SCHEDULED_REPEAT", std::to_string(repeat_count));
      }
      break;
    case workload_kind::plain:
    case workload_kind::redelivery:
      break;
  }
}

std::uint32_t expected_deliveries(workload_kind k, std::uint64_t seq) {
  if (k == workload_kind::scheduled && repeats(seq)) return 1 + repeat_count;
  return 1;
}

bool meant_for_dlq(std::uint64_t seq) { return seq % 8 == 3; }

consumer_action redelivery_action(std::uint64_t seq, bool nacked_before) {
  if (meant_for_dlq(seq)) return consumer_action::nack;
  if (seq % 4 == 1 && !nacked_before) return consumer_action::nack;
  return consumer_action::ack;
}

std::string redelivery_config() {
  // A config file turns off the loopback-only anonymous default (broker/config.cpp): the
  // drill's clients log in without credentials, as with no config.
  return R"({
  "allow_anonymous": true,
  "destination_policies": [
    {"queue": "drill.>", "redelivery": {"maximum_redeliveries": 2, "initial_redelivery_delay_ms": 200,
                                        "use_exponential_back_off": true, "back_off_multiplier": 2.0}}
  ]
}
)";
}

}  // namespace tandem::drill
