#include "broker/stomp/encoder.h"

#include <charconv>

#include "broker/stomp/errc.h"
#include "broker/stomp/escape.h"

namespace tandem::stomp {
namespace {

constexpr std::string_view content_length = "content-length";

// Appends "name:value\n"; on error the caller rolls `out` back.
std::error_code append_header(std::string_view name, std::string_view value, escaping e, std::string& out) {
  if (name.empty()) return errc::unencodable_header;
  if (auto ec = escape_append(name, e, header_part::name, out)) return ec;
  out.push_back(':');
  if (auto ec = escape_append(value, e, header_part::value, out)) return ec;
  out.push_back('\n');
  return {};
}

void append_body(std::string_view body, std::string& out) {
  if (!body.empty()) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, body.size());
    (void)ec;  // 24 digits hold any size_t
    out.append(content_length);
    out.push_back(':');
    out.append(digits, end);
    out.push_back('\n');
  }
  out.push_back('\n');
  out.append(body);
  out.push_back('\0');
}

std::size_t headers_size_hint(std::span<const header> headers) {
  std::size_t n = 0;
  for (const auto& [name, value] : headers) n += name.size() + value.size() + 2;
  return n;
}

}  // namespace

std::error_code encode(const frame& f, version v, std::string& out) {
  const auto cmd = command_from_name(f.command);
  if (!cmd) return errc::bad_command;
  const escaping e = escaping_for(v, *cmd);
  const std::size_t start = out.size();
  out.reserve(start + f.command.size() + headers_size_hint(f.headers) + f.body.size() + 32);
  out.append(f.command);
  out.push_back('\n');
  for (const auto& [name, value] : f.headers) {
    if (name == content_length) continue;
    if (auto ec = append_header(name, value, e, out)) {
      out.resize(start);
      return ec;
    }
  }
  append_body(f.body, out);
  return {};
}

std::error_code encode_message(const message_view& m, version v, std::string& out) {
  const escaping e = escaping_for(v, command::message);
  const std::size_t start = out.size();
  out.reserve(start + 96 + m.destination.size() + m.message_id.size() + m.subscription.size() + m.ack.size() +
              headers_size_hint(m.headers) + m.body.size());
  out.append("MESSAGE\n");
  std::error_code ec = append_header("destination", m.destination, e, out);
  if (!ec) ec = append_header("message-id", m.message_id, e, out);
  if (!ec) ec = append_header("subscription", m.subscription, e, out);
  if (!ec && !m.ack.empty()) ec = append_header("ack", m.ack, e, out);
  for (auto it = m.headers.begin(); !ec && it != m.headers.end(); ++it) {
    const std::string_view name = it->first;
    if (name == "destination" || name == "message-id" || name == "subscription" || name == "ack" ||
        name == content_length) {
      continue;
    }
    ec = append_header(name, it->second, e, out);
  }
  if (ec) {
    out.resize(start);
    return ec;
  }
  append_body(m.body, out);
  return {};
}

std::error_code encode_receipt(std::string_view receipt_id, bool duplicate, version v, std::string& out) {
  const escaping e = escaping_for(v, command::receipt);
  const std::size_t start = out.size();
  out.reserve(start + 48 + receipt_id.size());
  out.append("RECEIPT\n");
  std::error_code ec = append_header("receipt-id", receipt_id, e, out);
  if (!ec && duplicate) ec = append_header("tandem-duplicate", "true", e, out);
  if (ec) {
    out.resize(start);
    return ec;
  }
  append_body({}, out);
  return {};
}

}  // namespace tandem::stomp
