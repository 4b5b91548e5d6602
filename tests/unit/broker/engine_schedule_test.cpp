// Issue 16, scheduled delivery in the engine: AMQ_SCHEDULED_* SENDs are stored before the
// RECEIPT, fire at their time (the test moves the wall clock and calls fire_schedules as
// the server's timer would), survive a restart, and can be listed and cancelled.
#include "tests/unit/broker/engine_fixture.h"

#include <set>

#include <nlohmann/json.hpp>

#include "journal/format.h"

using namespace tandem::broker;
using namespace tandem::broker::test;

namespace {

// Moves the clock to `ms` and fires what is due, as schedule_timer does; then lets the
// journal complete the firings.
void advance_to(fixture& fx, std::int64_t ms) {
  fx.now_ms = ms;
  fx.eng->fire_schedules();
  fx.settle();
}

}  // namespace

TEST_CASE("issue 16: a delayed message is stored at once and delivered only at its time") {
  fixture fx;
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/queue/a");
  const auto t0 = fx.now_ms;
  p.send("/queue/a", "later", {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "5000"}});
  fx.settle();
  CHECK(c.messages().empty());
  CHECK(fx.eng->next_schedule_ms() == t0 + 5000);
  advance_to(fx, t0 + 4999);
  CHECK(c.messages().empty());
  advance_to(fx, t0 + 5000);
  REQUIRE(c.wait_messages(1));
  auto m = c.messages()[0];
  CHECK(m.body == "later");
  CHECK(m.get("scheduledJobId").has_value());
  CHECK(!m.get("AMQ_SCHEDULED_DELAY"));
  CHECK(!m.get("tandem-schedule-destination"));
  CHECK(!fx.eng->next_schedule_ms());
}

TEST_CASE("issue 16: period and repeat deliver repeat + 1 copies, each with its own message-id") {
  fixture fx;
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/topic/t");
  const auto t0 = fx.now_ms;
  p.send("/topic/t", "tick", {{"AMQ_SCHEDULED_PERIOD", "100"}, {"AMQ_SCHEDULED_REPEAT", "3"}});
  for (int i = 0; i <= 5; ++i) advance_to(fx, t0 + i * 100);
  REQUIRE(c.wait_messages(4));
  fx.settle();
  auto ms = c.messages();
  CHECK(ms.size() == 4);
  std::set<std::string> ids;
  for (const auto& m : ms) ids.insert(std::string(m.get("message-id").value_or("")));
  CHECK(ids.size() == 4);
  CHECK(ms[0].get("scheduledJobId") == ms[3].get("scheduledJobId"));
}

TEST_CASE("issue 16: a schedule survives a restart, and a time missed while down fires at once, once") {
  fixture fx;
  const auto t0 = fx.now_ms;
  {
    client p(fx, connected);
    p.send("/queue/r", "kept", {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "1000"},
                                {"AMQ_SCHEDULED_PERIOD", "1000"}, {"AMQ_SCHEDULED_REPEAT", "1"}});
    advance_to(fx, t0 + 1000);  // first firing, before the "failover"
  }
  fx.restart();
  CHECK(fx.eng->next_schedule_ms() == t0 + 2000);
  advance_to(fx, t0 + 60'000);  // the second time passed while down
  client c(fx, connected);
  c.subscribe("s", "/queue/r", "client-individual");
  REQUIRE(c.wait_messages(2));
  fx.settle();
  CHECK(c.messages().size() == 2);  // the first (persistent, waited on the queue) and the second
  CHECK(!fx.eng->next_schedule_ms());
  fx.restart();
  CHECK(!fx.eng->next_schedule_ms());
}

