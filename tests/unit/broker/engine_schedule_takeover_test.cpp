// Issue 16, takeover with pending schedules: the new master rebuilds its timer heap and
// answers a cancel by job id from the store's index alone (journal::live_index::schedules()),
// reading no entry; reading every entry cost ~60 us each (6 s at 100,000 schedules). The
// entries still fire on the new master, once, with their job id.
#include <string>

#include "tests/support/fault_file_system.h"
#include "tests/unit/broker/engine_fixture.h"

using namespace tandem::broker;
using namespace tandem::broker::test;
using tandem::test::op;

TEST_CASE("issue 16: a takeover rebuilds the schedules from the index, reading no entry; cancel by job id works") {
  tandem::test::fault_file_system disk;
  fixture fx(fixture::default_config(), true, disk);
  const auto t0 = fx.now_ms;
  {
    client p(fx, connected);
    for (int i = 0; i < 20; ++i)
      p.send("/queue/later", "m" + std::to_string(i),
             {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", std::to_string(1000 * (i + 1))}});
    fx.settle();
  }
  auto list = fx.scheduled_page(0, 100);
  REQUIRE(list["total"] == 20);
  const std::string first = list["items"][0]["job_id"];
  const std::string second = list["items"][1]["job_id"];

  // The takeover, step by step so the engine's own reads can be counted: the store recovers
  // (it reads its log), then the engine recovers from the store.
  fx.eng.reset();
  fx.close_store();
  fx.open_store();
  const auto reads = disk.count(op::read);
  fx.eng = std::make_unique<engine>(fx.config, fx.store.get());
  fx.eng->set_wall_clock([&fx] { return fx.now_ms; });
  fx.eng->recover();
  CHECK(disk.count(op::read) == reads);  // before the fix: one read per entry
  CHECK(fx.eng->next_schedule_ms() == t0 + 1000);
  std::uint64_t cancelled = 0;
  CHECK(fx.eng->cancel_scheduled(first, [&](std::error_code ec, std::uint64_t n) {
    CHECK(!ec);
    cancelled = n;
  }) == 1);
  CHECK(disk.count(op::read) == reads);
  fx.settle();
  CHECK(cancelled == 1);
  CHECK(fx.eng->next_schedule_ms() == t0 + 2000);

  // The next entry fires on the new master with its job id, once.
  client c(fx, connected);
  c.subscribe("s", "/queue/later");
  fx.now_ms = t0 + 2000;
  fx.eng->fire_schedules();
  fx.settle();
  REQUIRE(c.wait_messages(1));
  CHECK(c.messages()[0].body == "m1");
  CHECK(c.messages()[0].get("scheduledJobId") == second);

  // Another takeover (from the checkpoint written at close): 18 left, the cancelled and the
  // fired one gone, the listing reads the entries it shows.
  fx.restart();
  list = fx.scheduled_page(0, 100);
  CHECK(list["total"] == 18);
  CHECK(list["items"][0]["destination"] == "/queue/later");
  CHECK(list["items"][0]["job_id"] != first);
  CHECK(list["items"][0]["job_id"] != second);
  CHECK(fx.eng->next_schedule_ms() == t0 + 3000);
  fx.settle();
}
