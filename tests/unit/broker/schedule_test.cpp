// Issue 16, scheduled delivery: the pure parts (broker/engine/cron.h, schedule.h).
#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <set>

#include "broker/engine/cron.h"
#include "broker/engine/schedule.h"

using namespace tandem::broker::detail;

namespace {

// ms since the epoch of a UTC date and time.
std::int64_t utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0) {
  using namespace std::chrono;
  const sys_days day{year{y} / month{mo} / d};
  return (day.time_since_epoch().count() * 86'400'000LL) + h * 3'600'000LL + mi * 60'000LL;
}

cron_expression cron(std::string_view text) {
  std::string error;
  auto c = cron_expression::parse(text, error);
  INFO(error);
  REQUIRE(c);
  return *c;
}

std::string cron_error(std::string_view text) {
  std::string error;
  CHECK(!cron_expression::parse(text, error));
  return error;
}

}  // namespace

TEST_CASE("cron: every minute fires at the next whole minute, strictly after") {
  auto c = cron("* * * * *");
  CHECK(c.next_after(utc(2026, 12, 6, 11, 30)) == utc(2026, 12, 6, 11, 31));
  CHECK(c.next_after(utc(2026, 12, 6, 11, 30) + 59'999) == utc(2026, 12, 6, 11, 31));
}

TEST_CASE("cron: fields, ranges, steps and lists") {
  CHECK(cron("0 * * * *").next_after(utc(2026, 12, 6, 11, 30)) == utc(2026, 12, 6, 12, 0));
  CHECK(cron("*/15 * * * *").next_after(utc(2026, 12, 6, 11, 31)) == utc(2026, 12, 6, 11, 45));
  CHECK(cron("5,10 9-10 * * *").next_after(utc(2026, 12, 6, 10, 10)) == utc(2026, 12, 7, 9, 5));
  CHECK(cron("0 0 1 1 *").next_after(utc(2026, 12, 6)) == utc(2027, 1, 1));
  CHECK(cron("30 2 29 2 *").next_after(utc(2026, 3, 1)) == utc(2028, 2, 29, 2, 30));  // leap day
  CHECK(cron("0 12 * 6 *").next_after(utc(2026, 12, 6)) == utc(2027, 6, 1, 12, 0));
}

TEST_CASE("cron: day of week, 7 is Sunday too, and either day field matches when both are set") {
  // 2026-12-06 is a Sunday.
  CHECK(cron("0 9 * * 1").next_after(utc(2026, 12, 6)) == utc(2026, 12, 7, 9, 0));
  CHECK(cron("0 9 * * 7").next_after(utc(2026, 12, 6, 10)) == utc(2026, 12, 13, 9, 0));
  CHECK(cron("0 9 * * 0").next_after(utc(2026, 12, 6, 8)) == utc(2026, 12, 6, 9, 0));
  // Day 15 OR a Wednesday: Wednesday the 9th comes first.
  CHECK(cron("0 0 15 * 3").next_after(utc(2026, 12, 6)) == utc(2026, 12, 9));
  // Day of month restricted, weekday "*": only the 15th.
  CHECK(cron("0 0 15 * *").next_after(utc(2026, 12, 6)) == utc(2026, 12, 15));
}

TEST_CASE("cron: a date that never comes has no next time") {
  CHECK(!cron("0 0 30 2 *").next_after(utc(2026, 1, 1)));
}

TEST_CASE("cron: bad expressions are refused with the field and the reason") {
  CHECK(cron_error("* * * *").find("has 4 fields") != std::string::npos);
  CHECK(cron_error("60 * * * *").find("minute") != std::string::npos);
  CHECK(cron_error("* 24 * * *").find("outside 0-23") != std::string::npos);
  CHECK(cron_error("* * 0 * *").find("day-of-month") != std::string::npos);
  CHECK(cron_error("* * * JAN *").find("names") != std::string::npos);
  CHECK(cron_error("*/0 * * * *").find("step") != std::string::npos);
  CHECK(cron_error("5-1 * * * *").find("outside") != std::string::npos);
  CHECK(cron_error("0 0 ? * MON").find("day-of-month") != std::string::npos);
}

TEST_CASE("cron: next_after is stable from the minute before its answer, at random times") {
  std::mt19937 rng(16);
  const char* exprs[] = {"*/7 3-5 * * *", "0,30 * 1,15 * *", "15 10 * 2-4 1-5", "59 23 31 * *", "0 0 * * 6"};
  for (const char* text : exprs) {
    auto c = cron(text);
    for (int i = 0; i < 20; ++i) {
      const std::int64_t from = utc(2026, 1, 1) + static_cast<std::int64_t>(rng() % 400) * 86'400'000LL +
                                static_cast<std::int64_t>(rng() % 1440) * 60'000LL + 1234;
      auto next = c.next_after(from);
      REQUIRE(next);
      // No earlier matching minute: every minute before `next` is not a match of the walk.
      CHECK(c.next_after(*next - 60'000) == next);
      CHECK(*next > from);
      CHECK(*next - from <= 400LL * 86'400'000LL);
    }
  }
}

TEST_CASE("schedule headers: none, delay, period with repeat, cron; a job id means at once") {
  CHECK(!parse_schedule({{"persistent", "true"}}).scheduled);
  auto d = parse_schedule({{"AMQ_SCHEDULED_DELAY", "1500"}});
  CHECK(d.scheduled);
  CHECK(d.spec.delay_ms == 1500);
  auto p = parse_schedule({{"AMQ_SCHEDULED_PERIOD", "100"}, {"AMQ_SCHEDULED_REPEAT", "3"}});
  CHECK(p.spec.period_ms == 100);
  CHECK(p.spec.repeat == 3);
  auto c = parse_schedule({{"AMQ_SCHEDULED_CRON", "0 * * * *"}});
  CHECK(c.scheduled);
  CHECK(c.spec.cron);
  CHECK(!parse_schedule({{"AMQ_SCHEDULED_DELAY", "10"}, {"scheduledJobId", "x"}}).scheduled);
}

TEST_CASE("schedule headers: malformed values are refused by name") {
  CHECK(parse_schedule({{"AMQ_SCHEDULED_DELAY", "soon"}}).error.find("AMQ_SCHEDULED_DELAY 'soon'") == 0);
  CHECK(parse_schedule({{"AMQ_SCHEDULED_DELAY", "-5"}}).error.find(">= 0") != std::string::npos);
  CHECK(parse_schedule({{"AMQ_SCHEDULED_REPEAT", "-2"}}).error.find("AMQ_SCHEDULED_REPEAT") == 0);
  CHECK(parse_schedule({{"AMQ_SCHEDULED_REPEAT", "-1"}}).error.find("needs AMQ_SCHEDULED_PERIOD") != std::string::npos);
  CHECK(parse_schedule({{"AMQ_SCHEDULED_CRON", "every hour"}}).error.find("AMQ_SCHEDULED_CRON") == 0);
  CHECK(!parse_schedule({{"AMQ_SCHEDULED_CRON", "every hour"}}).scheduled);
}

TEST_CASE("firing: delay, then period and repeat deliver repeat + 1 times") {
  auto spec = parse_schedule({{"AMQ_SCHEDULED_DELAY", "1000"}, {"AMQ_SCHEDULED_PERIOD", "200"},
                              {"AMQ_SCHEDULED_REPEAT", "2"}}).spec;
  auto st = first_state(spec, 10'000);
  REQUIRE(st);
  CHECK(st->due_ms == 11'000);
  int delivered = 0;
  std::vector<std::int64_t> times;
  while (st) {
    auto p = plan_firing(spec, *st, st->due_ms);
    CHECK(!p.child);
    delivered += p.deliver;
    times.push_back(st->due_ms);
    st = p.next;
  }
  CHECK(delivered == 3);
  CHECK(times == std::vector<std::int64_t>{11'000, 11'200, 11'400});
}

TEST_CASE("firing: a time missed during a failover fires once at once and keeps the run's count") {
  auto spec = parse_schedule({{"AMQ_SCHEDULED_PERIOD", "1000"}, {"AMQ_SCHEDULED_REPEAT", "2"}}).spec;
  schedule_state st{5'000, 2};
  auto p = plan_firing(spec, st, 9'500);  // 4.5 s late
  CHECK(p.deliver);
  REQUIRE(p.next);
  CHECK(p.next->due_ms == 10'500);
  CHECK(p.next->left == 1);
}

TEST_CASE("firing: a cron entry delivers at each time, or starts a run when delay/period/repeat are set") {
  auto plain = parse_schedule({{"AMQ_SCHEDULED_CRON", "0 * * * *"}}).spec;
  auto st = first_state(plain, utc(2026, 12, 6, 11, 30));
  REQUIRE(st);
  CHECK(st->due_ms == utc(2026, 12, 6, 12, 0));
  auto p = plan_firing(plain, *st, st->due_ms + 3);
  CHECK(p.deliver);
  CHECK(!p.child);
  REQUIRE(p.next);
  CHECK(p.next->due_ms == utc(2026, 12, 6, 13, 0));

  auto run = parse_schedule({{"AMQ_SCHEDULED_CRON", "0 * * * *"}, {"AMQ_SCHEDULED_DELAY", "1000"},
                             {"AMQ_SCHEDULED_PERIOD", "1000"}, {"AMQ_SCHEDULED_REPEAT", "9"}}).spec;
  auto q = plan_firing(run, *st, st->due_ms);
  CHECK(!q.deliver);
  REQUIRE(q.child);
  CHECK(q.child->due_ms == utc(2026, 12, 6, 12, 0) + 1000);
  CHECK(q.child->left == 9);
  REQUIRE(q.next);
  // A cron entry missed for hours fires once, then goes on from now.
  auto late = plan_firing(plain, *st, utc(2026, 12, 6, 15, 10));
  CHECK(late.deliver);
  CHECK(late.next->due_ms == utc(2026, 12, 6, 16, 0));
}

TEST_CASE("fired headers lose the schedule, keep the rest and carry scheduledJobId") {
  header_list entry{{"AMQ_SCHEDULED_DELAY", "5"}, {"color", "red"}, {"tandem-schedule-destination", "/queue/a"},
                    {"tandem-schedule-left", "0"}, {"AMQ_SCHEDULED_CRON", "* * * * *"}};
  auto fired = fired_headers(entry, "ID:job");
  CHECK(fired == header_list{{"color", "red"}, {"scheduledJobId", "ID:job"}});
  auto child = entry_headers(entry, {7, 3}, true);
  CHECK(!find_header(child, "AMQ_SCHEDULED_CRON"));
  CHECK(find_header(child, "tandem-schedule-left") == "3");
  CHECK(find_header(entry_headers(entry, {7, 1}, false), "AMQ_SCHEDULED_CRON"));
}

TEST_CASE("schedule table: one heap gives entries in due order; removed and moved entries are skipped") {
  schedule_table t;
  std::mt19937 rng(7);
  std::map<std::uint64_t, std::int64_t> want;
  for (std::uint64_t seq = 1; seq <= 2000; ++seq) {
    auto due = static_cast<std::int64_t>(rng() % 5000);
    t.add(seq, {due, "job" + std::to_string(seq), nullptr});
    want[seq] = due;
  }
  for (std::uint64_t seq = 1; seq <= 2000; seq += 3) {
    CHECK(t.remove(seq));
    want.erase(seq);
  }
  t.add(2, {-1, "job2", nullptr});  // moved earlier: the old heap element is stale
  want[2] = -1;
  CHECK(t.size() == want.size());
  CHECK(t.earliest() == -1);
  CHECK(!t.pop_due(-2));
  std::int64_t last = -10;
  std::size_t popped = 0;
  while (auto e = t.pop_due(10'000)) {
    CHECK(e->second.due_ms >= last);
    CHECK(want.at(e->first) == e->second.due_ms);
    last = e->second.due_ms;
    ++popped;
  }
  CHECK(popped == want.size());
  CHECK(t.size() == 0);
  CHECK(!t.earliest());
}

TEST_CASE("schedule table: removals keep the heap bounded and pages come in due order") {
  schedule_table t;
  for (std::uint64_t round = 0; round < 50; ++round)
    for (std::uint64_t seq = 1; seq <= 100; ++seq) {
      t.remove(seq);
      t.add(seq, {static_cast<std::int64_t>(1000 - seq), "j", nullptr});
    }
  CHECK(t.size() == 100);
  CHECK(t.heap_size() <= 2 * 100 + 64);
  auto page = t.page(10, 5);
  REQUIRE(page.size() == 5);
  CHECK(page[0].first == 90);
  CHECK(page[4].first == 86);
  CHECK(t.find_job("j"));
  CHECK(t.page(100, 5).empty());
}

TEST_CASE("schedule table: due_within finds the entries due in a window from the heap's top") {
  schedule_table t;
  for (std::uint64_t seq = 1; seq <= 100; ++seq) t.add(seq, {static_cast<std::int64_t>(((seq * 37) % 100) * 10), "j", nullptr});
  // due times 0, 10, ... 990, one each, added out of order
  auto got = t.due_within(200, 300, 1000);
  std::set<std::int64_t> dues;
  for (auto seq : got) dues.insert(t.find(seq)->due_ms);
  CHECK(dues == std::set<std::int64_t>{210, 220, 230, 240, 250, 260, 270, 280, 290, 300});
  CHECK(got.size() == 10);
  // A removed entry is not reported (its heap element is stale until it surfaces).
  std::uint64_t at_250 = 0;
  for (auto seq : got)
    if (t.find(seq)->due_ms == 250) at_250 = seq;
  REQUIRE(at_250 != 0);
  t.remove(at_250);
  CHECK(t.due_within(200, 300, 1000).size() == 9);
  CHECK(t.due_within(200, 300, 4).size() == 4);
  CHECK(t.due_within(990, 5000, 10).empty());
}
