#include "broker/stomp/parser.h"

#include <algorithm>
#include <cstring>

#include "broker/stomp/errc.h"
#include "broker/stomp/header_values.h"

namespace tandem::stomp {

// Determinism under any split (the parser's main promise) rests on three rules:
// - every decision is taken on octets the parser has buffered or on counters, never on how
//   many octets the current feed() happened to carry;
// - a line is buffered up to its LF, but never more than max_line + 2 octets (the line, a CR,
//   one octet over), so "too long" is decided on the same prefix whatever the split;
// - snippets quote only buffered state (the line, the command, one offending octet).

parser::parser(direction dir, limits lim, version v) : direction_(dir), limits_(lim), version_(v) {}

void parser::reset() noexcept {
  state_ = state::idle;
  frame_.clear();
  line_.clear();
  frame_bytes_ = 0;
  body_limit_ = 0;
  error_.code.clear();
  error_.reason.clear();
  error_.snippet.clear();
}

void parser::set_error(std::error_code code, std::string reason, std::string_view offending) {
  state_ = state::failed;
  error_.code = code;
  error_.reason = std::move(reason);
  error_.snippet = snippet(offending);
}

feed_result parser::feed(std::span<const char> bytes) {
  const char* const data = bytes.data();
  const std::size_t size = bytes.size();
  std::size_t pos = 0;
  if (state_ == state::failed) return {0, parse_status::error};

  while (pos < size) {
    switch (state_) {
      case state::idle: {
        const char c = data[pos];
        if (c == '\n') return {pos + 1, parse_status::heartbeat};
        if (c == '\r') {
          ++pos;
          state_ = state::idle_cr;
          break;
        }
        frame_.clear();
        line_.clear();
        frame_bytes_ = 0;
        state_ = state::command_line;
        break;
      }

      case state::idle_cr: {
        if (data[pos] == '\n') {
          state_ = state::idle;
          return {pos + 1, parse_status::heartbeat};
        }
        const char seen[2] = {'\r', data[pos]};
        set_error(errc::bad_eol, "CR not followed by LF between frames", {seen, 2});
        return {pos, parse_status::error};
      }

      case state::command_line:
        if (!read_line(data, size, pos, limits_.max_command_bytes)) {
          if (state_ == state::failed) return {pos, parse_status::error};
          break;
        }
        if (!on_command_line()) return {pos, parse_status::error};
        break;

      case state::header_line:
        if (!read_line(data, size, pos, limits_.max_header_line_bytes)) {
          if (state_ == state::failed) return {pos, parse_status::error};
          break;
        }
        if (!(line_.empty() ? on_end_of_headers() : on_header_line())) return {pos, parse_status::error};
        break;

      case state::body_to_nul: {
        // Scan at most one octet past the allowed body: a NUL there is still too late.
        const std::size_t room = body_limit_ - frame_.body.size();
        const std::size_t scan = std::min(size - pos, room + 1);
        const char* start = data + pos;
        const auto* nul = static_cast<const char*>(std::memchr(start, '\0', scan));
        if (nul != nullptr) {
          const std::size_t n = static_cast<std::size_t>(nul - start);
          frame_.body.append(start, n);
          frame_bytes_ += n + 1;
          state_ = state::idle;
          return {pos + n + 1, parse_status::frame_ready};
        }
        frame_.body.append(start, scan);
        frame_bytes_ += scan;
        pos += scan;
        if (frame_.body.size() > body_limit_) {
          set_error(errc::frame_too_large,
                    "frame larger than " + std::to_string(limits_.max_frame_bytes) + " octets", frame_.command);
          return {pos, parse_status::error};
        }
        break;
      }

      case state::body_counted: {
        const std::size_t n = std::min(size - pos, body_limit_);
        frame_.body.append(data + pos, n);
        frame_bytes_ += n;
        pos += n;
        body_limit_ -= n;
        if (body_limit_ == 0) state_ = state::expect_nul;
        break;
      }

      case state::expect_nul:
        if (data[pos] == '\0') {
          ++frame_bytes_;
          state_ = state::idle;
          return {pos + 1, parse_status::frame_ready};
        }
        set_error(errc::missing_nul, "octet after the content-length body is not NUL", {data + pos, 1});
        return {pos, parse_status::error};

      case state::failed:
        return {pos, parse_status::error};
    }
  }
  return {pos, parse_status::need_more};
}

bool parser::read_line(const char* data, std::size_t size, std::size_t& pos, std::size_t max_line) {
  const std::size_t cap = max_line + 2;
  const std::size_t scan = std::min(size - pos, cap - line_.size());
  const char* start = data + pos;
  const auto* lf = static_cast<const char*>(std::memchr(start, '\n', scan));
  const std::size_t n = lf != nullptr ? static_cast<std::size_t>(lf - start) : scan;
  line_.append(start, n);
  const std::size_t used = lf != nullptr ? n + 1 : n;
  pos += used;
  frame_bytes_ += used;
  if (lf != nullptr && !line_.empty() && line_.back() == '\r') line_.pop_back();

  // Without a LF, a full buffer holds max_line + 1 octets even if its last is a CR.
  if (lf == nullptr ? line_.size() >= cap : line_.size() > max_line) {
    if (state_ == state::command_line) {
      set_error(errc::command_too_long, "command line longer than " + std::to_string(max_line) + " octets", line_);
    } else {
      set_error(errc::header_too_long, "header line longer than " + std::to_string(max_line) + " octets", line_);
    }
    return false;
  }
  if (lf == nullptr) return false;
  if (frame_bytes_ > limits_.max_frame_bytes) {
    set_error(errc::frame_too_large,
              "frame headers exceed " + std::to_string(limits_.max_frame_bytes) + " octets", frame_.command);
    return false;
  }
  return true;
}

bool parser::on_command_line() {
  const auto cmd = command_from_name(line_);
  if (!cmd) {
    set_error(errc::bad_command, "unknown command", line_);
    return false;
  }
  const bool want_client = direction_ == direction::from_client;
  if (is_client_command(*cmd) != want_client) {
    set_error(errc::bad_command, want_client ? "a server frame sent by a client" : "a client frame sent by a server",
              line_);
    return false;
  }
  frame_.command.assign(line_);
  escaping_ = escaping_for(version_, *cmd);
  line_.clear();
  state_ = state::header_line;
  return true;
}

bool parser::on_header_line() {
  if (frame_.headers.size() >= limits_.max_header_count) {
    set_error(errc::too_many_headers, "more than " + std::to_string(limits_.max_header_count) + " headers", line_);
    return false;
  }
  const std::size_t colon = line_.find(':');
  if (colon == std::string::npos || colon == 0) {
    set_error(errc::bad_header_line, colon == 0 ? "header line with an empty name" : "header line has no ':'", line_);
    return false;
  }
  const std::string_view line(line_);
  header& h = frame_.headers.emplace_back();
  std::size_t bad_at = 0;
  const bool name_ok = unescape(line.substr(0, colon), escaping_, h.first, &bad_at);
  const bool value_ok = name_ok && unescape(line.substr(colon + 1), escaping_, h.second, &bad_at);
  if (!value_ok) {
    frame_.headers.pop_back();
    if (name_ok) bad_at += colon + 1;
    // Quote from a little before the backslash so the snippet shows where it is.
    const std::size_t from = bad_at > 8 ? bad_at - 8 : 0;
    set_error(errc::bad_escape, "undefined escape sequence in header", line.substr(from));
    return false;
  }
  line_.clear();
  return true;
}

bool parser::on_end_of_headers() {
  // frame_bytes_ <= max_frame_bytes here: read_line checked it.
  const std::size_t room = limits_.max_frame_bytes - frame_bytes_;
  if (const auto value = frame_.get("content-length")) {
    const auto length = parse_content_length(*value);
    if (!length) {
      set_error(errc::bad_content_length, "content-length is not a decimal number", *value);
      return false;
    }
    if (room == 0 || length.value() > room - 1) {
      set_error(errc::frame_too_large,
                "content-length " + std::to_string(length.value()) + " exceeds the frame limit of " +
                    std::to_string(limits_.max_frame_bytes) + " octets",
                *value);
      return false;
    }
    body_limit_ = length.value();
    frame_.body.reserve(body_limit_);
    state_ = body_limit_ == 0 ? state::expect_nul : state::body_counted;
  } else {
    if (room == 0) {
      set_error(errc::frame_too_large,
                "frame headers exceed " + std::to_string(limits_.max_frame_bytes) + " octets", frame_.command);
      return false;
    }
    body_limit_ = room - 1;
    state_ = state::body_to_nul;
  }
  return true;
}

std::string snippet(std::string_view bytes, std::size_t max_bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  const std::size_t n = std::min(bytes.size(), max_bytes);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\0': out += "\\0"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          out += "\\x";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xf]);
        }
    }
  }
  if (bytes.size() > n) out += "...";
  return out;
}

}  // namespace tandem::stomp
