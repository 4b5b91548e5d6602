// GET /metrics: the Prometheus writer (broker/prometheus.h), the process's families
// (broker/process_metrics.h), and the whole exposition a master serves (process families,
// then the engine's), checked against the rules of the text format.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "broker/engine.h"
#include "broker/process_metrics.h"
#include "broker/prometheus.h"

using namespace tandem::broker;

namespace {

// What a Prometheus server would refuse in an exposition: a family declared twice, a sample
// of no declared family, a value that is not a number. Returns one line per problem.
std::vector<std::string> exposition_problems(const std::string& text) {
  std::vector<std::string> problems;
  std::map<std::string, std::string> types;  // family -> type
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      if (!types.emplace(name, type).second) problems.push_back("family declared twice: " + name);
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const auto name_end = line.find_first_of("{ ");
    const std::string series = line.substr(0, name_end);
    std::string family = series;
    for (std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (series.size() > suffix.size() && series.ends_with(suffix) &&
          types.count(series.substr(0, series.size() - suffix.size())))
        family = series.substr(0, series.size() - suffix.size());
    }
    if (!types.count(family)) problems.push_back("sample of no declared family: " + line);
    const std::string value = line.substr(line.rfind(' ') + 1);
    std::size_t used = 0;
    try {
      std::stod(value, &used);
    } catch (const std::exception&) {
    }
    if (used != value.size() || value.empty()) problems.push_back("value is not a number: " + line);
  }
  return problems;
}

process_figures master_figures(const tandem::journal::io_stats& io) {
  process_figures f;
  f.role = "master";
  f.epoch = 7;
  f.takeovers = 1;
  f.recovery = std::chrono::milliseconds(1250);
  f.lock = process_figures::lock_checks{10, 0, 2'000'000, 500'000};
  f.connections = {3, 5, 1};
  f.journal = process_figures::journal_figures{4, 4096, 99, &io};
  f.disk_bytes = 1u << 20;
  return f;
}

}  // namespace

TEST_CASE("a one-sample family is HELP, TYPE and the sample") {
  std::string out;
  prometheus::writer w(out);
  w.gauge("tandem_epoch", "Master epoch.", 7);
  w.counter("tandem_lock_check_seconds_total", "Time in checks.", 0.25);
  CHECK(out ==
        "# HELP tandem_epoch Master epoch.\n# TYPE tandem_epoch gauge\ntandem_epoch 7\n"
        "# HELP tandem_lock_check_seconds_total Time in checks.\n# TYPE tandem_lock_check_seconds_total counter\n"
        "tandem_lock_check_seconds_total 0.25\n");
}

TEST_CASE("label values are escaped") {
  std::string out;
  prometheus::writer w(out);
  w.family("tandem_messages_pending", prometheus::metric_type::gauge, "Pending.");
  w.sample("tandem_messages_pending", {{"destination", "/queue/a\"b\\c\nd"}, {"subscription", "x:y"}}, 2);
  CHECK(out.ends_with("tandem_messages_pending{destination=\"/queue/a\\\"b\\\\c\\nd\",subscription=\"x:y\"} 2\n"));
}

TEST_CASE("a histogram is written cumulative from per-bucket counts, with +Inf, sum and count") {
  std::string out;
  prometheus::writer w(out);
  const double bounds[] = {0.001, 0.01};
  const std::uint64_t per_bucket[] = {2, 3, 1};
  w.histogram("tandem_journal_fsync_seconds", "fsync.", bounds, per_bucket, 0.5);
  CHECK(out ==
        "# HELP tandem_journal_fsync_seconds fsync.\n# TYPE tandem_journal_fsync_seconds histogram\n"
        "tandem_journal_fsync_seconds_bucket{le=\"0.001\"} 2\n"
        "tandem_journal_fsync_seconds_bucket{le=\"0.01\"} 5\n"
        "tandem_journal_fsync_seconds_bucket{le=\"+Inf\"} 6\n"
        "tandem_journal_fsync_seconds_sum 0.5\n"
        "tandem_journal_fsync_seconds_count 6\n");
  CHECK(exposition_problems(out).empty());
}

TEST_CASE("a family written twice is listed in repeats") {
  std::string out;
  prometheus::writer w(out);
  w.gauge("tandem_connections", "Open.", 1);
  CHECK(w.repeats().empty());
  w.gauge("tandem_connections", "Open.", 1);
  CHECK(w.repeats().count("tandem_connections") == 1);
  CHECK(exposition_problems(out) == std::vector<std::string>{"family declared twice: tandem_connections"});
}

TEST_CASE("a slave's metrics show its role and no journal") {
  process_figures f;
  f.role = "slave";
  f.lock = process_figures::lock_checks{};
  std::string out;
  prometheus::writer w(out);
  render_process_metrics(f, w);
  CHECK(exposition_problems(out).empty());
  CHECK(out.find("tandem_role{role=\"slave\"} 1\n") != std::string::npos);
  CHECK(out.find("tandem_role{role=\"master\"} 0\n") != std::string::npos);
  CHECK(out.find("tandem_connections 0\n") != std::string::npos);
  CHECK(out.find("tandem_journal_live_messages") == std::string::npos);
  CHECK(out.find("tandem_journal_fsync_seconds") == std::string::npos);
}

TEST_CASE("a master's metrics declare every family once, the process's and the engine's together") {
  tandem::journal::io_stats io;
  io.appends = 12;
  io.fsync_buckets[0] = 3;
  io.fsync_buckets.back() = 1;
  process_figures f = master_figures(io);
  f.engine_renders_connections = true;  // as broker_process sets it while the engine runs
  engine_config cfg;
  cfg.allow_anonymous = true;
  engine eng(cfg, nullptr);

  std::string out;
  prometheus::writer w(out);
  render_process_metrics(f, w);
  CHECK(w.repeats().empty());
  eng.append_metrics(out);
  CHECK(exposition_problems(out).empty());
  CHECK(out.find("tandem_role{role=\"master\"} 1\n") != std::string::npos);
  CHECK(out.find("tandem_recovery_seconds 1.25\n") != std::string::npos);
  CHECK(out.find("tandem_journal_fsync_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(out.find("tandem_journal_fsync_seconds_count 4\n") != std::string::npos);
  CHECK(out.find("tandem_journal_disk_bytes 1048576\n") != std::string::npos);
}
