// stomp::parser: an incremental STOMP frame parser, a pure function over bytes (the shape of
// Asio's request_parser and Beast's basic_parser::put). No I/O, no logging, no session state.
//
// Usage (the connection's read loop):
//
//   stomp::parser p(stomp::direction::from_client);
//   std::span<const char> in = ...;                  // bytes read from the socket
//   while (!in.empty()) {
//     auto [used, status] = p.feed(in);
//     in = in.subspan(used);
//     switch (status) {
//       case parse_status::frame_ready: handle(p.take_frame()); break;   // maybe set_version
//       case parse_status::heartbeat: break;                            // an EOL between frames
//       case parse_status::need_more: break;                            // in is now empty
//       case parse_status::error: send_error(p.error()); close(); return;
//     }
//   }
//
// Contract:
// - feed() consumes as much as it can and stops after the first frame or heart-beat EOL it
//   completes, so the caller can act on a frame (e.g. switch version after CONNECT/CONNECTED)
//   before the next is parsed. need_more is returned only when every octet was consumed; the
//   caller keeps nothing: the parser buffers partial frames itself.
// - Any split of a byte stream gives the same frames, heart-beats and error (code, reason and
//   snippet); tests/unit/stomp checks every split of every example.
// - On error, `consumed` counts the octets examined; the connection is to be closed anyway.
// - Errors are sticky: after parse_status::error every feed() returns {0, error} until reset().
// - Memory is bounded by the limits: at most one frame (max_frame_bytes) plus one line.
//
// Threads: none of its own; one parser belongs to one connection and is used by one thread
// at a time (not synchronized).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <system_error>

#include "broker/stomp/escape.h"
#include "broker/stomp/frame.h"

namespace tandem::stomp {

// Whose frames the parser reads: a broker reads client frames (CONNECT..DISCONNECT), our
// client tools (bench, drill, tandemctl) read server frames (CONNECTED, MESSAGE, RECEIPT,
// ERROR). A frame of the other side is errc::bad_command.
enum class direction { from_client, from_server };

enum class parse_status {
  frame_ready,  // a frame is complete: take_frame()
  need_more,    // every octet given was consumed; feed more
  heartbeat,    // one EOL between frames was consumed
  error,        // see error(); fatal
};

struct feed_result {
  std::size_t consumed = 0;
  parse_status status = parse_status::need_more;
};

struct parse_error {
  std::error_code code;  // a stomp::errc
  std::string reason;    // one line for an ERROR frame or a log, e.g. "header line has no ':'"
  std::string snippet;   // at most ~32 offending octets, C-escaped and printable ("foo\\x00\\r")
};

class parser {
 public:
  explicit parser(direction dir, limits lim = {}, version v = version::v1_0);

  feed_result feed(std::span<const char> bytes);

  // The frame completed by the last feed() that returned frame_ready, moved out. Valid once
  // per frame; the next frame starts from an empty one.
  frame take_frame() { return std::move(frame_); }
  // The frame completed by the last frame_ready, still owned by the parser.
  const frame& current_frame() const noexcept { return frame_; }

  // Meaningful after parse_status::error.
  const parse_error& error() const noexcept { return error_; }

  // The protocol version used to unescape headers of frames that START after this call
  // (call it between frames, normally right after CONNECT / CONNECTED).
  void set_version(version v) noexcept { version_ = v; }
  version get_version() const noexcept { return version_; }

  const limits& get_limits() const noexcept { return limits_; }

  // True when no frame is partly read (nothing, or only heart-beat EOLs, since the last
  // frame): a peer closing now closed cleanly; otherwise it died mid-frame.
  bool between_frames() const noexcept { return state_ == state::idle || state_ == state::idle_cr; }
  // Octets of the frame being read that the parser holds (0 between frames): what a
  // connection reports to the broker's memory budget (broker/memory_budget.h).
  std::size_t partial_frame_bytes() const noexcept { return between_frames() ? 0 : frame_bytes_; }

  // Forgets any partial frame and a past error; keeps direction, limits and version.
  void reset() noexcept;

 private:
  enum class state { idle, idle_cr, command_line, header_line, body_to_nul, body_counted, expect_nul, failed };

  // Records the error and enters state::failed; the caller returns parse_status::error.
  void set_error(std::error_code code, std::string reason, std::string_view offending);
  // Reads octets of the current line into line_ (CR LF or LF stripped). True when the line is
  // complete; false when more is needed (pos == size) or it is too long (state::failed).
  bool read_line(const char* data, std::size_t size, std::size_t& pos, std::size_t max_line);
  // Handle a complete line; false when the frame failed.
  bool on_command_line();
  bool on_header_line();
  bool on_end_of_headers();

  direction direction_;
  limits limits_;
  version version_;

  state state_ = state::idle;
  escaping escaping_ = escaping::none;  // of the frame being read
  frame frame_;
  std::string line_;
  std::size_t frame_bytes_ = 0;        // octets of this frame consumed so far
  std::size_t body_limit_ = 0;         // body octets allowed (body_to_nul) or left (body_counted)
  parse_error error_;
};

// `bytes` C-escaped for a log line or an ERROR frame, at most `max_bytes` input octets, "..."
// appended when cut (nats protoSnippet).
std::string snippet(std::string_view bytes, std::size_t max_bytes = 32);

}  // namespace tandem::stomp
