#include "tools/bench/report.h"

#include <fmt/format.h>

namespace tandem::bench {
namespace {

constexpr double mib = 1024.0 * 1024.0;

double per_second(double amount, double seconds) { return seconds > 0 ? amount / seconds : 0.0; }
double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

nlohmann::json latency_json(const latency_histogram& h) {
  if (h.count() == 0) return nullptr;
  return {
      {"count", h.count()},
      {"min", ms(h.min_ns())},
      {"mean", h.mean_ns() / 1e6},
      {"p50", ms(h.percentile_ns(0.50))},
      {"p90", ms(h.percentile_ns(0.90))},
      {"p99", ms(h.percentile_ns(0.99))},
      {"p99_9", ms(h.percentile_ns(0.999))},
      {"max", ms(h.max_ns())},
  };
}

std::string latency_row(std::string_view name, const latency_histogram& h) {
  if (h.count() == 0) return fmt::format("{:<18}{:>10}\n", name, "-");
  return fmt::format("{:<18}{:>10}{:>10.3f}{:>10.3f}{:>10.3f}{:>10.3f}{:>10.3f}{:>10.3f}\n", name, h.count(), ms(h.percentile_ns(0.50)),
                     ms(h.percentile_ns(0.90)), ms(h.percentile_ns(0.99)), ms(h.percentile_ns(0.999)), ms(h.max_ns()), h.mean_ns() / 1e6);
}

}  // namespace

nlohmann::json to_json(const bench_options& o, const bench_result& r) {
  nlohmann::json j;
  j["tool"] = "tandem-bench";
  j["config"] = {
      {"url", o.url},
      {"producers", o.drain ? 0u : o.producers},
      {"consumers", o.preload ? 0u : o.consumers},
      {"size", o.size},
      {"count", o.count},
      {"duration_s", o.duration_s},
      {"persistent", o.persistent},
      {"receipt_every", o.receipt_every},
      {"window", o.window},
      {"destination", o.destination},
      {"topic", o.topic},
      {"ack", std::string(client::ack_mode_name(o.ack))},
      {"ack_batch", o.ack_batch},
      {"prefetch", o.prefetch},
      {"rate", o.rate},
      {"drain", o.drain},
      {"preload", o.preload},
      {"idle_s", o.idle_s},
      {"threads", o.threads},
  };
  if (r.sent > 0 || !o.drain) {
    j["send"] = {
        {"messages", r.sent},
        {"bytes", r.sent_bytes},
        {"seconds", r.send_seconds},
        {"msgs_per_s", per_second(static_cast<double>(r.sent), r.send_seconds)},
        {"mib_per_s", per_second(static_cast<double>(r.sent_bytes) / mib, r.send_seconds)},
        {"receipts", r.receipts},
        {"receipts_lost", r.receipts_lost},
    };
  } else {
    j["send"] = nullptr;
  }
  if (!o.preload) {
    j["delivery"] = {
        {"messages", r.delivered},
        {"bytes", r.delivered_bytes},
        {"seconds", r.delivery_seconds},
        {"msgs_per_s", per_second(static_cast<double>(r.delivered), r.delivery_seconds)},
        {"mib_per_s", per_second(static_cast<double>(r.delivered_bytes) / mib, r.delivery_seconds)},
        {"redelivered", r.redelivered},
        {"expected", r.expected},
        {"missing", r.expected > r.delivered ? r.expected - r.delivered : 0},
    };
  } else {
    j["delivery"] = nullptr;
  }
  j["receipt_latency_ms"] = latency_json(r.receipt_latency);
  j["delivery_latency_ms"] = latency_json(r.delivery_latency);
  j["reconnects"] = nlohmann::json::array();
  for (const auto& rc : r.reconnects) {
    j["reconnects"].push_back(
        {{"at_s", rc.at_s},
         {"downtime_ms", rc.downtime_ms},
         {"first_accept_ms", rc.first_accept_ms >= 0 ? nlohmann::json(rc.first_accept_ms) : nlohmann::json(nullptr)},
         {"broker", rc.broker},
         {"cause", rc.cause},
         {"receipts_lost", rc.receipts_lost},
         {"lost_ns", rc.lost_ns},
         {"connected_ns", rc.connected_ns},
         {"first_accept_ns", rc.first_accept_ns > 0 ? nlohmann::json(rc.first_accept_ns) : nlohmann::json(nullptr)}});
  }
  j["error_frames"] = r.error_frames;
  j["errors"] = r.errors;
  j["failed"] = r.failed;
  j["client"] = {{"cpu_user_s", r.cpu_user_s}, {"cpu_system_s", r.cpu_system_s}, {"wall_s", r.wall_s}};
  return j;
}

std::string to_table(const bench_options& o, const bench_result& r) {
  std::string out;
  out += fmt::format("tandem-bench {}  {} producers, {} consumers, {} B, {}{}, receipt every {}, window {}\n", o.destination,
                     o.drain ? 0u : o.producers, o.preload ? 0u : o.consumers, o.size, o.persistent ? "persistent" : "non-persistent",
                     o.rate > 0 ? fmt::format(", rate {}/s", o.rate) : std::string(), o.receipt_every, o.window);
  out += fmt::format("{:<18}{:>10}{:>10}{:>12}{:>10}\n", "", "messages", "seconds", "msgs/s", "MiB/s");
  if (r.sent > 0 || !o.drain) {
    out += fmt::format("{:<18}{:>10}{:>10.3f}{:>12.0f}{:>10.2f}\n", "send", r.sent, r.send_seconds,
                       per_second(static_cast<double>(r.sent), r.send_seconds),
                       per_second(static_cast<double>(r.sent_bytes) / mib, r.send_seconds));
  }
  if (!o.preload) {
    out += fmt::format("{:<18}{:>10}{:>10.3f}{:>12.0f}{:>10.2f}\n", "delivery", r.delivered, r.delivery_seconds,
                       per_second(static_cast<double>(r.delivered), r.delivery_seconds),
                       per_second(static_cast<double>(r.delivered_bytes) / mib, r.delivery_seconds));
  }
  out += fmt::format("{:<18}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max", "mean");
  out += latency_row("send -> RECEIPT", r.receipt_latency);
  if (!o.preload) out += latency_row("send -> delivery", r.delivery_latency);
  if (r.expected > r.delivered) out += fmt::format("MISSING: {} of {} expected deliveries never arrived\n", r.expected - r.delivered, r.expected);
  if (r.redelivered > 0) out += fmt::format("redelivered: {}\n", r.redelivered);
  if (r.receipts_lost > 0) out += fmt::format("receipts lost: {}\n", r.receipts_lost);
  for (const auto& rc : r.reconnects) {
    out += fmt::format("reconnect at {:.3f} s to {}: {:.1f} ms down ({}), {} receipts lost{}\n", rc.at_s, rc.broker, rc.downtime_ms, rc.cause,
                       rc.receipts_lost,
                       rc.first_accept_ms >= 0 ? fmt::format(", first RECEIPT {:.1f} ms after CONNECTED", rc.first_accept_ms) : std::string());
  }
  if (r.error_frames > 0) out += fmt::format("ERROR frames: {}\n", r.error_frames);
  for (const auto& e : r.errors) out += fmt::format("error: {}\n", e);
  out += fmt::format("client cpu: {:.2f} s user, {:.2f} s system over {:.2f} s\n", r.cpu_user_s, r.cpu_system_s, r.wall_s);
  return out;
}

}  // namespace tandem::bench
