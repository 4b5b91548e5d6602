// Issue 16: journal::schedule_list, the flat form of live_index::schedules() that a takeover
// with 100,000 pending schedules builds without a node or a string per schedule.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "journal/schedule_list.h"

using tandem::journal::schedule_list;
using tandem::journal::schedule_ref;

namespace {

std::vector<std::uint64_t> seqs(const schedule_list& l) {
  std::vector<std::uint64_t> out;
  for (const auto& [seq, s] : l) out.push_back(seq);
  return out;
}

}  // namespace

TEST_CASE("adds in and out of msg_seq order come back in msg_seq order") {
  schedule_list l;
  CHECK(l.insert_or_assign(5, 500, "ID:a-5"));
  CHECK(l.insert_or_assign(9, 900, "ID:a-9"));
  CHECK(l.insert_or_assign(2, 200, "ID:a-2"));  // a compaction copy or a replayed tail
  CHECK(l.insert_or_assign(7, 700, "ID:a-7"));
  CHECK(seqs(l) == std::vector<std::uint64_t>{2, 5, 7, 9});
  CHECK(l.size() == 4);
  CHECK(l.at(7) == schedule_ref{700, "ID:a-7"});
  CHECK(!l.contains(6));
  CHECK_THROWS_AS(l.at(6), std::out_of_range);
  CHECK(l.begin()->first == 2);
}

TEST_CASE("the newest copy of an entry wins, with a longer or shorter job id") {
  schedule_list l;
  l.insert_or_assign(1, 100, "ID:job-1");
  l.insert_or_assign(2, 200, "ID:job-2");
  CHECK(!l.insert_or_assign(1, 150, "ID:a-much-longer-job-id-1"));
  CHECK(!l.insert_or_assign(2, 250, "j2"));
  CHECK(l.size() == 2);
  CHECK(l.at(1) == schedule_ref{150, "ID:a-much-longer-job-id-1"});
  CHECK(l.at(2) == schedule_ref{250, "j2"});
}

TEST_CASE("removes leave the rest intact through the rebuild of the buffers") {
  schedule_list l;
  for (std::uint64_t i = 1; i <= 1000; ++i) l.insert_or_assign(i, static_cast<std::int64_t>(i) * 10, "ID:job-" + std::to_string(i));
  // Firing in order: every one but the multiples of 7 goes, which crosses the rebuild
  // threshold (more dead than live) several times.
  for (std::uint64_t i = 1; i <= 1000; ++i)
    if (i % 7 != 0) CHECK(l.erase(i));
  CHECK(!l.erase(1));    // already gone
  CHECK(!l.erase(5000)); // never there
  CHECK(l.size() == 142);
  std::size_t n = 0;
  for (const auto& [seq, s] : l) {
    CHECK(seq % 7 == 0);
    CHECK(s == schedule_ref{static_cast<std::int64_t>(seq) * 10, "ID:job-" + std::to_string(seq)});
    ++n;
  }
  CHECK(n == 142);
  // The buffers shrank with the rebuild: well under what 1,000 entries took.
  CHECK(l.memory_bytes() < 1000 * 24);
}

TEST_CASE("an entry removed and added again (a replayed tail) is live again") {
  schedule_list l;
  l.insert_or_assign(1, 100, "ID:a-1");
  l.insert_or_assign(2, 200, "ID:a-2");
  l.erase(1);
  CHECK(seqs(l) == std::vector<std::uint64_t>{2});
  CHECK(l.insert_or_assign(1, 110, "ID:a-1"));
  CHECK(seqs(l) == std::vector<std::uint64_t>{1, 2});
  CHECK(l.at(1) == schedule_ref{110, "ID:a-1"});
}

TEST_CASE("lists are equal by their live entries, whatever they went through") {
  schedule_list a, b;
  a.insert_or_assign(1, 100, "ID:a-1");
  a.insert_or_assign(3, 300, "ID:a-3");
  a.insert_or_assign(4, 400, "ID:a-4");
  a.erase(4);
  b.insert_or_assign(3, 300, "ID:a-3");
  b.insert_or_assign(1, 100, "ID:a-1");
  CHECK(a == b);
  b.insert_or_assign(1, 101, "ID:a-1");
  CHECK(!(a == b));
  b.insert_or_assign(1, 100, "ID:a-X");
  CHECK(!(a == b));
  a.clear();
  CHECK(a.empty());
  CHECK(a.begin() == a.end());
  CHECK(a == schedule_list{});
}
