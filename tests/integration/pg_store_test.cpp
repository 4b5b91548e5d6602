// The PostgreSQL store (journal/pg) on a real PostgreSQL 15 primary with a synchronous
// standby (tests/pg/pg_cluster.sh), below the broker: schema, lease, group commit,
// recovery by a successor, dedup windows, reads, and the fence. Skipped (TANDEM_SKIPPED)
// where the harness cannot run PostgreSQL.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "journal/errc.h"
#include "journal/pg/lease.h"
#include "journal/pg/schema.h"
#include "journal/pg/store.h"

using namespace tandem::journal;
using namespace std::chrono_literals;

namespace {

const std::string cluster_script = std::string(TANDEM_SOURCE_DIR) + "/tests/pg/pg_cluster.sh";

struct cluster {
  std::string dir, uri;
  bool ok = false;
  cluster() {
    char tmpl[] = "/tmp/tandem-pgtest-XXXXXX";
    if (!mkdtemp(tmpl)) return;
    dir = tmpl;
    const int rc = std::system((cluster_script + " start " + dir + " >/dev/null").c_str());
    if (rc == -1 || WEXITSTATUS(rc) != 0) return;
    std::ifstream env(dir + "/env");
    for (std::string line; std::getline(env, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      auto key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "PGPASSFILE") setenv("PGPASSFILE", value.c_str(), 1);
      if (key == "TANDEM_PG_URI") uri = value;
    }
    ok = !uri.empty();
  }
  ~cluster() { (void)std::system((cluster_script + " stop " + dir + " >/dev/null 2>&1").c_str()); }
};

cluster& shared_cluster() {
  static cluster c;
  return c;
}

bool cluster_command(const cluster& c, const std::string& what) {
  const int rc = std::system((cluster_script + " " + what + " " + c.dir).c_str());
  return rc != -1 && WEXITSTATUS(rc) == 0;
}

// The store's owner thread: the test thread runs what the store posts.
struct owner {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> q;
  void post(std::function<void()> f) {
    {
      std::lock_guard lk(mu);
      q.push_back(std::move(f));
    }
    cv.notify_one();
  }
  bool run_until(const std::function<bool()>& done, std::chrono::seconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      std::unique_lock lk(mu);
      if (!cv.wait_until(lk, deadline, [this] { return !q.empty(); })) return false;
      auto f = std::move(q.front());
      q.pop_front();
      lk.unlock();
      f();
    }
    return true;
  }
};

message_add send(std::uint64_t seq, int i) {
  message_add m;
  m.msg_seq = seq;
  m.message_id = "ID:" + std::to_string(i);
  m.producer_id = "producer-1";
  m.producer_seq = static_cast<std::uint64_t>(i) + 1;
  m.body = "body-" + std::to_string(i);
  m.targets = {"/queue/a"};
  return m;
}

}  // namespace

