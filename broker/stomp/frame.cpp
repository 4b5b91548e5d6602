#include "broker/stomp/frame.h"

#include <array>

namespace tandem::stomp {
namespace {

constexpr std::array<std::string_view, 15> command_names = {
    "CONNECT", "STOMP",  "SEND",   "SUBSCRIBE", "UNSUBSCRIBE", "ACK",     "NACK",  "BEGIN",
    "COMMIT",  "ABORT",  "DISCONNECT", "CONNECTED", "MESSAGE", "RECEIPT", "ERROR",
};

}  // namespace

std::string_view version_name(version v) noexcept {
  switch (v) {
    case version::v1_0: return "1.0";
    case version::v1_1: return "1.1";
    case version::v1_2: return "1.2";
  }
  return "1.0";
}

std::optional<version> version_from_name(std::string_view name) noexcept {
  if (name == "1.0") return version::v1_0;
  if (name == "1.1") return version::v1_1;
  if (name == "1.2") return version::v1_2;
  return std::nullopt;
}

std::string_view command_name(command c) noexcept {
  return command_names[static_cast<std::size_t>(c)];
}

std::optional<command> command_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < command_names.size(); ++i) {
    if (command_names[i] == name) return static_cast<command>(i);
  }
  return std::nullopt;
}

bool is_client_command(command c) noexcept {
  return static_cast<int>(c) <= static_cast<int>(command::disconnect);
}

bool is_never_escaped(command c) noexcept {
  return c == command::connect || c == command::stomp || c == command::connected;
}

std::optional<std::string_view> frame::get(std::string_view name) const noexcept {
  for (const auto& [key, value] : headers) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

void frame::add(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
}

void frame::clear() noexcept {
  command.clear();
  headers.clear();
  body.clear();
}

}  // namespace tandem::stomp
