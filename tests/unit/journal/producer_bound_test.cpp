// Bounded dedup windows (issue 12: "a window per producer id is never evicted"): at most
// max_producers producers keep a window, the least recently recorded to goes first (ActiveMQ's
// maxProducersToAudit; the per-producer depth is producer_window, its maxAuditDepth), and
// the recency survives a restart from a checkpoint and a full replay, so a restarted broker
// evicts the same producer the running one would have.
#include <string>
#include <vector>

#include "journal/reader.h"
#include "store_fixture.h"

namespace tandem::journal::test {
namespace {

std::vector<std::string> recency(const index& idx) {
  std::vector<std::string> out;
  for (const auto* p : idx.producers_by_recency()) out.push_back(p->first);
  return out;
}

}  // namespace

TEST_CASE("dedup windows are bounded in number: the least recently recorded producer's window goes first") {
  index idx(4, 3);
  idx.record_producer("p1", 1);
  idx.record_producer("p2", 1);
  idx.record_producer("p3", 1);
  idx.record_producer("p1", 2);  // p1 is now the most recent
  idx.record_producer("p4", 1);  // a fourth: p2, the least recent, loses its window
  CHECK(idx.producer_windows().size() == 3);
  CHECK_FALSE(idx.is_duplicate("p2", 1));
  CHECK(idx.is_duplicate("p1", 1));
  CHECK(idx.is_duplicate("p3", 1));
  CHECK(recency(idx) == std::vector<std::string>{"p3", "p1", "p4"});
  CHECK(idx.producers_evicted() == 1);
  // The depth bound is per producer, as before.
  for (std::uint64_t s = 2; s <= 6; ++s) idx.record_producer("p4", s);
  CHECK(idx.producer_windows().at("p4").size() == 4);
  CHECK_FALSE(idx.is_duplicate("p4", 2));
  // 0 = no bound.
  index unbounded(4, 0);
  for (int i = 0; i < 100; ++i) unbounded.record_producer("p" + std::to_string(i), 1);
  CHECK(unbounded.producer_windows().size() == 100);
}

TEST_CASE("bounded dedup windows: a checkpoint restart and a full replay keep the same windows and recency") {
  fixture fx;
  auto o = fx.opts();
  o.producer_window = 4;
  o.max_producers = 3;
  std::vector<std::string> live_order;
  {
    auto s = fx.open(o);
    std::uint64_t seq = 0;
    auto send = [&](const std::string& producer, std::uint64_t pseq) {
      REQUIRE_FALSE(append_wait(*s, make_message(++seq + 100, {"/queue/q"}, 20, producer, pseq)).ec);
    };
    send("p1", 1);
    send("p2", 1);
    send("p3", 1);
    checkpoint_wait(*s);
    send("p1", 2);
    send("p4", 1);  // evicts p2
    send("p5", 1);  // evicts p3
    CHECK_FALSE(s->index().is_duplicate("p2", 1));
    CHECK_FALSE(s->index().is_duplicate("p3", 1));
    live_order = recency(s->index());
    CHECK(live_order == std::vector<std::string>{"p1", "p4", "p5"});
    CHECK_FALSE(s->close());
  }
  SUBCASE("full replay, no checkpoint") {
    recovery_report rep;
    auto rebuilt = rebuild_index(fs::posix_file_system(), fx.dir.path(), recovery_mode::tolerate_torn_tail, rep, 4, 3);
    REQUIRE(rebuilt.has_value());
    CHECK(recency(rebuilt.value()) == live_order);
    CHECK(rebuilt.value().is_duplicate("p1", 2));
    CHECK_FALSE(rebuilt.value().is_duplicate("p2", 1));
  }
  SUBCASE("restart from the close checkpoint, then one more producer evicts the least recent") {
    auto s = fx.open(o);
    CHECK(recency(s->index()) == live_order);
    REQUIRE_FALSE(append_wait(*s, make_message(500, {"/queue/q"}, 20, "p6", 1)).ec);
    CHECK_FALSE(s->index().is_duplicate("p1", 1));  // p1 was the least recent
    CHECK(s->index().is_duplicate("p4", 1));
    CHECK(s->index().is_duplicate("p5", 1));
    CHECK(s->index().is_duplicate("p6", 1));
    CHECK_FALSE(s->close());
  }
}

}  // namespace tandem::journal::test
