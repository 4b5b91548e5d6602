// tandem-bench: a STOMP load generator for Tandem, ActiveMQ or any STOMP 1.1/1.2 broker.
// See load_generator.h for what is measured and how, report.h for the JSON.
//
// Exit status: 0 done; 1 a connection failed or closed for good (see "errors"); 2 bad usage;
// 3 deliveries missing (fewer messages arrived than were sent and receipted/expected).
#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "tools/bench/load_generator.h"
#include "tools/bench/report.h"
#include "tools/client/broker_list.h"

int main(int argc, char** argv) {
  using namespace tandem;
  bench::bench_options o;
  std::string ack = "auto";
  std::string json_path;
  std::string receipt_log_path;
  std::uint64_t preload = 0;
  unsigned heartbeat_ms = 0;
  bool quiet = false;

  CLI::App app{"tandem-bench: STOMP load generator (throughput and latency of a broker)"};
  app.add_option("--url", o.url, "tcp://host:port, ws://host:port (STOMP over WebSocket), failover:(tcp://a:p,tcp://b:q)?options, or a:p,b:q")->capture_default_str();
  app.add_option("--login", o.login, "STOMP login (omitted when empty)");
  app.add_option("--passcode", o.passcode, "STOMP passcode");
  app.add_option("--producers,-p", o.producers, "producer connections")->capture_default_str();
  app.add_option("--consumers,-c", o.consumers, "consumer connections (subscribers)")->capture_default_str();
  app.add_option("--size,-s", o.size, "message body bytes")->capture_default_str();
  app.add_option("--count,-n", o.count, "messages in total, split over the producers")->capture_default_str();
  app.add_option("--duration", o.duration_s, "send for this many seconds instead of --count")->check(CLI::NonNegativeNumber);
  app.add_flag("--persistent", o.persistent, "send persistent:true (else persistent:false)");
  app.add_option("--receipt-every", o.receipt_every,
                 "ask for a RECEIPT every N messages (0: only each producer's last message, which always asks)")
      ->capture_default_str();
  app.add_option("--window", o.window, "outstanding receipts per producer connection (pipelining)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--destination,-d", o.destination, "/queue/NAME or /topic/NAME")->capture_default_str();
  app.add_flag("--topic", o.topic, "use a topic (a /queue/ destination becomes /topic/)");
  app.add_option("--ack", ack, "auto | client | client-individual")->capture_default_str()->check(CLI::IsMember({"auto", "client", "client-individual"}));
  app.add_option("--ack-batch", o.ack_batch, "ack mode client: one cumulative ACK per N messages")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--prefetch", o.prefetch, "activemq.prefetchSize of each subscription (0: broker default)");
  app.add_option("--rate", o.rate, "messages per second over all producers (0: unlimited); use for latency")->check(CLI::NonNegativeNumber);
  app.add_option("--preload", preload, "send N messages with no consumers, then exit (fill a backlog)");
  app.add_flag("--drain", o.drain, "no producers: consume until the destination stays idle for --idle seconds");
  app.add_option("--idle", o.idle_s, "consumers stop after this many seconds without a message")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "io threads driving the connections")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--heartbeat-ms", heartbeat_ms, "heart-beat period offered and asked for (0: none)");
  app.add_option("--json", json_path, "write the JSON report to FILE ('-': stdout)");
  app.add_option("--receipt-log", receipt_log_path,
                 "write every RECEIPT as 'sent_ns received_ns producer' (steady clock, CLOCK_MONOTONIC) to FILE, for lining up with a perf trace");
  app.add_flag("--quiet,-q", quiet, "no table on stdout");
  CLI11_PARSE(app, argc, argv);

  o.ack = *client::ack_mode_from_name(ack);
  o.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  if (preload > 0) {
    o.preload = true;
    o.count = preload;
  }
  if (o.preload && o.drain) {
    std::cerr << "tandem-bench: --preload and --drain exclude each other\n";
    return 2;
  }
  if (o.topic && o.destination.rfind("/queue/", 0) == 0) o.destination = "/topic/" + o.destination.substr(7);
  if (o.destination.rfind("/topic/", 0) == 0) o.topic = true;
  if (!o.drain && o.producers == 0) {
    std::cerr << "tandem-bench: --producers must be at least 1 (or use --drain)\n";
    return 2;
  }
  if (o.drain && o.consumers == 0) {
    std::cerr << "tandem-bench: --drain needs at least one consumer\n";
    return 2;
  }
  if (!o.drain && o.duration_s <= 0 && o.count == 0) {
    std::cerr << "tandem-bench: nothing to send: give --count or --duration\n";
    return 2;
  }
  std::string why;
  auto brokers = client::parse_broker_list(o.url, &why);
  if (!brokers) {
    std::cerr << "tandem-bench: --url " << o.url << ": " << why << "\n";
    return 2;
  }

  o.keep_receipt_samples = !receipt_log_path.empty();
  bench::bench_result result = bench::run(o, brokers.value());
  if (!receipt_log_path.empty()) {
    std::ofstream log(receipt_log_path);
    for (const auto& r : result.receipt_samples) log << r.sent_ns << ' ' << r.received_ns << ' ' << r.producer << '\n';
    if (!log) {
      std::cerr << "tandem-bench: cannot write " << receipt_log_path << "\n";
      return 1;
    }
  }
  auto json = bench::to_json(o, result);
  if (!quiet) std::cout << bench::to_table(o, result) << std::flush;
  if (json_path == "-") {
    std::cout << json.dump(2) << std::endl;
  } else if (!json_path.empty()) {
    std::ofstream file(json_path);
    file << json.dump(2) << '\n';
    if (!file) {
      std::cerr << "tandem-bench: cannot write " << json_path << "\n";
      return 1;
    }
  }
  if (result.failed) return 1;
  if (result.expected > result.delivered) return 3;
  return 0;
}
