#include "journal/detail/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace tandem::journal::detail {

void advise_huge_pages(void* p, std::size_t bytes) noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t first = (begin + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
  const std::uintptr_t last = (begin + bytes) & ~(huge_page_bytes - 1);
  if (first >= last) return;
  (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
}

}  // namespace tandem::journal::detail
