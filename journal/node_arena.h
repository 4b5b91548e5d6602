// tandem::journal::node_arena and arena_allocator: the memory of a big target's message
// map (live_index::message_map) as a checkpoint loads it, in 2 MiB chunks with huge pages
// instead of one malloc per message.
//
// Why: loading a checkpoint of 10 million messages allocated 10 million map nodes, one
// malloc each, on ~800 MB of fresh heap; malloc and the page faults of that heap (one per
// 4 KiB, 10-20 us each on the development VM) were more than half of the 2.8 s left
// (bench/results/journal.md, "Recovery of 10 million"). A load knows how many nodes it
// makes, so an arena sized for them hands them out by bumping a pointer through memory
// that asks for huge pages (detail/huge_pages.h): one fault per 2 MiB, and no malloc
// header (8 of the 80 bytes a node cost).
//
// Lifetime and memory: the arena belongs to the maps whose allocators hold it (a
// shared_ptr: moving or swapping a map moves its allocator along, and the map frees its
// nodes through it). A node freed goes back to its chunk; when every node of a chunk has
// been handed out and freed, the chunk's memory returns to the kernel (MADV_DONTNEED), so a
// queue drained after a takeover gives its memory back as it drains, as malloc's heap did.
// Freed slots are not reused: nodes made after the load come from operator new, so an
// arena never holds more than the load made. The worst case is a chunk kept whole
// (2 MiB) by one message that stays, ~29,000 times its node's size.
//
// Threading: none; an arena is used by the thread that owns its map (the index's owner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

namespace tandem::journal {

class node_arena {
 public:
  // Room for `nodes` nodes, all of one size: the size and alignment of the first
  // allocation; memory is mapped at that allocation.
  explicit node_arena(std::size_t nodes) : capacity_(nodes) {}
  ~node_arena();
  node_arena(const node_arena&) = delete;
  node_arena& operator=(const node_arena&) = delete;

  // A node of `bytes` (alignment `align`), or nullptr: the arena is full, its mapping failed,
  // or `bytes` is not its node size (the caller then uses operator new).
  void* try_allocate(std::size_t bytes, std::size_t align) noexcept;
  bool owns(const void* p) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    return base_ != 0 && a >= base_ && a < base_ + mapped_;
  }
  // REQUIRES: owns(p), p handed out by try_allocate and not freed since.
  void deallocate(void* p) noexcept;

  std::size_t handed_out() const noexcept { return next_; }
  std::size_t live() const noexcept { return live_; }
  std::size_t chunks_released() const noexcept { return released_; }

 private:
  bool map(std::size_t bytes, std::size_t align) noexcept;

  std::size_t capacity_;
  std::size_t node_bytes_ = 0;
  std::size_t per_chunk_ = 0;  // nodes in one 2 MiB chunk (none straddles two)
  std::uintptr_t base_ = 0;    // 2 MiB-aligned
  std::size_t mapped_ = 0;
  std::uintptr_t mapping_ = 0;  // what munmap takes back
  std::size_t mapping_bytes_ = 0;
  std::size_t next_ = 0;  // nodes handed out
  std::size_t live_ = 0;
  std::size_t released_ = 0;
  bool failed_ = false;
  std::vector<std::uint32_t> chunk_live_;
};

// An allocator that takes single nodes from a node_arena while it has room and everything
// else from operator new. A default-constructed one has no arena: a plain allocator. Copies
// of a container (copy construction) get no arena; a move or swap takes the arena along.
template <class T>
class arena_allocator {
 public:
  using value_type = T;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using propagate_on_container_copy_assignment = std::false_type;
  using is_always_equal = std::false_type;

  arena_allocator() noexcept = default;
  explicit arena_allocator(std::shared_ptr<node_arena> arena) noexcept : arena_(std::move(arena)) {}
  template <class U>
  arena_allocator(const arena_allocator<U>& other) noexcept : arena_(other.arena()) {}

  T* allocate(std::size_t n) {
    if (arena_ && n == 1)
      if (void* p = arena_->try_allocate(sizeof(T), alignof(T))) return static_cast<T*>(p);
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (arena_ && arena_->owns(p)) return arena_->deallocate(p);
    std::allocator<T>{}.deallocate(p, n);
  }
  arena_allocator select_on_container_copy_construction() const noexcept { return {}; }

  const std::shared_ptr<node_arena>& arena() const noexcept { return arena_; }
  template <class U>
  friend bool operator==(const arena_allocator& a, const arena_allocator<U>& b) noexcept {
    return a.arena_ == b.arena();
  }

 private:
  std::shared_ptr<node_arena> arena_;
};

}  // namespace tandem::journal