TEST_CASE("PostgreSQL store: group commit, a successor recovers everything, a deposed writer commits nothing") {
  auto& c = shared_cluster();
  if (!c.ok) {
    MESSAGE("TANDEM_SKIPPED: PostgreSQL 15 cannot run here (tests/pg/pg_cluster.sh)");
    return;
  }
  std::string error, detail;
  auto admin = pg::connection::open(c.uri, {}, error);
  REQUIRE_MESSAGE(admin, error);
  pg::store_meta meta;
  CHECK(pg::read_meta(*admin, meta, detail) == errc::not_a_store);
  REQUIRE_FALSE(pg::create_schema(*admin, detail));
  REQUIRE_FALSE(pg::read_meta(*admin, meta, detail));

  pg::lease_options lo{c.uri, "t", "tcp://127.0.0.1:1", 3000ms, 100ms};
  auto no_wait = [](const pg::lease_holder&) {};
  auto no_error = [](const std::string&) {};
  std::error_code ec;
  pg::lease first(lo);
  auto epoch1 = first.acquire(no_wait, no_error, ec);
  REQUIRE(epoch1);
  CHECK(*epoch1 == 1);

  owner o;
  pg::options so;
  so.conninfo = c.uri;
  so.epoch = *epoch1;
  so.post = [&o](std::function<void()> f) { o.post(std::move(f)); };
  pg::open_report report;
  auto opened = pg::store::open(so, report);
  REQUIRE_MESSAGE(opened, report.detail);
  auto& s1 = *opened.value();

  // 200 sends appended in a burst: far fewer transactions than sends.
  int completed = 0, failures = 0;
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 200; ++i) {
    seqs.push_back(s1.allocate_msg_seq());
    auto m = send(seqs.back(), i);
    if (i == 120) {  // issue 16: put back with a redelivery delay (message_add flags bit 2)
      m.deliver_at_ms = 1'700'000'000'123;
      m.redeliveries = 3;
    }
    s1.append(change{std::move(m)}, [&](std::error_code e, std::uint64_t) {
      ++completed;
      if (e) ++failures;
    });
  }
  REQUIRE(o.run_until([&] { return completed == 200; }));
  CHECK(failures == 0);
  CHECK(s1.stats().commits.load() < 100);
  REQUIRE(s1.index().messages("/queue/a"));
  CHECK(s1.index().messages("/queue/a")->size() == 200);

  // Acks of the first 50, one transaction.
  batch acks;
  for (int i = 0; i < 50; ++i) acks.items.push_back(message_remove{"/queue/a", seqs[i]});
  bool acked = false;
  s1.append(change{std::move(acks)}, [&](std::error_code e, std::uint64_t) { acked = !e; });
  REQUIRE(o.run_until([&] { return acked; }));
  CHECK_FALSE(s1.close());
  REQUIRE_FALSE(first.release(detail));

  // A successor: epoch 2, the 150 unacked messages, the dedup window, the bodies.
  pg::lease second(lo);
  auto epoch2 = second.acquire(no_wait, no_error, ec);
  REQUIRE(epoch2);
  CHECK(*epoch2 == 2);
  so.epoch = *epoch2;
  pg::open_report report2;
  auto reopened = pg::store::open(so, report2);
  REQUIRE_MESSAGE(reopened, report2.detail);
  auto& s2 = *reopened.value();
  CHECK(report2.live_messages == 150);
  CHECK(s2.is_duplicate("producer-1", 1));
  CHECK(s2.is_duplicate("producer-1", 200));
  CHECK(s2.allocate_msg_seq() > seqs.back());
  auto m = s2.read("/queue/a", seqs[120]);
  REQUIRE(m);
  CHECK(m.value()->body == "body-120");
  CHECK(m.value()->deliver_at_ms == 1'700'000'000'123);  // the delivery state is kept
  CHECK(m.value()->redeliveries == 3);
  CHECK(s2.read("/queue/a", seqs[10]).error() == errc::not_found);

  // read_async (issue 17, finding 8): the query runs on the store's reader thread, never in
  // the call; a read of a message that query reads ahead waits for it; what it read ahead
  // is cached; a message not live is not_found.
  CHECK(s2.reads_into_cache());
  REQUIRE_FALSE(s2.cached("/queue/a", seqs[60]));
  std::vector<std::string> async_bodies(2);
  std::error_code gone;
  int answered = 0;
  s2.read_async("/queue/a", seqs[60], [&](result<std::shared_ptr<const message>> r) {
    REQUIRE(r);
    async_bodies[0] = r.value()->body;
    ++answered;
  });
  s2.read_async("/queue/a", seqs[61], [&](result<std::shared_ptr<const message>> r) {
    REQUIRE(r);
    async_bodies[1] = r.value()->body;
    ++answered;
  });
  s2.read_async("/queue/a", seqs[10], [&](result<std::shared_ptr<const message>> r) {
    gone = r ? std::error_code{} : r.error();
    ++answered;
  });
  CHECK(answered == 0);  // answered on the owner thread, later
  REQUIRE(o.run_until([&] { return answered == 3; }));
  CHECK(async_bodies == std::vector<std::string>{"body-60", "body-61"});
  CHECK(gone == errc::not_found);
  REQUIRE(s2.cached("/queue/a", seqs[119]));
  CHECK(s2.cached("/queue/a", seqs[119])->body == "body-119");

  // A newer master bumps the epoch behind s2's back: s2 can commit nothing more.
  REQUIRE(admin->exec("update tandem_lease set epoch = epoch + 1").ok());
  std::error_code fenced, after;
  bool got = false, got_after = false;
  const auto late_seq = s2.allocate_msg_seq();
  s2.append(change{send(late_seq, 999)}, [&](std::error_code e, std::uint64_t) {
    fenced = e;
    got = true;
  });
  REQUIRE(o.run_until([&] { return got; }));
  CHECK(fenced == errc::fenced);
  CHECK(s2.failed());
  s2.append(change{send(s2.allocate_msg_seq(), 1000)}, [&](std::error_code e, std::uint64_t) {
    after = e;
    got_after = true;
  });
  REQUIRE(o.run_until([&] { return got_after; }));
  CHECK(after == errc::journal_failed);
  auto rows = admin->exec("select count(*) from tandem_message where msg_seq = $1",
                          {pg::param::number(static_cast<long long>(late_seq))});
  REQUIRE(rows.ok());
  CHECK(rows.integer(0, 0) == 0);
  s2.close();
}

