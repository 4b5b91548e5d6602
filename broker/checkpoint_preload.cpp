#include "broker/checkpoint_preload.h"

#include <condition_variable>
#include <mutex>

#include "broker/log.h"
#include "journal/errc.h"

namespace tandem::broker {

checkpoint_preload::checkpoint_preload(std::filesystem::path store, std::size_t producer_window,
                                       std::size_t max_producers, std::chrono::milliseconds interval,
                                       std::uint64_t sealed_bytes, std::function<void(const status&)> on_status)
    : preloader_(std::move(store), producer_window, max_producers, nullptr, sealed_bytes), interval_(interval),
      on_status_(std::move(on_status)), thread_([this](std::stop_token stop) { run(stop); }) {}

checkpoint_preload::~checkpoint_preload() = default;

std::shared_ptr<journal::preloaded_checkpoint> checkpoint_preload::finish() {
  preloader_.stop_capturing();
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  return preloader_.take();
}

void checkpoint_preload::run(std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any wake;
  while (!stop.stop_requested()) {
    refresh_once();
    std::unique_lock lock(m);
    wake.wait_for(lock, stop, interval_, [] { return false; });
  }
}

void checkpoint_preload::refresh_once() {
  auto r = preloader_.refresh();
  std::string problem;
  if (!r) {
    // A store not created yet is not a problem: the first master creates it.
    if (r.error() != journal::errc::not_a_store) problem = "cannot look for checkpoints: " + r.error().message();
  } else if (!r.value().skipped.empty()) {
    problem = "checkpoint not preloaded (the takeover reads it itself): " + r.value().skipped;
  }
  if (!problem.empty() && problem != last_problem_) log::warn("main", "slave: " + problem);
  last_problem_ = problem;
  if (!r) return;
  const auto& o = r.value();
  if (o.loaded_now)
    log::info("main", "slave: checkpoint preloaded",
              {log::kv("lsn", o.lsn), log::kv("live_messages", o.live_messages), log::kv("bytes", o.bytes),
               log::kv("took_ms", o.took.count())});
  const status now{o.lsn, o.live_messages, o.bytes, o.sealed_segments, o.sealed_bytes};
  if (!o.loaded_now && now.lsn == last_status_.lsn && now.sealed_segments == last_status_.sealed_segments &&
      now.sealed_bytes == last_status_.sealed_bytes)
    return;
  last_status_ = now;
  if (on_status_) on_status_(now);
}

}  // namespace tandem::broker