TEST_CASE("issue 16: scheduled entries are listed in due order and cancelled by job id or all") {
  fixture fx;
  client p(fx, connected);
  p.send("/queue/x", "b", {{"AMQ_SCHEDULED_DELAY", "2000"}});
  p.send("/queue/x", "a", {{"AMQ_SCHEDULED_DELAY", "1000"}});
  p.send("/queue/y", "c", {{"AMQ_SCHEDULED_CRON", "0 0 * * *"}});
  auto list = fx.scheduled_page(0, 2);
  CHECK(list["total"] == 3);
  REQUIRE(list["items"].size() == 2);
  CHECK(list["items"][0]["destination"] == "/queue/x");
  CHECK(list["items"][0]["delay_ms"] == "1000");
  CHECK(list["items"][1]["delay_ms"] == "2000");
  CHECK(fx.scheduled_page(2, 2)["items"][0]["cron"] == "0 0 * * *");
  const std::string job = list["items"][0]["job_id"];
  std::uint64_t cancelled = 99;
  CHECK(fx.eng->cancel_scheduled(job, [&](std::error_code ec, std::uint64_t n) { CHECK(!ec); cancelled = n; }) == 1);
  fx.settle();
  CHECK(cancelled == 1);
  CHECK(fx.eng->cancel_scheduled("ID:no-such-job", {}) == 0);
  fx.restart();
  CHECK(fx.scheduled_page(0, 10)["total"] == 2);
  CHECK(fx.eng->cancel_scheduled("", {}) == 2);
  fx.settle();
  fx.restart();
  CHECK(fx.scheduled_page(0, 10)["total"] == 0);
}

TEST_CASE("issue 16: malformed or unsupported schedules get an ERROR and store nothing") {
  fixture fx;
  {
    client p(fx, connected);
    p.frame("SEND", {{"destination", "/queue/a"}, {"AMQ_SCHEDULED_DELAY", "soon"}, {"receipt", "r"}});
    REQUIRE(p.last_error());
    CHECK(p.last_error()->get("message") == "bad schedule");
    CHECK(p.last_error()->body.find("AMQ_SCHEDULED_DELAY 'soon'") != std::string::npos);
  }
  {
    client p(fx, connected);  // refused inside a transaction too, at the SEND
    p.frame("BEGIN", {{"transaction", "tx"}});
    p.frame("SEND", {{"destination", "/queue/a"}, {"transaction", "tx"}, {"AMQ_SCHEDULED_DELAY", "soon"}});
    REQUIRE(p.last_error());
    CHECK(p.last_error()->body.find("AMQ_SCHEDULED_DELAY 'soon'") != std::string::npos);
  }
  CHECK(fx.scheduled_page(0, 10)["total"] == 0);
}

