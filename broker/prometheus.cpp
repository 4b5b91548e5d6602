#include "broker/prometheus.h"

namespace tandem::broker::prometheus {

std::string_view to_string(metric_type t) {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void writer::family(std::string_view name, metric_type type, std::string_view help) {
  if (!families_.emplace(name).second) repeats_.emplace(name);
  fmt::format_to(std::back_inserter(*out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, to_string(type));
}

void writer::append_labels(std::initializer_list<label> labels) {
  if (labels.size() == 0) return;
  *out_ += '{';
  bool first = true;
  for (const auto& l : labels) {
    if (!first) *out_ += ',';
    first = false;
    fmt::format_to(std::back_inserter(*out_), "{}=\"{}\"", l.name, escape_label_value(l.value));
  }
  *out_ += '}';
}

void writer::histogram(std::string_view name, std::string_view help, std::span<const double> upper_bounds,
                       std::span<const std::uint64_t> per_bucket, double sum) {
  family(name, metric_type::histogram, help);
  const std::string bucket = fmt::format("{}_bucket", name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < upper_bounds.size() && i < per_bucket.size(); ++i) {
    cumulative += per_bucket[i];
    const std::string le = fmt::format("{}", upper_bounds[i]);
    sample(bucket, {{"le", le}}, cumulative);
  }
  if (per_bucket.size() > upper_bounds.size()) cumulative += per_bucket[upper_bounds.size()];
  sample(bucket, {{"le", "+Inf"}}, cumulative);
  sample(fmt::format("{}_sum", name), sum);
  sample(fmt::format("{}_count", name), cumulative);  // = the +Inf bucket, read once
}

}  // namespace tandem::broker::prometheus
