// policy_workload: the drill's workloads with issue 16's delivery policies on (--workload).
//
// The plain workload (workload.h) is unchanged by default. The others change what the live
// producers put in each SEND, what the consumers do with each MESSAGE and what the history
// expects, so that a failover that breaks the policy's promise shows in the verdict:
//
//   groups      Each SEND carries JMSXGroupID "drill-p<p>-g<g>", g = seq % group_count, so
//               every producer feeds group_count groups, and every consumer subscribes to
//               every producer's queue (groups are pinned to consumers and move when one
//               goes). Order is checked per group across all consumers: the first delivery
//               of seq s of a group after a later seq of the same group was delivered, not
//               flagged redelivered, is an order violation (history.h).
//   scheduled   Each SEND is a schedule: AMQ_SCHEDULED_DELAY 100..1000 ms (from the seq), and
//               every fifth also AMQ_SCHEDULED_PERIOD 300 and AMQ_SCHEDULED_REPEAT 2, i.e.
//               three firings. A receipted schedule must fire exactly that many times: fewer
//               deliveries than firings is lost; more *unflagged* deliveries than firings is
//               an unflagged duplicate (a firing done twice). Firings are in time order, not
//               send order, so there is no order check.
//   redelivery  The queues have a redelivery policy (redelivery_config: 2 redeliveries,
//               200 ms then x2), written by the drill into the brokers' config. Consumers
//               NACK every seq % 4 == 1 on its first delivery (it must come back after its
//               delay and is then ACKed) and every seq % 8 == 3 on every delivery from its
//               queue (it must end in the DLQ, /queue/ActiveMQ.DLQ, which every consumer
//               also reads). A message counts as delivered when it is ACKed: from its queue
//               or from the DLQ. A once-NACKed message found in the DLQ is a policy
//               violation.
//
// Only the live producers (streams 0 .. producers-1) follow the workload; the backlog and
// the probe's writes stay plain.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::stomp {
struct frame;
}

namespace tandem::drill {

enum class workload_kind { plain, groups, scheduled, redelivery };

std::optional<workload_kind> parse_workload_kind(std::string_view text);
std::string_view name(workload_kind k);

constexpr std::uint32_t group_count = 3;  // groups per producer (groups workload)
constexpr std::string_view drill_dlq = "/queue/ActiveMQ.DLQ";  // the broker's default ("shared")

// The group of (p, seq), 0 .. group_count-1.
std::uint32_t group_of(std::uint64_t seq);
// Adds the workload's headers to the SEND of (p, seq).
void add_policy_headers(workload_kind k, stomp::frame& f, std::uint32_t p, std::uint64_t seq);
// How many MESSAGEs a receipted (p, seq) must produce: the firings of its schedule, else 1.
std::uint32_t expected_deliveries(workload_kind k, std::uint64_t seq);

// What a redelivery-workload consumer does with a MESSAGE of seq from its queue.
enum class consumer_action { ack, nack };
consumer_action redelivery_action(std::uint64_t seq, bool nacked_before);
// Whether seq is meant to end in the DLQ.
bool meant_for_dlq(std::uint64_t seq);

// The tandemd config (JSON text) the redelivery workload runs with.
std::string redelivery_config();

}  // namespace tandem::drill
