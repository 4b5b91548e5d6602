// tools/drill/failover_svg: the drill's picture next to its JSON (issue 18).
#include <doctest/doctest.h>

#include <string>

#include "tools/drill/failover_svg.h"

using nlohmann::json;

namespace {

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("one dot per timed failover, one row per fault kind") {
  json record{{"lost", 0},
              {"failovers", json::array({{{"kind", "kill"}, {"ms", 120.0}}, {{"kind", "kill"}, {"ms", 300.5}},
                                         {{"kind", "power-loss"}, {"ms", 800.0}}, {{"kind", "term"}}})}};
  auto svg = tandem::drill::failover_svg(record, "drill <a&b>");
  CHECK(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK(svg.ends_with("</svg>\n"));
  CHECK(count(svg, "<circle") == 3);  // the untimed "term" episode has no dot
  CHECK(svg.find(">kill (2)<") != std::string::npos);
  CHECK(svg.find(">power-loss (1)<") != std::string::npos);
  CHECK(svg.find("term") == std::string::npos);
  CHECK(svg.find("drill &lt;a&amp;b&gt;") != std::string::npos);
  CHECK(svg.find("3 episodes, lost 0") != std::string::npos);
}

TEST_CASE("a record without timed failovers has no picture") {
  CHECK(tandem::drill::failover_svg(json{{"failovers", json::array()}}, "x").empty());
  CHECK(tandem::drill::failover_svg(json::object(), "x").empty());
}
