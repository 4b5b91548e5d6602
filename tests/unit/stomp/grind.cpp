#include "grind.h"

#include <doctest/doctest.h>

#include <span>

namespace tandem::stomp::test {

run_result run(const parser_setup& setup, const std::vector<std::string_view>& chunks) {
  parser p(setup.dir, setup.lim, setup.ver);
  run_result result;
  for (std::string_view chunk : chunks) {
    while (true) {
      const auto [used, status] = p.feed(std::span<const char>(chunk.data(), chunk.size()));
      // Plain ifs, not CHECKs: a grind runs this tens of thousands of times.
      if (used > chunk.size()) FAIL("feed consumed " << used << " of " << chunk.size() << " octets");
      chunk.remove_prefix(used);
      if (status == parse_status::need_more) {
        if (!chunk.empty()) FAIL("need_more with " << chunk.size() << " octets left unconsumed");
        break;
      }
      event e;
      e.status = status;
      if (status == parse_status::frame_ready) {
        e.f = p.take_frame();
      } else if (status == parse_status::error) {
        e.error_name = errc_name(static_cast<errc>(p.error().code.value()));
        e.reason = p.error().reason;
        e.snippet = p.error().snippet;
        result.events.push_back(std::move(e));
        // Sticky: nothing more is consumed, whatever is offered.
        const auto again = p.feed(std::span<const char>("SEND\n\n", 7));
        if (again.consumed != 0 || again.status != parse_status::error) FAIL_CHECK("error is not sticky");
        return result;
      }
      result.events.push_back(std::move(e));
      if (chunk.empty()) break;
    }
  }
  return result;
}

run_result run_whole(const parser_setup& setup, std::string_view input) { return run(setup, {input}); }

std::size_t grind(const parser_setup& setup, std::string_view input, std::size_t max_three_way) {
  const run_result expected = run_whole(setup, input);
  std::size_t cuts = 0;
  const auto check = [&](const std::vector<std::string_view>& chunks, std::size_t i, std::size_t j) {
    ++cuts;
    const run_result got = run(setup, chunks);
    if (!(got == expected)) {
      FAIL_CHECK("cut at " << i << "," << j << " gives " << describe(got) << " instead of " << describe(expected));
    }
    return got == expected;
  };

  for (std::size_t i = 0; i <= input.size(); ++i) {
    if (!check({input.substr(0, i), input.substr(i)}, i, i)) return cuts;
  }
  std::vector<std::string_view> octets;
  for (std::size_t i = 0; i < input.size(); ++i) octets.push_back(input.substr(i, 1));
  check(octets, 1, 1);
  if (input.size() <= max_three_way) {
    for (std::size_t i = 1; i < input.size(); ++i) {
      for (std::size_t j = i + 1; j < input.size(); ++j) {
        if (!check({input.substr(0, i), input.substr(i, j - i), input.substr(j)}, i, j)) return cuts;
      }
    }
  }
  return cuts;
}

std::string describe(const run_result& r) {
  std::string out = "[";
  for (const auto& e : r.events) {
    switch (e.status) {
      case parse_status::frame_ready:
        out += " frame " + e.f.command + "(" + std::to_string(e.f.headers.size()) + " headers, " +
               std::to_string(e.f.body.size()) + " body octets)";
        break;
      case parse_status::heartbeat: out += " heartbeat"; break;
      case parse_status::error: out += " error " + e.error_name + " '" + e.reason + "' snippet '" + e.snippet + "'"; break;
      case parse_status::need_more: out += " need_more"; break;
    }
  }
  return out + " ]";
}

}  // namespace tandem::stomp::test
