// Test helpers: a message_view over a header list, and shorthands that parse and evaluate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "broker/selector/selector.h"

namespace tandem::selector::test {

class test_message final : public message_view {
 public:
  test_message() = default;
  test_message(std::initializer_list<std::pair<std::string, std::string>> headers) : headers_(headers) {}

  test_message& with(std::string name, std::string value) {
    headers_.emplace_back(std::move(name), std::move(value));
    return *this;
  }

  std::optional<std::string_view> header(std::string_view name) const noexcept override {
    for (const auto& [n, v] : headers_) {
      if (n == name) return std::string_view(v);
    }
    return std::nullopt;
  }
  std::string_view destination() const noexcept override { return destination_; }
  std::string_view message_id() const noexcept override { return message_id_; }
  std::uint32_t redelivery_count() const noexcept override { return redeliveries_; }

  std::vector<std::pair<std::string, std::string>> headers_;
  std::string destination_ = "/queue/orders";
  std::string message_id_ = "ID:tandem-1";
  std::uint32_t redeliveries_ = 0;
};

// The selector's SQL truth value for a message: TRUE when it matches, FALSE when NOT (it)
// matches, unknown otherwise (NULL, or an evaluation ActiveMQ aborts).
enum class truth { true_, false_, unknown };

inline const char* name(truth t) {
  return t == truth::true_ ? "TRUE" : t == truth::false_ ? "FALSE" : "UNKNOWN";
}

inline expression parsed(std::string_view text, const parse_options& options = {}) {
  auto r = parse(text, options);
  if (!r) FAIL_CHECK("selector refused: " << text << ": " << r.error().message);
  REQUIRE(r.has_value());
  return std::move(r).value();
}

inline bool matches(std::string_view text, const test_message& m = {}, const parse_options& options = {}) {
  return parsed(text, options).matches(m);
}

inline truth truth_of(std::string_view text, const test_message& m = {}, const parse_options& options = {}) {
  if (matches(text, m, options)) return truth::true_;
  std::string negated = "NOT (" + std::string(text) + ")";
  if (options.conversion == string_conversion::by_prefix && text.starts_with(convert_prefix)) {
    negated = std::string(convert_prefix) + "NOT (" + std::string(text.substr(convert_prefix.size())) + ")";
  }
  if (matches(negated, m, options)) return truth::false_;
  return truth::unknown;
}

// The error of a selector that must be refused.
inline parse_error refused(std::string_view text, const parse_options& options = {}) {
  auto r = parse(text, options);
  if (r) FAIL_CHECK("selector accepted: " << text);
  REQUIRE(!r.has_value());
  return r.error();
}

}  // namespace tandem::selector::test

namespace doctest {
template <>
struct StringMaker<tandem::selector::test::truth> {
  static String convert(tandem::selector::test::truth t) { return tandem::selector::test::name(t); }
};
}  // namespace doctest
