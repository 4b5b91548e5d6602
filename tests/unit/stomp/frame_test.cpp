#include <doctest/doctest.h>

#include "broker/stomp/frame.h"

namespace tandem::stomp {
namespace {

TEST_CASE("get returns the first header of a name and nothing for a missing one") {
  frame f{"SEND", {{"a", "1"}, {"b", "2"}, {"a", "3"}}, {}};
  CHECK(f.get("a") == "1");
  CHECK(f.get("b") == "2");
  CHECK(!f.get("c").has_value());
  f.add("c", "4");
  f.add("b", "5");
  CHECK(f.get("c") == "4");
  CHECK(f.get("b") == "2");
  CHECK(f.headers.size() == 5);
  f.clear();
  CHECK(f == frame{});
}

TEST_CASE("command names round-trip and split into client and server frames") {
  int client = 0;
  int server = 0;
  for (int i = 0; i <= static_cast<int>(command::error); ++i) {
    const auto c = static_cast<command>(i);
    CHECK(command_from_name(command_name(c)) == c);
    (is_client_command(c) ? client : server)++;
  }
  CHECK(client == 11);
  CHECK(server == 4);
  CHECK(!command_from_name("send").has_value());
  CHECK(!command_from_name("").has_value());
  CHECK(is_never_escaped(command::connect));
  CHECK(is_never_escaped(command::stomp));
  CHECK(is_never_escaped(command::connected));
  CHECK(!is_never_escaped(command::send));
}

TEST_CASE("version names round-trip") {
  for (version v : {version::v1_0, version::v1_1, version::v1_2}) CHECK(version_from_name(version_name(v)) == v);
  CHECK(!version_from_name("1.3").has_value());
  CHECK(!version_from_name("1").has_value());
}

}  // namespace
}  // namespace tandem::stomp