// ActiveMQ's SchedulerBroker schedules a transacted SEND when the transaction commits (the
// delay counts from the COMMIT) and drops it at ABORT. Refused before (issue 16, gap 1).
TEST_CASE("issue 16: a scheduled SEND in a transaction is stored at COMMIT, durably, and dropped by ABORT") {
  fixture fx;
  const auto t0 = fx.now_ms;
  {
    client p(fx, connected);
    p.frame("BEGIN", {{"transaction", "gone"}});
    p.send("/queue/tx", "aborted", {{"transaction", "gone"}, {"AMQ_SCHEDULED_DELAY", "100"}});
    p.frame("ABORT", {{"transaction", "gone"}, {"receipt", "ra"}});
    REQUIRE(p.wait_receipt("ra"));
    CHECK(fx.scheduled_page(0, 10)["total"] == 0);

    p.frame("BEGIN", {{"transaction", "tx"}});
    p.send("/queue/tx", "kept", {{"transaction", "tx"}, {"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "1000"},
                                 {"tandem-producer-id", "p1"}, {"tandem-producer-seq", "7"}});
    p.send("/queue/plain", "with it", {{"transaction", "tx"}, {"persistent", "true"}});
    CHECK(fx.scheduled_page(0, 10)["total"] == 0);  // nothing before the COMMIT
    fx.now_ms = t0 + 500;
    p.frame("COMMIT", {{"transaction", "tx"}, {"receipt", "rc"}});
    REQUIRE(p.wait_receipt("rc"));
    REQUIRE(!p.last_error());
  }
  CHECK(fx.eng->next_schedule_ms() == t0 + 1500);  // from the COMMIT's time
  // The entry was durable with the COMMIT: a restart (or failover) keeps it, once.
  fx.restart();
  CHECK(fx.scheduled_page(0, 10)["total"] == 1);
  CHECK(fx.eng->next_schedule_ms() == t0 + 1500);
  {
    // A resend of the committed SEND (the producer failed over before the RECEIPT) adds nothing.
    client p(fx, connected);
    p.frame("BEGIN", {{"transaction", "again"}});
    p.send("/queue/tx", "kept", {{"transaction", "again"}, {"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "1000"},
                                 {"tandem-producer-id", "p1"}, {"tandem-producer-seq", "7"}});
    p.frame("COMMIT", {{"transaction", "again"}, {"receipt", "rc2"}});
    REQUIRE(p.wait_receipt("rc2"));
  }
  CHECK(fx.scheduled_page(0, 10)["total"] == 1);
  client c(fx, connected);
  c.subscribe("s", "/queue/tx");
  advance_to(fx, t0 + 1499);
  CHECK(c.messages().empty());
  advance_to(fx, t0 + 1500);
  REQUIRE(c.wait_messages(1));
  fx.settle();
  CHECK(c.bodies() == std::vector<std::string>{"kept"});
  CHECK(c.messages()[0].get("scheduledJobId").has_value());
  CHECK(!fx.eng->next_schedule_ms());
}

TEST_CASE("issue 16: a transacted scheduled SEND without a store is scheduled at COMMIT") {
  fixture fx(fixture::default_config(), false);
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/topic/t");
  const auto t0 = fx.now_ms;
  p.frame("BEGIN", {{"transaction", "tx"}});
  p.send("/topic/t", "tick", {{"transaction", "tx"}, {"AMQ_SCHEDULED_PERIOD", "100"}, {"AMQ_SCHEDULED_REPEAT", "1"}});
  CHECK(!fx.eng->next_schedule_ms());
  p.frame("COMMIT", {{"transaction", "tx"}, {"receipt", "rc"}});
  REQUIRE(p.wait_receipt("rc"));
  for (int i = 0; i <= 2; ++i) advance_to(fx, t0 + i * 100);
  REQUIRE(c.wait_messages(2));
  CHECK(c.messages().size() == 2);
}

TEST_CASE("issue 16: a message with scheduledJobId is delivered at once (ActiveMQ)") {
  fixture fx;
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/queue/now");
  p.send("/queue/now", "x", {{"AMQ_SCHEDULED_DELAY", "5000"}, {"scheduledJobId", "old"}});
  REQUIRE(c.wait_messages(1));
  CHECK(!fx.eng->next_schedule_ms());
}

// The io thread did not sustain one journal append and one completion per firing at 6,667
// firings a second (bench/results/scheduler.md, Run A): entries due at one timer expiry
// fire as one batch (scheduled.cpp, "rounds"). One append, in (due, seq) order, and the
// batch is the firing's only record: a restart neither fires them again nor loses one.
TEST_CASE("issue 16: entries due at one timer expiry fire as one journal append, in due order, once") {
  fixture fx;
  const auto t0 = fx.now_ms;
  std::vector<std::string> expected[4];
  {
    client p(fx, connected);
    for (int i = 0; i < 40; ++i) {
      const int extra = (i * 3) % 4;  // due at t0 + 1000 .. t0 + 1003, sent out of due order
      p.send("/queue/round", "m" + std::to_string(i),
             {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", std::to_string(1000 + extra)}});
      expected[extra].push_back("m" + std::to_string(i));
    }
  }
  fx.settle();
  const auto appends = fx.store->stats().appends.load();
  advance_to(fx, t0 + 1003);
  // The round, and the queue's destination_create (its first persistent message).
  CHECK(fx.store->stats().appends.load() - appends == 1 + 1);
  CHECK(!fx.eng->next_schedule_ms());
  fx.restart();
  CHECK(!fx.eng->next_schedule_ms());
  advance_to(fx, t0 + 60'000);
  client c(fx, connected);
  c.subscribe("s", "/queue/round", "client-individual");
  REQUIRE(c.wait_messages(40));
  fx.settle();
  std::vector<std::string> in_due_order;
  for (const auto& part : expected) in_due_order.insert(in_due_order.end(), part.begin(), part.end());
  CHECK(c.bodies() == in_due_order);
}

// The next state of a repeating entry is offered to the store's cache as it is appended
// (journal::message_store::remember), so its next firing reads nothing: the round is
// appended by fire_schedules itself. The first firing read its entries off the io thread.
TEST_CASE("issue 16: a round of repeating entries fires as one append each time, the second from the cache") {
  fixture fx;
  const auto t0 = fx.now_ms;
  client p(fx, connected), c(fx, connected);
  c.subscribe("s", "/queue/again", "client-individual");  // no ACK: deliveries append nothing
  for (int i = 0; i < 10; ++i)
    p.send("/queue/again", "r" + std::to_string(i),
           {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "100"}, {"AMQ_SCHEDULED_PERIOD", "100"},
            {"AMQ_SCHEDULED_REPEAT", "1"}});
  fx.settle();
  auto appends = fx.store->stats().appends.load();
  fx.now_ms = t0 + 100;
  fx.eng->fire_schedules();
  CHECK(fx.store->stats().appends.load() == appends);  // the entries are being read
  fx.settle();
  CHECK(fx.store->stats().appends.load() - appends == 1 + 1);  // and the queue's destination_create
  REQUIRE(c.wait_messages(10));
  appends = fx.store->stats().appends.load();
  fx.now_ms = t0 + 200;
  fx.eng->fire_schedules();
  CHECK(fx.store->stats().appends.load() - appends == 1);  // at once: every body in memory
  fx.settle();
  REQUIRE(c.wait_messages(20));
  fx.settle();
  CHECK(c.messages().size() == 20);
  CHECK(!fx.eng->next_schedule_ms());
}

// A round's batch must fit in a journal segment (1 MiB here): a round is cut at
// round_max_bytes, and each part is its own atomic batch; nothing is lost, doubled or reordered.
TEST_CASE("issue 16: a round larger than round_max_bytes is cut into several batches") {
  fixture fx;
  const auto t0 = fx.now_ms;
  client p(fx, connected);
  std::vector<std::string> bodies;
  for (int i = 0; i < 6; ++i) {
    bodies.push_back(std::string(100 << 10, static_cast<char>('a' + i)));
    p.send("/queue/big", bodies.back(), {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "50"}});
  }
  fx.settle();
  const auto appends = fx.store->stats().appends.load();
  advance_to(fx, t0 + 50);
  // 3 x 100 KiB reach 256 KiB: two rounds; and the queue's destination_create.
  CHECK(fx.store->stats().appends.load() - appends == 2 + 1);
  client c(fx, connected);
  c.subscribe("s", "/queue/big", "client-individual");
  REQUIRE(c.wait_messages(6));
  fx.settle();
  CHECK(c.bodies() == bodies);
  CHECK(!fx.eng->next_schedule_ms());
}

// Bodies stay on disk until their entry fires; the timer wakes prefetch_ms / 2 before an
// entry whose body was not asked for, and the store reads it into its cache then, so the
// firing waits for no read (scheduled.cpp, prefetch_due_soon).
TEST_CASE("issue 16: an entry due soon is read into the store's cache before its time") {
  fixture fx;
  const auto t0 = fx.now_ms;
  {
    client p(fx, connected);
    p.send("/queue/soon", "soon", {{"persistent", "true"}, {"AMQ_SCHEDULED_DELAY", "1000"}});
  }
  fx.restart();  // recovery leaves no body in the cache
  const std::string key(tandem::journal::format::scheduler_target);
  REQUIRE(fx.store->index().messages(key));
  const auto seq = fx.store->index().messages(key)->begin()->first;
  REQUIRE(!fx.store->cached(key, seq));
  CHECK(fx.eng->next_schedule_ms() == t0 + 1000);
  CHECK(fx.eng->next_wake_ms() == t0 + 950);
  client c(fx, connected);
  c.subscribe("s", "/queue/soon");
  advance_to(fx, t0 + 950);  // the early wake: nothing fires, the entry is read
  REQUIRE(fx.pump([&] { return fx.store->cached(key, seq) != nullptr; }));
  CHECK(c.messages().empty());
  CHECK(fx.eng->next_wake_ms() == t0 + 1000);
  const auto appends = fx.store->stats().appends.load();
  fx.now_ms = t0 + 1000;
  fx.eng->fire_schedules();
  // Fired at once, from the cache (and the queue's destination_create).
  CHECK(fx.store->stats().appends.load() - appends == 1 + 1);
  REQUIRE(c.wait_messages(1));
  CHECK(c.bodies() == std::vector<std::string>{"soon"});
}
