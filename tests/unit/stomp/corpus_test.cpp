// Replays the corpus of tests/fixtures/stomp/ (written by make_corpus.py there): each stream,
// whole and cut at every octet, must give exactly the events its .json lists.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "broker/stomp/errc.h"
#include "grind.h"

namespace tandem::stomp {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

test::parser_setup setup_of(const nlohmann::json& meta) {
  test::parser_setup setup;
  setup.dir = meta.at("direction") == "server" ? direction::from_server : direction::from_client;
  const auto v = version_from_name(meta.at("version").get<std::string>());
  REQUIRE(v.has_value());
  setup.ver = *v;
  if (meta.contains("limits")) {
    for (const auto& [key, value] : meta["limits"].items()) {
      const auto n = value.get<std::size_t>();
      if (key == "max_command_bytes") setup.lim.max_command_bytes = n;
      else if (key == "max_header_line_bytes") setup.lim.max_header_line_bytes = n;
      else if (key == "max_header_count") setup.lim.max_header_count = n;
      else if (key == "max_frame_bytes") setup.lim.max_frame_bytes = n;
      else FAIL("unknown limit " << key);
    }
  }
  return setup;
}

std::vector<test::event> events_of(const nlohmann::json& meta) {
  std::vector<test::event> events;
  for (const auto& j : meta.at("events")) {
    test::event e;
    if (j.contains("frame")) {
      e.status = parse_status::frame_ready;
      const auto& f = j["frame"];
      e.f.command = f.at("command").get<std::string>();
      for (const auto& h : f.at("headers")) e.f.add(h.at(0).get<std::string>(), h.at(1).get<std::string>());
      e.f.body = f.at("body").get<std::string>();
    } else if (j.contains("heartbeat")) {
      e.status = parse_status::heartbeat;
    } else {
      e.status = parse_status::error;
      e.error_name = j.at("error").get<std::string>();
    }
    events.push_back(std::move(e));
  }
  return events;
}

// Reason and snippet are checked by parser_test; the corpus pins the error code.
std::vector<test::event> without_error_text(std::vector<test::event> events) {
  for (auto& e : events) {
    e.reason.clear();
    e.snippet.clear();
  }
  return events;
}

std::size_t replay(const std::string& kind) {
  const fs::path dir = fs::path(TANDEM_STOMP_FIXTURES) / kind;
  std::vector<fs::path> streams;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".stomp") streams.push_back(entry.path());
  }
  std::sort(streams.begin(), streams.end());
  for (const auto& path : streams) {
    CAPTURE(path.filename().string());
    const std::string input = read_file(path);
    auto json_path = path;
    const auto meta = nlohmann::json::parse(read_file(json_path.replace_extension(".json")));
    const auto setup = setup_of(meta);
    const auto expected = events_of(meta);
    const auto got = test::run_whole(setup, input);
    CHECK_MESSAGE(without_error_text(got.events) == expected, test::describe(got));
    const bool ends_in_error = !expected.empty() && expected.back().status == parse_status::error;
    CHECK(ends_in_error == (kind == "bad"));
    test::grind(setup, input);
  }
  return streams.size();
}

TEST_CASE("every good stream of the corpus parses to its expected frames at every cut") {
  CHECK(replay("good") >= 10);
}

TEST_CASE("every bad stream of the corpus fails with its expected error at every cut") {
  CHECK(replay("bad") >= 15);
}

}  // namespace
}  // namespace tandem::stomp
