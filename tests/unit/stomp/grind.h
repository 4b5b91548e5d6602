// Test helpers: run a parser over a byte stream cut into chunks and record what it reports,
// and the Beast-style grinders that cut the same stream at every point.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "broker/stomp/errc.h"
#include "broker/stomp/parser.h"

namespace tandem::stomp::test {

struct parser_setup {
  direction dir = direction::from_client;
  version ver = version::v1_2;
  limits lim = {};
};

// One thing the parser reported; need_more is not recorded (it depends on the cut).
struct event {
  parse_status status = parse_status::need_more;
  frame f;                  // frame_ready
  std::string error_name;   // error: errc_name
  std::string reason;
  std::string snippet;
  friend bool operator==(const event&, const event&) = default;
};

struct run_result {
  std::vector<event> events;
  friend bool operator==(const run_result&, const run_result&) = default;
};

// Feeds `chunks` in order, each until used up or an error.
run_result run(const parser_setup& setup, const std::vector<std::string_view>& chunks);
run_result run_whole(const parser_setup& setup, std::string_view input);

// Every way of cutting `input` into two pieces, into single octets, and (for inputs up to
// `max_three_way` octets) into three pieces gives exactly run_whole's result. Returns the
// number of cuts checked; failures are reported through doctest with the cut.
std::size_t grind(const parser_setup& setup, std::string_view input, std::size_t max_three_way = 160);

// Short printable form for failure messages.
std::string describe(const run_result& r);

}  // namespace tandem::stomp::test
