// Scheduled and delayed delivery (ActiveMQ's scheduler headers): the pure parts.
// - schedule_spec: what a SEND's AMQ_SCHEDULED_* headers ask for (parse_schedule);
// - plan_firing: what one firing of a schedule entry does (send now, start a cron run's
//   child, come back at the next time);
// - schedule_table: the pending entries and ONE min-heap of their due times, which the
//   server's single timer follows (earliest()).
// The engine's side (journaling, firing, admin) is schedule.cpp; the stored form of an
// entry is in journal/format.h, section 5 ("scheduled messages").
//
// ActiveMQ's semantics (activemq.apache.org, "Delay and Schedule Message Delivery"):
//   AMQ_SCHEDULED_DELAY  ms before the first delivery
//   AMQ_SCHEDULED_PERIOD ms between deliveries
//   AMQ_SCHEDULED_REPEAT deliveries after the first (so repeat + 1 in all); -1 = forever
//   AMQ_SCHEDULED_CRON   5-field Unix cron; takes precedence: at each cron time the
//                        message is delivered, or when delay/period/repeat are set too, a
//                        run of repeat + 1 deliveries starts (delay, then every period)
// A message that carries `scheduledJobId` is delivered at once, not scheduled (ActiveMQ:
// it was fired by a scheduler already); every fired message carries scheduledJobId.
//
// Thread: the engine's (io) thread; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/engine/cron.h"
#include "journal/message.h"

namespace tandem::broker::detail {

inline constexpr std::string_view header_scheduled_delay = "AMQ_SCHEDULED_DELAY";
inline constexpr std::string_view header_scheduled_period = "AMQ_SCHEDULED_PERIOD";
inline constexpr std::string_view header_scheduled_repeat = "AMQ_SCHEDULED_REPEAT";
inline constexpr std::string_view header_scheduled_cron = "AMQ_SCHEDULED_CRON";
inline constexpr std::string_view header_scheduled_job_id = "scheduledJobId";
// Kept on a stored entry only (never on a fired message): where it goes, and how many
// deliveries its run has left after the next one (-1 = forever).
inline constexpr std::string_view header_schedule_destination = "tandem-schedule-destination";
inline constexpr std::string_view header_schedule_left = "tandem-schedule-left";

using header_list = std::vector<std::pair<std::string, std::string>>;

struct schedule_spec {
  std::int64_t delay_ms = 0;
  std::int64_t period_ms = 0;
  std::int64_t repeat = 0;  // -1 = forever
  std::string cron_text;    // "" = none
  std::optional<cron_expression> cron;
};

struct schedule_parse {
  bool scheduled = false;       // some AMQ_SCHEDULED_* header asks for it (and no job id)
  schedule_spec spec;
  std::string error;            // not empty: a header is malformed (then not scheduled)
};
// Reads the AMQ_SCHEDULED_* headers (the first of each name counts, as STOMP says).
schedule_parse parse_schedule(const header_list& headers);

// When an entry fires next, and how many deliveries its run has left after that one.
struct schedule_state {
  std::int64_t due_ms = 0;
  std::int64_t left = 0;  // -1 = forever; a cron entry keeps 0 (cron decides)
};
// The first state of a fresh schedule at `now_ms`; nullopt when its cron never matches.
std::optional<schedule_state> first_state(const schedule_spec& s, std::int64_t now_ms);

struct firing_plan {
  bool deliver = false;                 // send the message to its destination now
  std::optional<schedule_state> child;  // a cron time starting a delay/period/repeat run:
                                        // a new entry without the cron header
  std::optional<schedule_state> next;   // the entry again at this state; nullopt: done
};
// One firing of an entry in `state` at `now_ms` (>= state.due_ms). A time that passed while
// no broker ran (a failover, a restart) fires once at once; the count of a run is kept
// (the next comes `period` after the late one), a cron entry goes on from its next time
// after now.
firing_plan plan_firing(const schedule_spec& s, const schedule_state& state, std::int64_t now_ms);

// The fired message's headers: the entry's minus the scheduling and tandem-schedule-*
// headers, plus scheduledJobId (ActiveMQ strips the AMQ_SCHEDULED_* properties so a fired
// message is never scheduled again).
header_list fired_headers(const header_list& entry, std::string_view job_id);
// An entry's headers for `state`: header_schedule_left set; a cron run's child also loses
// the cron header.
header_list entry_headers(const header_list& entry, const schedule_state& state, bool child);
std::optional<std::string_view> find_header(const header_list& headers, std::string_view name);

// Pending schedule entries by msg_seq, and a min-heap of (due, msg_seq) over them, the only
// timer structure: the server arms one timer for earliest(). Removal is lazy (a heap
// element whose entry is gone or has another due time is skipped when it surfaces); the
// heap is rebuilt when stale elements outnumber live ones, so it stays O(entries).
class schedule_table {
 public:
  struct entry {
    std::int64_t due_ms = 0;
    std::string job_id;
    std::shared_ptr<const journal::message> memory;  // set when not journaled (no store)
  };

  void add(std::uint64_t seq, entry e);
  bool remove(std::uint64_t seq);
  const entry* find(std::uint64_t seq) const;
  std::optional<std::uint64_t> find_job(std::string_view job_id) const;  // linear: admin only
  // The earliest due time, or nullopt when nothing is pending.
  std::optional<std::int64_t> earliest();
  // Takes out the earliest entry if it is due at `now_ms`.
  std::optional<std::pair<std::uint64_t, entry>> pop_due(std::int64_t now_ms);
  std::size_t size() const { return entries_.size(); }
  std::size_t heap_size() const { return heap_.size(); }
  // Up to `max` entries due in (after_ms, until_ms], in no particular order: a walk of the
  // heap's top that stops below every element due after until_ms, so it costs about the
  // number of entries due by until_ms, not the table's size.
  std::vector<std::uint64_t> due_within(std::int64_t after_ms, std::int64_t until_ms, std::size_t max) const;
  // Entries ordered by (due, seq): the page [offset, offset + limit).
  std::vector<std::pair<std::uint64_t, const entry*>> page(std::size_t offset, std::size_t limit) const;
  const std::map<std::uint64_t, entry>& entries() const { return entries_; }

 private:
  struct element {
    std::int64_t due_ms;
    std::uint64_t seq;
  };
  bool stale(const element& e) const;
  void drop_stale_top();
  void rebuild_if_sparse();

  std::map<std::uint64_t, entry> entries_;
  std::vector<element> heap_;  // std::push_heap with `later` as the order: a min-heap
};

}  // namespace tandem::broker::detail
