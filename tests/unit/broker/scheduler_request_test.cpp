// Issue 16, ActiveMQ.Scheduler.Management: what a request's headers ask for, what is refused
// (broker/engine/scheduler_request.h), and the copy a BROWSE sends.
#include <algorithm>

#include <doctest/doctest.h>

#include "broker/engine/scheduler_request.h"

using namespace tandem::broker::detail;

namespace {

scheduler_request_parse parse(header_list h) { return parse_scheduler_request(h); }

}  // namespace

TEST_CASE("issue 16: the management destination is the topic or queue ActiveMQ.Scheduler.Management") {
  CHECK(is_scheduler_management("/topic/ActiveMQ.Scheduler.Management"));
  CHECK(is_scheduler_management("/queue/ActiveMQ.Scheduler.Management"));
  CHECK(!is_scheduler_management("/topic/ActiveMQ.Scheduler.ManagementX"));
  CHECK(!is_scheduler_management("/topic/x.ActiveMQ.Scheduler.Management"));
  CHECK(!is_scheduler_management("/temp-queue/ActiveMQ.Scheduler.Management"));
  CHECK(names_scheduler_management("/queue/a,/topic/ActiveMQ.Scheduler.Management"));
  CHECK(!names_scheduler_management("/queue/orders"));
  CHECK(!names_scheduler_management("/queue/ActiveMQ.Scheduler.Management.log"));
}

TEST_CASE("issue 16: BROWSE, REMOVE and REMOVEALL are read with their arguments") {
  auto b = parse({{"AMQ_SCHEDULER_ACTION", "BROWSE"}, {"reply-to", "/queue/jobs"}});
  REQUIRE(b.request);
  CHECK(b.request->action == scheduler_action::browse);
  CHECK(b.request->reply_to == "/queue/jobs");
  CHECK(!b.request->due_range);
  CHECK(b.request->selects_due(0));

  auto ranged = parse({{"AMQ_SCHEDULER_ACTION", "BROWSE"}, {"reply-to", "/temp-queue/r"},
                       {"ACTION_START_TIME", "1000"}, {"ACTION_END_TIME", "2000"}});
  REQUIRE(ranged.request);
  CHECK(ranged.request->due_range == std::pair<std::int64_t, std::int64_t>{1000, 2000});
  CHECK(!ranged.request->selects_due(999));
  CHECK(ranged.request->selects_due(1000));  // both ends included, as ActiveMQ's index range
  CHECK(ranged.request->selects_due(2000));
  CHECK(!ranged.request->selects_due(2001));

  auto r = parse({{"AMQ_SCHEDULER_ACTION", "REMOVE"}, {"scheduledJobId", "ID:b-1-7"}});
  REQUIRE(r.request);
  CHECK(r.request->action == scheduler_action::remove);
  CHECK(r.request->job_id == "ID:b-1-7");

  auto all = parse({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}});
  REQUIRE(all.request);
  CHECK(all.request->action == scheduler_action::remove_all);
  CHECK(!all.request->due_range);
  auto some = parse({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_START_TIME", "5"}, {"ACTION_END_TIME", "5"}});
  REQUIRE(some.request);
  CHECK(some.request->due_range == std::pair<std::int64_t, std::int64_t>{5, 5});
}

TEST_CASE("issue 16: a malformed scheduler request is refused with what is wrong") {
  auto refused = [](header_list h, std::string_view says) {
    auto p = parse_scheduler_request(h);
    CHECK(!p.request);
    CHECK_MESSAGE(p.error.find(says) != std::string::npos, p.error);
  };
  refused({}, "needs header AMQ_SCHEDULER_ACTION");
  refused({{"AMQ_SCHEDULER_ACTION", "remove"}}, "'remove' is not BROWSE, REMOVE or REMOVEALL");
  refused({{"AMQ_SCHEDULER_ACTION", "PURGE"}}, "'PURGE' is not");
  refused({{"AMQ_SCHEDULER_ACTION", "BROWSE"}}, "BROWSE needs a reply-to");
  refused({{"AMQ_SCHEDULER_ACTION", "BROWSE"}, {"reply-to", ""}}, "BROWSE needs a reply-to");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVE"}}, "REMOVE needs a scheduledJobId");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVE"}, {"scheduledJobId", "j"}, {"ACTION_START_TIME", "1"},
           {"ACTION_END_TIME", "2"}},
          "REMOVE takes no ACTION_START_TIME");
  // Times: both or neither, whole non-negative ms, start <= end.
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_START_TIME", "1"}}, "go together");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_END_TIME", "1"}}, "go together");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_START_TIME", "soon"}, {"ACTION_END_TIME", "1"}},
          "ACTION_START_TIME 'soon' is not milliseconds");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_START_TIME", "1"}, {"ACTION_END_TIME", "-2"}},
          "ACTION_END_TIME '-2' is not milliseconds");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_START_TIME", "1.5"}, {"ACTION_END_TIME", "9"}},
          "ACTION_START_TIME '1.5'");
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"ACTION_START_TIME", "9"}, {"ACTION_END_TIME", "1"}},
          "the range is empty");
  // The Java constant's name as a header: ActiveMQ ignores it and removes every job.
  refused({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"AMQ_SCHEDULER_ACTION_START_TIME", "1"},
           {"AMQ_SCHEDULER_ACTION_END_TIME", "2"}},
          "send ACTION_START_TIME");
  refused({{"AMQ_SCHEDULER_ACTION", "BROWSE"}, {"reply-to", "/queue/r"}, {"AMQ_SCHEDULER_ACTION_END_TIME", "2"}},
          "send ACTION_END_TIME");
}

TEST_CASE("issue 16: the first of repeated headers counts") {
  auto p = parse({{"AMQ_SCHEDULER_ACTION", "REMOVEALL"}, {"AMQ_SCHEDULER_ACTION", "BROWSE"}});
  REQUIRE(p.request);
  CHECK(p.request->action == scheduler_action::remove_all);
}

TEST_CASE("issue 16: a BROWSE copy keeps the sender's and AMQ_SCHEDULED_* headers, as ActiveMQ's") {
  header_list entry{{"AMQ_SCHEDULED_DELAY", "60000"}, {"custom", "c0"},          {"type", "order"},
                    {"persistent", "true"},           {"timestamp", "1234"},    {"priority", "7"},
                    {"tandem-schedule-destination", "/queue/sq"}, {"tandem-schedule-left", "0"}};
  auto h = browse_copy_headers(entry, "ID:b-1-9");
  CHECK(find_header(h, "AMQ_SCHEDULED_DELAY") == "60000");
  CHECK(find_header(h, "custom") == "c0");
  CHECK(find_header(h, "timestamp") == "1234");
  CHECK(find_header(h, "priority") == "7");
  CHECK(find_header(h, "type") == "Advisory");  // ActiveMQ marks the copies so
  CHECK(find_header(h, "original-destination") == "/queue/sq");
  CHECK(find_header(h, "scheduledJobId") == "ID:b-1-9");
  CHECK(!find_header(h, "persistent"));
  CHECK(!find_header(h, "tandem-schedule-destination"));
  CHECK(!find_header(h, "tandem-schedule-left"));
  CHECK(std::count_if(h.begin(), h.end(), [](const auto& kv) { return kv.first == "type"; }) == 1);
}
