// A scripted stand-in for broker::engine, linked instead of the real engine into
// server_test so the connection machinery (framing, heart-beats, flow control, shutdown) is
// tested on real sockets without the messaging semantics. It implements engine.h's class.
//
// Script (by frame):
//   CONNECT/STOMP      CONNECTED; heart-beat header "cx,cy" is applied verbatim as
//                      set_heartbeat(send_every = cy ms, expect_every = cx ms); set_version("1.2")
//   SEND echo:N        N MESSAGE frames with the SEND's body back to the same session
//   SEND pause:1       pause_reading(); the next tick resumes it
//   SEND + receipt     RECEIPT
//   DISCONNECT         RECEIPT if asked, then close_after_flush
//   anything before CONNECT: ERROR + close_after_flush
// Threads: the engine methods run on the io thread; the counters are read by the test thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace tandem::broker::test {

struct engine_stats {
  std::atomic<int> opened{0};
  std::atomic<int> closed{0};
  std::atomic<int> ticks{0};
  std::atomic<int> writable{0};
  std::atomic<int> frames{0};
  std::atomic<int> resumed{0};
  std::atomic<bool> shut_down{false};
};

engine_stats& stats();

}  // namespace tandem::broker::test