namespace {

// A master of the shared cluster's store, with a fresh lease. The store is created here
// when no earlier case of this process made it: CTest runs each case in a process (and
// cluster) of its own, so a case must not depend on the first one having run.
struct master {
  owner o;
  std::unique_ptr<pg::lease> l;
  std::unique_ptr<pg::store> s;
  std::string detail;
  master(const std::string& uri, pg::connection& admin, std::chrono::milliseconds io_timeout,
         std::size_t max_producers = 0) {
    pg::store_meta meta;
    if (pg::read_meta(admin, meta, detail) == errc::not_a_store) REQUIRE_FALSE(pg::create_schema(admin, detail));
    REQUIRE(admin.exec("update tandem_lease set released = true").ok());
    l = std::make_unique<pg::lease>(pg::lease_options{uri, "t", "tcp://127.0.0.1:1", 10000ms, 100ms});
    std::error_code ec;
    auto epoch = l->acquire([](const pg::lease_holder&) {}, [](const std::string&) {}, ec);
    REQUIRE(epoch);
    pg::options so;
    so.conninfo = uri;
    so.epoch = *epoch;
    so.io_timeout = io_timeout;
    so.reconnect_for = 20s;
    so.max_producers = max_producers;
    so.post = [this](std::function<void()> f) { o.post(std::move(f)); };
    pg::open_report report;
    auto opened = pg::store::open(so, report);
    REQUIRE_MESSAGE(opened, report.detail);
    s = std::move(opened).value();
  }
  // Appends one send; `done` is set when it completes, `result` to its error.
  void send_one(std::uint64_t seq, int i, bool& done, std::error_code& result) {
    s->append(change{send(seq, i)}, [&done, &result](std::error_code e, std::uint64_t) {
      result = e;
      done = true;
    });
  }
};

// A connection as the store's role; nullopt (reported as skipped) where PostgreSQL cannot run.
std::optional<pg::connection> admin_of(const cluster& c) {
  if (!c.ok) {
    MESSAGE("TANDEM_SKIPPED: PostgreSQL 15 cannot run here (tests/pg/pg_cluster.sh)");
    return std::nullopt;
  }
  std::string error;
  auto admin = pg::connection::open(c.uri, {}, error);
  REQUIRE_MESSAGE(admin, error);
  return admin;
}

long long rows_of(pg::connection& admin, std::uint64_t msg_seq) {
  auto r = admin.exec("select (select count(*) from tandem_message where msg_seq = $1) + "
                      "(select count(*) from tandem_entry where msg_seq = $1)",
                      {pg::param::number(static_cast<long long>(msg_seq))});
  REQUIRE_MESSAGE(r.ok(), r.error);
  return r.integer(0, 0);
}

}  // namespace

