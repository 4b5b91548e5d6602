#include <doctest/doctest.h>

#include "tools/drill/mastership.h"

using namespace tandem::drill;
using std::chrono::milliseconds;

namespace {
const clock_type::time_point t0{};

observation obs(evidence_source src, std::uint32_t slot, std::uint64_t inc, int start_ms, int end_ms, bool positive,
                std::uint64_t epoch = 0) {
  observation o;
  o.source = src;
  o.slot = slot;
  o.incarnation = inc;
  o.start = t0 + milliseconds(start_ms);
  o.end = t0 + milliseconds(end_ms);
  o.positive = positive;
  o.epoch = epoch;
  return o;
}
}  // namespace

TEST_CASE("two masters in one sweep without continuity are not a double master") {
  mastership_book b;
  // b0 master at [0,5]; then it dies and b1 takes over; b1 master at [6,10]; b0 refused after.
  b.add(obs(evidence_source::health, 0, 1, 0, 5, true, 1));
  b.add(obs(evidence_source::health, 1, 1, 6, 10, true, 2));
  b.add(obs(evidence_source::health, 0, 1, 20, 21, false));
  b.add(obs(evidence_source::health, 1, 1, 20, 22, true, 2));
  CHECK(b.violations().empty());
}

TEST_CASE("proven master intervals that intersect are a double master") {
  mastership_book b;
  b.add(obs(evidence_source::health, 0, 1, 0, 5, true, 1));
  b.add(obs(evidence_source::health, 1, 1, 1, 6, true, 2));
  b.add(obs(evidence_source::health, 0, 1, 20, 25, true, 1));  // b0 proven master over [5, 20]
  b.add(obs(evidence_source::health, 1, 1, 21, 26, true, 2));  // b1 proven master over [6, 21]
  auto v = b.violations();
  REQUIRE(v.size() == 1);
  CHECK(v[0].kind == "overlap");
  CHECK(v[0].overlap == milliseconds(14));
}

TEST_CASE("a refusal ends a stint, so a takeover in between is no overlap") {
  mastership_book b;
  b.add(obs(evidence_source::probe, 0, 1, 0, 1, true));
  b.add(obs(evidence_source::probe, 0, 1, 10, 11, true));
  b.add(obs(evidence_source::probe, 0, 1, 20, 21, false));
  b.add(obs(evidence_source::probe, 1, 1, 22, 23, true));
  b.add(obs(evidence_source::probe, 1, 1, 30, 31, true));
  CHECK(b.violations().empty());
  CHECK(b.stints().size() == 2);
}

TEST_CASE("a restarted broker is another process: its stint is separate") {
  mastership_book b;
  b.add(obs(evidence_source::probe, 0, 1, 0, 1, true));
  b.add(obs(evidence_source::probe, 0, 2, 10, 11, true));  // new incarnation on the same port
  b.add(obs(evidence_source::probe, 0, 2, 20, 21, true));
  auto st = b.stints();
  REQUIRE(st.size() == 2);
  CHECK_FALSE(st[0].proven());
  CHECK(st[1].proven());
  CHECK(b.violations().empty());
}

TEST_CASE("the same epoch served by two processes is reported") {
  mastership_book b;
  b.add(obs(evidence_source::health, 0, 1, 0, 1, true, 4));
  b.add(obs(evidence_source::health, 0, 1, 2, 3, false));
  b.add(obs(evidence_source::health, 2, 1, 5, 6, true, 4));
  auto v = b.violations();
  REQUIRE(v.size() == 1);
  CHECK(v[0].kind == "epoch_reused");
}

TEST_CASE("health and probe evidence are not compared with each other") {
  mastership_book b;
  b.add(obs(evidence_source::health, 0, 1, 0, 1, true, 1));
  b.add(obs(evidence_source::health, 0, 1, 10, 11, true, 1));
  b.add(obs(evidence_source::probe, 1, 1, 0, 1, true));
  b.add(obs(evidence_source::probe, 1, 1, 10, 11, true));
  CHECK(b.violations().empty());
}
