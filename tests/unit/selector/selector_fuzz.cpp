// libFuzzer harness for selector::parse (built only with clang; see CMakeLists.txt).
//
// For each input, with the default options, tiny limits and OpenWire's by_prefix conversion,
// it checks the parser's promises and aborts on a breach:
// - a refusal carries a selector errc, an offset within the text, a column >= 1 and a message;
// - an accepted selector prints (to_string) to a text that parses back to the same print and
//   gives the same verdict on a few fixed messages; evaluation never crashes.
// Seed corpus: tests/fixtures/selector/good and bad.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/selector/selector.h"

namespace {

using namespace tandem::selector;

void require(bool ok) {
  if (!ok) std::abort();
}

class fuzz_message final : public message_view {
 public:
  explicit fuzz_message(std::vector<std::pair<std::string, std::string>> headers, std::uint32_t redeliveries)
      : headers_(std::move(headers)), redeliveries_(redeliveries) {}
  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [n, v] : headers_) {
      if (n == name) return std::string_view(v);
    }
    return std::nullopt;
  }
  std::string_view destination() const noexcept override { return "/queue/fuzz"; }
  std::string_view message_id() const noexcept override { return "ID:fuzz-1"; }
  std::uint32_t redelivery_count() const noexcept override { return redeliveries_; }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
  std::uint32_t redeliveries_;
};

const std::vector<fuzz_message>& messages() {
  static const std::vector<fuzz_message> all{
      fuzz_message({}, 0),
      fuzz_message({{"a", "1"}, {"b", "x"}, {"c", "2.5"}, {"priority", "7"}}, 1),
      fuzz_message({{"a", "abc"}, {"b", ""}, {"c", "true"}, {"x", "10"}, {"type", "t"}}, 0),
  };
  return all;
}

void check(std::string_view input, const parse_options& options) {
  auto r = parse(input, options);
  if (!r) {
    const parse_error& e = r.error();
    require(e.code.category() == selector_category());
    require(e.offset <= input.size());
    require(e.column >= 1 && e.line >= 1);
    require(!e.message.empty());
    return;
  }
  const std::string printed = r.value().to_string();
  parse_options loose = options;
  loose.max_length = printed.size() + 1;
  loose.max_depth = options.max_depth * 2 + 2;  // parentheses of the print add nesting
  auto again = parse(printed, loose);
  require(again.has_value());
  require(again.value().to_string() == printed);
  for (const auto& m : messages()) require(r.value().matches(m) == again.value().matches(m));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check(input, parse_options{});
  parse_options tiny;
  tiny.max_length = 64;
  tiny.max_depth = 6;
  check(input, tiny);
  parse_options openwire;
  openwire.conversion = string_conversion::by_prefix;
  check(input, openwire);
  return 0;
}
