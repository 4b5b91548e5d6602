#include "journal/node_arena.h"

#include <sys/mman.h>

#include <algorithm>

#include "journal/detail/huge_pages.h"

namespace tandem::journal {

using detail::huge_page_bytes;

node_arena::~node_arena() {
  if (mapping_ != 0) ::munmap(reinterpret_cast<void*>(mapping_), mapping_bytes_);
}

bool node_arena::map(std::size_t bytes, std::size_t align) noexcept {
  if (bytes == 0 || align > 4096 || capacity_ == 0) return false;
  node_bytes_ = (bytes + align - 1) / align * align;
  per_chunk_ = huge_page_bytes / node_bytes_;
  if (per_chunk_ == 0) return false;
  const std::size_t chunks = (capacity_ + per_chunk_ - 1) / per_chunk_;
  // The last chunk holds only what is left and keeps 4 KiB pages (a huge page would
  // fault in all 2 MiB of it).
  const std::size_t tail_nodes = capacity_ - (chunks - 1) * per_chunk_;
  const std::size_t tail_bytes = (tail_nodes * node_bytes_ + 4095) / 4096 * 4096;
  mapped_ = (chunks - 1) * huge_page_bytes + tail_bytes;
  // Over-map by 2 MiB to place the chunks on a huge-page boundary.
  mapping_bytes_ = mapped_ + huge_page_bytes;
  void* m = ::mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    mapping_bytes_ = 0;
    mapped_ = 0;
    return false;
  }
  mapping_ = reinterpret_cast<std::uintptr_t>(m);
  base_ = (mapping_ + huge_page_bytes - 1) & ~(huge_page_bytes - 1);
  detail::advise_huge_pages(reinterpret_cast<void*>(base_), (chunks - 1) * huge_page_bytes);
  try {
    chunk_live_.assign(chunks, 0);
  } catch (...) {
    ::munmap(m, mapping_bytes_);
    mapping_ = base_ = 0;
    mapped_ = mapping_bytes_ = 0;
    return false;
  }
  return true;
}

void* node_arena::try_allocate(std::size_t bytes, std::size_t align) noexcept {
  if (next_ == capacity_ || failed_) return nullptr;
  if (base_ == 0 && !map(bytes, align)) {
    failed_ = true;
    return nullptr;
  }
  if ((bytes + align - 1) / align * align != node_bytes_) return nullptr;
  const std::size_t chunk = next_ / per_chunk_;
  void* p = reinterpret_cast<void*>(base_ + chunk * huge_page_bytes + (next_ % per_chunk_) * node_bytes_);
  ++next_;
  ++live_;
  ++chunk_live_[chunk];
  return p;
}

void node_arena::deallocate(void* p) noexcept {
  const std::size_t chunk = (reinterpret_cast<std::uintptr_t>(p) - base_) / huge_page_bytes;
  --live_;
  if (--chunk_live_[chunk] != 0) return;
  // Every slot of the chunk handed out and freed: nothing can use it again.
  const bool handed_out_whole = next_ >= std::min(capacity_, (chunk + 1) * per_chunk_);
  if (!handed_out_whole) return;
  const std::uintptr_t begin = base_ + chunk * huge_page_bytes;
  const std::size_t len = std::min(huge_page_bytes, base_ + mapped_ - begin);
  (void)::madvise(reinterpret_cast<void*>(begin), len, MADV_DONTNEED);
  ++released_;
}

}  // namespace tandem::journal
