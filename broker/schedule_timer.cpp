#include "broker/schedule_timer.h"

#include <chrono>

#include "broker/log.h"

namespace tandem::broker {

schedule_timer::schedule_timer(asio::any_io_executor executor, engine& eng) : timer_(executor), engine_(eng) {}

void schedule_timer::start() {
  stopped_ = false;
  engine_.set_schedule_listener([this] { arm(); });
  arm();
}

void schedule_timer::stop() {
  stopped_ = true;
  ++generation_;
  engine_.set_schedule_listener({});
  timer_.cancel();
}

void schedule_timer::arm() {
  if (stopped_) return;
  const auto due = engine_.next_wake_ms();
  if (!due) return;  // an armed wait finds nothing due and arms nothing
  if (armed_for_ && *armed_for_ <= *due) return;
  armed_for_ = due;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  timer_.expires_after(std::chrono::milliseconds(*due > now ? *due - now : 0));
  timer_.async_wait([this, generation = ++generation_](boost::system::error_code ec) {
    if (ec || generation != generation_) return;
    armed_for_.reset();
    try {
      engine_.fire_schedules();
    } catch (const std::exception& e) {
      // A failed firing must not stop the timer for good (as the server's tick): log, go on.
      log::error("server", "firing scheduled messages failed", {log::kv("error", e.what())});
    }
    arm();
  });
}

}  // namespace tandem::broker
