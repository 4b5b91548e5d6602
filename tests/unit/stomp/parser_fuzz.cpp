// libFuzzer harness for stomp::parser (built only with clang; see CMakeLists.txt).
//
// For each input, every direction, version and two sets of limits (defaults, and tiny ones
// so the limit paths are reached), it checks the parser's promises and aborts on a breach:
// - the same events whether the input is fed whole or cut into pseudo-random pieces;
// - feed never claims more octets than given, need_more only when all were used;
// - every parsed frame the encoder accepts parses back to itself (plus content-length).
// Seed corpus: tests/fixtures/stomp/good and bad.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "broker/stomp/encoder.h"
#include "broker/stomp/parser.h"

namespace {

using namespace tandem::stomp;

struct event {
  parse_status status;
  frame f;
  std::error_code code;
  std::string reason;
  std::string snippet;
  bool operator==(const event&) const = default;
};

void require(bool ok) {
  if (!ok) std::abort();
}

std::vector<event> run(direction dir, version v, const limits& lim, std::string_view input,
                       std::uint64_t seed) {
  parser p(dir, lim, v);
  std::vector<event> events;
  std::uint64_t state = seed | 1;
  while (!input.empty()) {
    std::size_t piece = input.size();
    if (seed != 0) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      piece = 1 + static_cast<std::size_t>((state >> 33) % 17);
      if (piece > input.size()) piece = input.size();
    }
    std::string_view chunk = input.substr(0, piece);
    input.remove_prefix(piece);
    while (true) {
      const auto [used, status] = p.feed(std::span<const char>(chunk.data(), chunk.size()));
      require(used <= chunk.size());
      chunk.remove_prefix(used);
      if (status == parse_status::need_more) {
        require(chunk.empty());
        break;
      }
      event e{status, {}, {}, {}, {}};
      if (status == parse_status::frame_ready) e.f = p.take_frame();
      if (status == parse_status::error) {
        e.code = p.error().code;
        e.reason = p.error().reason;
        e.snippet = p.error().snippet;
        events.push_back(std::move(e));
        return events;
      }
      events.push_back(std::move(e));
      if (chunk.empty()) break;
    }
  }
  return events;
}

void check_round_trip(const frame& f, direction dir, version v) {
  std::string bytes;
  if (encode(f, v, bytes)) return;  // not representable in this version: refused, fine
  const auto back = run(dir, v, limits{}, bytes, 0);
  require(back.size() == 1 && back[0].status == parse_status::frame_ready);
  frame expected = f;
  std::erase_if(expected.headers, [](const header& h) { return h.first == "content-length"; });
  if (!f.body.empty()) expected.add("content-length", std::to_string(f.body.size()));
  require(back[0].f == expected);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  limits tiny;
  tiny.max_command_bytes = 12;
  tiny.max_header_line_bytes = 24;
  tiny.max_header_count = 4;
  tiny.max_frame_bytes = 96;
  for (direction dir : {direction::from_client, direction::from_server}) {
    for (version v : {version::v1_0, version::v1_1, version::v1_2}) {
      for (const limits& lim : {limits{}, tiny}) {
        const auto whole = run(dir, v, lim, input, 0);
        require(run(dir, v, lim, input, size * 31 + 7) == whole);
        for (const auto& e : whole) {
          if (e.status == parse_status::frame_ready) check_round_trip(e.f, dir, v);
        }
      }
    }
  }
  return 0;
}
