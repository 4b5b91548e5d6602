// Counts every call of the global operator new in the binary that includes this header,
// for the bench's and the tests' "allocations per evaluation". Replacement allocation
// functions cannot be inline: include this header from exactly one file per binary.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace tandem::selector::bench {
inline std::atomic<std::size_t> allocations{0};
}  // namespace tandem::selector::bench

void* operator new(std::size_t n) {
  tandem::selector::bench::allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