TEST_CASE("PostgreSQL store: no RECEIPT while the synchronous standby does not answer, however long (issue 14)") {
  auto& c = shared_cluster();
  auto admin = admin_of(c);
  if (!admin) return;
  // io_timeout is the connections' statement_timeout: it must not end the COMMIT's wait for
  // the standby (PostgreSQL would then report the COMMIT done with one copy).
  master m(c.uri, *admin, 1000ms);
  REQUIRE(cluster_command(c, "pause-standby"));
  bool done = false;
  std::error_code result;
  const auto seq = m.s->allocate_msg_seq();
  m.send_one(seq, 1, done, result);
  CHECK_FALSE(m.o.run_until([&] { return done; }, 4s));
  REQUIRE(cluster_command(c, "resume-standby"));
  REQUIRE(m.o.run_until([&] { return done; }));
  CHECK_FALSE(result);
  CHECK(rows_of(*admin, seq) == 2);
  m.s->close();
}

TEST_CASE("PostgreSQL store: the writer reconnects after its connection broke, and a lost COMMIT answer is settled once "
          "(issue 14)") {
  auto& c = shared_cluster();
  auto admin = admin_of(c);
  if (!admin) return;
  master m(c.uri, *admin, 3000ms);
  auto terminate_writer = [&] {
    // The newest writer is this case's (an earlier case's may still be exiting).
    auto r = admin->exec("select count(pg_terminate_backend(pid, 5000)) from (select pid from pg_stat_activity "
                         "where application_name = 'tandemd-writer' order by backend_start desc limit 1) w");
    REQUIRE_MESSAGE(r.ok(), r.error);
    return r.integer(0, 0);
  };

  SUBCASE("an idle writer's backend is terminated: the next group commits on a new connection") {
    REQUIRE(terminate_writer() == 1);
    bool done = false;
    std::error_code result;
    const auto seq = m.s->allocate_msg_seq();
    m.send_one(seq, 2, done, result);
    REQUIRE(m.o.run_until([&] { return done; }));
    CHECK_FALSE(result);
    CHECK_FALSE(m.s->failed());
    CHECK(m.s->stats().reconnects.load() == 1);
    CHECK(rows_of(*admin, seq) == 2);
  }

  SUBCASE("the backend dies after its COMMIT was written but before the answer: sent again, stored once") {
    REQUIRE(cluster_command(c, "pause-standby"));
    bool done = false;
    std::error_code result;
    const auto seq = m.s->allocate_msg_seq();
    m.send_one(seq, 3, done, result);
    // Wait until the COMMIT is written locally and waits for the standby, then kill it:
    // PostgreSQL keeps such a transaction committed; the writer sees only a broken connection.
    bool waiting = false;
    for (int i = 0; i < 200 && !waiting; ++i) {
      auto r = admin->exec("select count(*) from pg_stat_activity where application_name = 'tandemd-writer' and "
                           "wait_event = 'SyncRep'");
      waiting = r.ok() && r.integer(0, 0) == 1;
      if (!waiting) std::this_thread::sleep_for(50ms);
    }
    REQUIRE(waiting);
    REQUIRE(terminate_writer() == 1);
    CHECK(rows_of(*admin, seq) == 2);  // committed, though the writer never heard it
    REQUIRE(cluster_command(c, "resume-standby"));
    REQUIRE(m.o.run_until([&] { return done; }));
    CHECK_FALSE(result);
    CHECK_FALSE(m.s->failed());
    CHECK(m.s->stats().reconnects.load() == 1);
    CHECK(rows_of(*admin, seq) == 2);
    // And the store goes on.
    bool next_done = false;
    std::error_code next_result;
    m.send_one(m.s->allocate_msg_seq(), 4, next_done, next_result);
    REQUIRE(m.o.run_until([&] { return next_done; }));
    CHECK_FALSE(next_result);
  }

  SUBCASE("after reconnecting, a newer epoch in the lease row fences the writer: nothing is committed") {
    REQUIRE(admin->exec("update tandem_lease set epoch = epoch + 1").ok());
    REQUIRE(terminate_writer() == 1);
    bool done = false;
    std::error_code result;
    const auto seq = m.s->allocate_msg_seq();
    m.send_one(seq, 5, done, result);
    REQUIRE(m.o.run_until([&] { return done; }));
    CHECK(result == errc::fenced);
    CHECK(rows_of(*admin, seq) == 0);
  }
  m.s->close();
}

