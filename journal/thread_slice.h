// The scheduler time slice a thread asks for (Linux 6.12+, EEVDF custom slices).
//
// Why: on a machine where tandemd's threads and its clients outnumber the cores, a thread
// woken by a completed fdatasync or by a posted completion waits in the run queue until the
// running thread's slice ends (the default, 0.7-3 ms depending on the core count). A RECEIPT
// passes three such wake-ups (io thread -> journal writer -> io thread), so the RECEIPT tail
// was made of run-queue waits, not of the disk (bench/results/performance.md, "RECEIPT p99:
// where the tail was"). A thread that runs in short bursts and then sleeps asks for a short
// slice: its virtual deadline comes sooner, so its wake-up preempts a thread that has been
// running longer (PREEMPT_SHORT). Fairness is unchanged: the CPU share still follows the
// weight (nice), a short slice only trades latency for more context switches.
//
// The call is unprivileged (sched_setattr with SCHED_OTHER and sched_runtime, which the
// kernel clamps to 0.1-100 ms). Kernels before 6.12 accept and ignore sched_runtime for
// SCHED_OTHER; the thread then keeps the default slice and nothing else changes.
#pragma once

#include <chrono>
#include <optional>
#include <system_error>

namespace tandem::journal {

// Asks for `slice` for the calling thread, keeping its policy SCHED_OTHER and its nice
// value. 0 = leave the kernel's default. Returns the errno of sched_setattr (ENOSYS where
// there is no such call); a failure changes nothing.
std::error_code request_thread_slice(std::chrono::microseconds slice) noexcept;

// The slice the kernel reports for thread `tid` (0 = the calling thread), or nullopt when
// sched_getattr fails. Before 6.12 it reports 0 for SCHED_OTHER threads.
std::optional<std::chrono::nanoseconds> thread_slice(int tid = 0) noexcept;

}  // namespace tandem::journal
