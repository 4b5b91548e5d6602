#include "tools/drill/drill.h"

#include <algorithm>
#include <cmath>

#include "tools/drill/controller.h"

namespace tandem::drill {

std::atomic<bool> stop_requested{false};

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

drill_result run_drill(const drill_options& options) {
  controller c(options);
  return c.run();
}

}  // namespace tandem::drill
