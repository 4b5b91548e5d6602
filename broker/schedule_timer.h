// The one timer of scheduled delivery: armed for the engine's earliest schedule entry
// (engine::next_wake_ms: its due time, or a little before to read it ahead), it calls engine::fire_schedules when that time comes and
// re-arms for the next. The engine tells it (set_schedule_listener) when an earlier entry
// appears. One asio::steady_timer whatever the number of entries: the entries' order is the
// engine's heap (broker/engine/schedule.h), not the timer queue's.
//
// Thread: the server's executor (the io thread), as the engine. Owned by the server; the
// engine must outlive it, and stop() must run before either is destroyed.
#pragma once

#include <cstdint>
#include <optional>

#include "broker/asio.h"
#include "broker/engine.h"

namespace tandem::broker {

class schedule_timer {
 public:
  schedule_timer(asio::any_io_executor executor, engine& eng);
  void start();
  void stop();

 private:
  void arm();

  asio::steady_timer timer_;
  engine& engine_;
  std::optional<std::int64_t> armed_for_;  // wall ms the timer waits for
  std::uint64_t generation_ = 0;           // a wait superseded by a re-arm does nothing
  bool stopped_ = true;
};

}  // namespace tandem::broker
