// Large, long-lived memory of the index and of checkpoint images, and why it asks the
// kernel for transparent huge pages.
//
// Recovering 10 million messages touches ~1.5 GB of fresh memory (the checkpoint image,
// the index's nodes, the buffer the next checkpoint is encoded into). Each first touch of a
// 4 KiB page is a page fault; on the 2-core development VM one costs 10-20 us, so those
// faults alone took more than half of a 10-million-message recovery (bench/results/
// journal.md, "Recovery of 10 million"). With a 2 MiB huge page one fault maps 512 pages.
// Debian's default (transparent_hugepage=madvise) gives huge pages only to ranges that ask
// with madvise(MADV_HUGEPAGE); where huge pages are off, or none is free, the kernel falls
// back to 4 KiB pages, so the advice is never an error.
#pragma once

#include <cstddef>

namespace tandem::journal::detail {

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

// Advises huge pages for the whole 2 MiB-aligned pages inside [p, p + bytes); the rest
// keeps 4 KiB pages. Best effort: ignores failures (an old kernel, THP disabled).
void advise_huge_pages(void* p, std::size_t bytes) noexcept;

}  // namespace tandem::journal::detail
