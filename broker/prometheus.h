// Prometheus text exposition (format 0.0.4, what GET /metrics serves): the one writer of
// every metric family the broker exports, so HELP, TYPE, labels and numbers look the same
// whoever renders them.
//
//   # HELP tandem_epoch Master epoch of this process (0 before the lock).
//   # TYPE tandem_epoch gauge
//   tandem_epoch 7
//   # HELP tandem_messages_pending Messages waiting for a consumer.
//   # TYPE tandem_messages_pending gauge
//   tandem_messages_pending{destination="/queue/a"} 12
//
// Rules of the format that the writer keeps for its callers:
// - A family (HELP, TYPE, then its samples) appears once per exposition: Prometheus refuses
//   a second TYPE line for a name. The writer remembers the names it wrote and lists a
//   name written twice in repeats(), for tests: that is a bug in the caller.
// - Label values escape backslash, double quote and newline (escape_label_value).
// - A histogram is written cumulative (bucket le="x" counts every observation <= x), with
//   le="+Inf", _sum and _count; callers hand it per-bucket counts as they keep them.
// - Numbers print in the shortest form that reads back the same (fmt "{}"): integers as
//   integers, durations as seconds in a double.
//
// Threads: a writer is a local of one rendering call; it appends to the caller's string.
//
// Every family goes through one writer per exposition: the process's own
// (broker_process.cpp, process_metrics.cpp) and the engine's (engine/admin.cpp), so
// repeats() sees them all.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

namespace tandem::broker::prometheus {

enum class metric_type { counter, gauge, histogram };
std::string_view to_string(metric_type t);

struct label {
  std::string_view name;
  std::string_view value;  // escaped by the writer
};

// `value` with backslash, double quote and newline escaped for a label.
std::string escape_label_value(std::string_view value);

// Families whose samples are rendered over several turns of the io thread (GET /metrics with
// 50,000 destinations, engine::append_destination_metrics): each family's sample lines
// gather in a string of their own, so the exposition stays one family after another however
// the destinations are cut into slices. `stage` and `after` say where the next slice starts;
// their meaning is the producer's. writer::family(sliced_family) writes one out.
struct sliced_family {
  std::string_view name;
  metric_type type;
  std::string_view help;
  std::string samples;  // sample lines, as writer::sample renders them
};
struct sliced_families {
  std::vector<sliced_family> families;
  int stage = 0;
  std::string after;  // the last key rendered in `stage`; "" before the first
  bool done = false;
};

class writer {
 public:
  // Appends to `out`, which must outlive the writer.
  explicit writer(std::string& out) : out_(&out) {}
  // Appends to the last of `pieces` (one is added if there are none), and a sliced family's
  // samples become pieces of their own instead of being copied: the 29 MB of 50,000
  // destinations' samples, copied into one string, took 200-300 ms on the io thread
  // (page faults on fresh memory). `pieces` must outlive the writer.
  explicit writer(std::vector<std::string>& pieces) : pieces_(&pieces) {
    if (pieces.empty()) pieces.emplace_back();
    out_ = &pieces.back();
  }

  // Starts family `name`: its HELP and TYPE lines. Samples of it follow.
  void family(std::string_view name, metric_type type, std::string_view help);

  // Family f: its HELP and TYPE lines, then the sample lines gathered in f.samples (moved
  // out of f when this writer writes pieces, else copied).
  void family(sliced_family& f) {
    family(f.name, f.type, f.help);
    if (!pieces_) {
      *out_ += f.samples;
      return;
    }
    pieces_->push_back(std::move(f.samples));
    pieces_->emplace_back();
    out_ = &pieces_->back();
  }

  // One sample line. `series` is the family name, or for a histogram its _bucket, _sum or
  // _count series.
  template <class Number>
  void sample(std::string_view series, std::initializer_list<label> labels, Number value) {
    static_assert(std::is_arithmetic_v<Number>);
    *out_ += series;
    append_labels(labels);
    fmt::format_to(std::back_inserter(*out_), " {}\n", value);
  }
  template <class Number>
  void sample(std::string_view series, Number value) {
    sample(series, {}, value);
  }

  // A family of one unlabelled sample.
  template <class Number>
  void gauge(std::string_view name, std::string_view help, Number value) {
    family(name, metric_type::gauge, help);
    sample(name, value);
  }
  template <class Number>
  void counter(std::string_view name, std::string_view help, Number value) {
    family(name, metric_type::counter, help);
    sample(name, value);
  }

  // A histogram family. `per_bucket[i]` counts the observations in bucket i alone (not
  // cumulative); upper_bounds.size() + 1 entries, the last one +Inf. REQUIRES: that size.
  void histogram(std::string_view name, std::string_view help, std::span<const double> upper_bounds,
                 std::span<const std::uint64_t> per_bucket, double sum);

  // True if this writer has written family `name`.
  bool wrote(std::string_view name) const { return families_.count(name) != 0; }
  // Families written more than once (empty when the exposition is valid).
  const std::set<std::string, std::less<>>& repeats() const { return repeats_; }

 private:
  void append_labels(std::initializer_list<label> labels);

  std::string* out_ = nullptr;
  std::vector<std::string>* pieces_ = nullptr;
  std::set<std::string, std::less<>> families_;
  std::set<std::string, std::less<>> repeats_;
};

}  // namespace tandem::broker::prometheus
