#include "tools/drill/failover_svg.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include <fmt/format.h>

namespace tandem::drill {

namespace {

constexpr const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#17becf"};

std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

std::string failover_svg(const nlohmann::json& record, std::string_view title) {
  std::map<std::string, std::vector<double>> by_kind;
  if (record.contains("failovers") && record["failovers"].is_array())
    for (const auto& f : record["failovers"])
      if (f.is_object() && f.contains("ms") && f["ms"].is_number()) by_kind[f.value("kind", "?")].push_back(f["ms"].get<double>());
  if (by_kind.empty()) return {};
  double lo = 1e300, hi = 0;
  std::size_t episodes = 0;
  for (auto& [_, v] : by_kind) {
    std::sort(v.begin(), v.end());
    lo = std::min(lo, v.front());
    hi = std::max(hi, v.back());
    episodes += v.size();
  }
  lo = std::max(1.0, lo * 0.8);
  hi = std::max(lo * 10, hi * 1.25);
  const double left = 130, right = 40, top = 60, row = 34, width = 900;
  const double plot_w = width - left - right, bottom = top + row * static_cast<double>(by_kind.size());
  const double height = bottom + 45;
  auto x_of = [&](double ms) { return left + (std::log10(std::max(ms, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) * plot_w; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  svg += fmt::format("<text x=\"{}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>\n", left, escaped(title));
  svg += fmt::format(
      "<text x=\"{}\" y=\"42\" font-size=\"11\" fill=\"#555\">failover time per fault kind: {} episodes, lost {}; "
      "dots = episodes, solid = p50, dashed = p99 (log scale)</text>\n",
      left, episodes, record.contains("lost") ? record["lost"].dump() : "?");
  for (double decade = std::pow(10.0, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
    for (double m : {1.0, 2.0, 5.0}) {
      double t = decade * m;
      if (t < lo || t > hi) continue;
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#e5e5e5\"/>\n", x_of(t), top - 5, bottom);
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#555\">{:g}</text>\n", x_of(t),
                         bottom + 16, t);
    }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">milliseconds from "
                     "fault to the first RECEIPT of the new master</text>\n",
                     left + plot_w / 2, bottom + 34);
  std::size_t i = 0;
  for (const auto& [kind, values] : by_kind) {
    const double y = top + row * static_cast<double>(i) + row / 2;
    const char* color = palette[i % std::size(palette)];
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{} ({})</text>\n", left - 8, y + 4,
                       escaped(kind), values.size());
    for (std::size_t j = 0; j < values.size(); ++j) {
      const double jitter = (static_cast<double>((j * 7) % 9) - 4) * 1.6;
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\" fill-opacity=\"0.6\"/>\n", x_of(values[j]),
                         y + jitter, color);
    }
    const double p50 = percentile(values, 50), p99 = percentile(values, 99);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#000\" stroke-width=\"2\"/>\n",
                       x_of(p50), y - 11, y + 11);
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#000\" stroke-dasharray=\"3,2\"/>\n",
                       x_of(p99), y - 11, y + 11);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"9\" fill=\"#333\">{:.0f}</text>\n", left + plot_w + 4, y + 4, p50);
    ++i;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace tandem::drill
