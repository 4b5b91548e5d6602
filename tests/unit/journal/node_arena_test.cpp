// node_arena and arena_allocator (journal/node_arena.h): the memory of a big target's
// message map loaded from a checkpoint.
#include <doctest/doctest.h>

#include <cstdint>

#include "journal/live_index.h"
#include "journal/node_arena.h"

using namespace tandem::journal;
using message_map = live_index::message_map;

namespace {

message_ref ref_for(std::uint64_t seq) {
  return {{1 + seq / 1000, static_cast<std::uint32_t>(seq % 1000), 100}, static_cast<std::int64_t>(seq),
          static_cast<std::uint8_t>(seq % 10)};
}

message_map arena_map(std::uint64_t entries, std::uint64_t capacity) {
  message_map m(message_map::allocator_type(std::make_shared<node_arena>(capacity)));
  for (std::uint64_t seq = 1; seq <= entries; ++seq) m.emplace_hint(m.end(), seq, ref_for(seq));
  return m;
}

}  // namespace

TEST_CASE("a map on an arena holds what a plain map holds, and its copy owns no arena") {
  auto m = arena_map(100'000, 100'000);
  message_map plain;
  for (std::uint64_t seq = 1; seq <= 100'000; ++seq) plain.emplace(seq, ref_for(seq));
  CHECK(m == plain);
  const auto& arena = *m.get_allocator().arena();
  CHECK(arena.handed_out() == 100'000);
  CHECK(arena.live() == 100'000);

  message_map copy = m;
  CHECK(copy == m);
  CHECK(copy.get_allocator().arena() == nullptr);

  message_map moved = std::move(m);
  CHECK(moved.get_allocator().arena().get() == &arena);
  CHECK(moved == plain);
  CHECK(moved.lower_bound(50'000)->first == 50'000);
  CHECK(std::prev(moved.end())->first == 100'000);
}

TEST_CASE("nodes beyond an arena's room come from operator new, and both kinds erase") {
  auto m = arena_map(1'000, 600);
  const auto& arena = *m.get_allocator().arena();
  CHECK(arena.handed_out() == 600);
  CHECK(m.size() == 1'000);
  for (std::uint64_t seq = 1; seq <= 1'000; seq += 2) m.erase(seq);  // every other: both kinds
  CHECK(arena.live() == 300);
  CHECK(m.size() == 500);
  m.try_emplace(1'001, ref_for(1'001));  // a later add, as after recovery
  CHECK(arena.handed_out() == 600);
  CHECK(m.rbegin()->first == 1'001);
}

TEST_CASE("a drained arena gives each chunk back once all of its nodes are gone") {
  // ~29,000 nodes fit a 2 MiB chunk: 100,000 fill three and part of a fourth.
  auto m = arena_map(100'000, 100'000);
  const auto& arena = *m.get_allocator().arena();
  // An individual ack in the middle frees no chunk.
  m.erase(50'000);
  CHECK(arena.chunks_released() == 0);
  // Consumed in order, as a queue drains: the first chunk goes once its last node does.
  auto it = m.begin();
  while (arena.chunks_released() == 0 && it != m.end()) it = m.erase(it);
  CHECK(arena.chunks_released() == 1);
  CHECK(m.size() > 60'000);
  m.clear();
  CHECK(arena.live() == 0);
  CHECK(arena.chunks_released() == 4);
}

TEST_CASE("an arena whose load stopped half way frees what it handed out") {
  auto m = arena_map(10, 100'000);
  CHECK(m.get_allocator().arena()->handed_out() == 10);
  m.clear();
  CHECK(m.get_allocator().arena()->live() == 0);
  CHECK(m.get_allocator().arena()->chunks_released() == 0);  // its slots may still be handed out
}