namespace {

// The producers that have tandem_producer rows, comma-separated in name order.
std::string producers_with_rows(pg::connection& admin) {
  auto r = admin.exec("select coalesce(string_agg(distinct producer_id, ',' order by producer_id), '') from tandem_producer");
  REQUIRE_MESSAGE(r.ok(), r.error);
  return std::string(r.text(0, 0));
}

}  // namespace

TEST_CASE("PostgreSQL store: dedup windows of max_producers producers are kept, the least recent go with their rows "
          "(issue 14)") {
  auto& c = shared_cluster();
  auto admin = admin_of(c);
  if (!admin) return;
  pg::store_meta meta;
  std::string detail;
  if (pg::read_meta(*admin, meta, detail) == errc::not_a_store) REQUIRE_FALSE(pg::create_schema(*admin, detail));
  REQUIRE(admin->exec("delete from tandem_producer").ok());  // an earlier case's producer
  auto send_from = [](master& m, const char* producer, std::uint64_t seq) {
    auto msg = send(m.s->allocate_msg_seq(), static_cast<int>(seq));
    msg.producer_id = producer;
    msg.producer_seq = seq;
    bool done = false;
    std::error_code result;
    m.s->append(change{std::move(msg)}, [&](std::error_code e, std::uint64_t) {
      result = e;
      done = true;
    });
    REQUIRE(m.o.run_until([&] { return done; }));
    CHECK_FALSE(result);
  };
  {
    master m(c.uri, *admin, 3000ms, 2);
    for (const char* p : {"p1", "p2", "p3"})
      for (std::uint64_t seq = 1; seq <= 3; ++seq) send_from(m, p, seq);
    CHECK_FALSE(m.s->is_duplicate("p1", 1));  // the least recent of three, bound two
    CHECK(m.s->is_duplicate("p2", 3));
    CHECK(m.s->is_duplicate("p3", 1));
    CHECK(producers_with_rows(*admin) == "p2,p3");
    m.s->close();
  }
  // A successor with a smaller bound keeps the most recent producer; the other's rows go
  // with its first transaction, and a new producer then evicts the kept one.
  master m(c.uri, *admin, 3000ms, 1);
  CHECK(m.s->is_duplicate("p3", 3));
  CHECK_FALSE(m.s->is_duplicate("p2", 3));
  send_from(m, "p4", 1);
  CHECK(m.s->is_duplicate("p4", 1));
  CHECK_FALSE(m.s->is_duplicate("p3", 3));
  CHECK(producers_with_rows(*admin) == "p4");
  m.s->close();
}

TEST_CASE("PostgreSQL store: a fence barrier completes after the changes before it and fails once a newer epoch exists (issue 12)") {
  auto& c = shared_cluster();
  auto admin = admin_of(c);
  if (!admin) return;
  master m(c.uri, *admin, 5000ms);
  std::vector<std::string> order;
  std::error_code barrier_ec{make_error_code(std::errc::io_error)};
  const auto seq = m.s->allocate_msg_seq();
  m.s->append(change{send(seq, 1)}, [&](std::error_code e, std::uint64_t) { order.push_back(e ? "send failed" : "send"); });
  m.s->fence_barrier([&](std::error_code e, std::uint64_t) {
    barrier_ec = e;
    order.push_back("barrier");
  });
  REQUIRE(m.o.run_until([&] { return order.size() == 2; }));
  CHECK(order == std::vector<std::string>{"send", "barrier"});
  CHECK_FALSE(barrier_ec);
  CHECK(rows_of(*admin, seq) == 2);  // the send before it is committed
  // A newer master bumps the epoch: a barrier alone (no change) fails on the epoch check.
  REQUIRE(admin->exec("update tandem_lease set epoch = epoch + 1").ok());
  bool done = false;
  m.s->fence_barrier([&](std::error_code e, std::uint64_t) {
    barrier_ec = e;
    done = true;
  });
  REQUIRE(m.o.run_until([&] { return done; }));
  CHECK(barrier_ec == errc::fenced);
  CHECK(m.s->failed());
  m.s->close();
}
