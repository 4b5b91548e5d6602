// STOMP frames: the wire grammar Tandem accepts (1.0, 1.1, 1.2), header escaping per version,
// our limits, and the in-memory `frame`. This header is the single source for the format;
// parser.h reads it, encoder.h writes it. Spec: https://stomp.github.io/stomp-specification-1.2.html
//
// ---------------------------------------------------------------------------------------------
// 1. Grammar (octets; ABNF-like)
//
//   stream   = *( EOL / frame )          EOLs between frames are heart-beats, never frame data
//   frame    = command EOL *( header EOL ) EOL body NUL
//   command  = one of the commands in `command` below, exactly, case-sensitive
//   header   = name ":" value            split at the FIRST ':'; later ':' belong to the value
//   name     = 1*<octet except LF, ":">  (after unescaping it may contain anything)
//   value    = *<octet except LF>
//   EOL      = [CR] LF                   CR LF is accepted in EVERY version (see 3)
//   body     = *<octet except NUL>       when the frame has no content-length header
//            / content-length octets     when it has one; the body may then contain NULs
//   NUL      = %x00
//
// Worked example: a 1.2 SEND whose 3-octet body holds a NUL, followed by one heart-beat.
//
//   off  octets                      meaning
//     0  "SEND" LF                   command line
//     5  "destination:/queue/a" LF   header 1
//    26  "content-length:3" LF       header 2: the body is exactly 3 octets
//    43  LF                          blank line: end of headers
//    44  'a' NUL 'b'                 body (the NUL is data, content-length says so)
//    47  NUL                        end of frame; the frame is 48 octets
//    48  LF                          heart-beat, reported on its own
//
// ---------------------------------------------------------------------------------------------
// 2. Header escaping (names and values alike)
//
//   sent   means   1.0   1.1   1.2
//   \\     0x5c    -     yes   yes
//   \n     0x0a    -     yes   yes
//   \c     0x3a    -     yes   yes     (':')
//   \r     0x0d    -     -     yes
//
// - 1.0 has no escaping: a backslash is an ordinary octet.
// - 1.1 and 1.2: any other octet after '\' (including '\r' in 1.1), or '\' as the last octet
//   of a name or value, is fatal: errc::bad_escape (the 1.2 spec says "MUST treat as fatal").
// - CONNECT, STOMP and CONNECTED frames are never escaped, in any version (the spec keeps them
//   readable by 1.0 peers; the version is not yet known when they are read).
// - The parser's version is set by the caller after negotiation (parser::set_version); until
//   then it is 1.0, so nothing is unescaped.
//
// ---------------------------------------------------------------------------------------------
// 3. Leniencies, and why
//
// - CR LF ends a line in 1.0 and 1.1 too (only 1.2 defines it): the CONNECT frame is read
//   before the version is known, and ActiveMQ accepts it everywhere. The price: in 1.0/1.1 a
//   value cannot end in a raw CR (the encoder refuses to write one, errc::unencodable_header).
// - A raw ':' in a value and a raw CR inside a value are kept as octets (1.2 forbids both;
//   ActiveMQ and most clients accept them, and rejecting them protects nothing).
// - Repeated headers are all kept, in order; frame::get returns the FIRST (1.2: "only the first
//   header entry SHOULD be used"), and so does the parser when it reads content-length.
// - content-length must be plain decimal digits (no sign, no spaces, at most 19 digits):
//   anything else is errc::bad_content_length, never "no content-length".
//
// ---------------------------------------------------------------------------------------------
// 4. Limits (constructor arguments of the parser; defaults below)
//
//   limit                   default        counts                                   error
//   max_command_bytes       64             the command line, without EOL            command_too_long
//   max_header_line_bytes   10 KiB         one header line as sent, without EOL     header_too_long
//   max_header_count        1000           header lines in one frame                too_many_headers
//   max_frame_bytes         10 MiB+64 KiB  octets from the first command octet      frame_too_large
//                                          through the NUL (headers and body)
//
// "Exactly at the limit" is accepted, one octet over is refused. max_frame_bytes is checked at
// the end of every line and on every body octet; a content-length that cannot fit is refused
// at the blank line, before any body octet is read or buffered. The default leaves 64 KiB of
// headers on top of a 10 MiB body.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::stomp {

enum class version { v1_0, v1_1, v1_2 };

// "1.0", "1.1", "1.2".
std::string_view version_name(version v) noexcept;
// The inverse of version_name; nullopt for anything else.
std::optional<version> version_from_name(std::string_view name) noexcept;

enum class command {
  // Client frames.
  connect, stomp, send, subscribe, unsubscribe, ack, nack, begin, commit, abort, disconnect,
  // Server frames.
  connected, message, receipt, error,
};

// The wire spelling ("SUBSCRIBE").
std::string_view command_name(command c) noexcept;
// The command for an exact wire spelling; nullopt for anything else.
std::optional<command> command_from_name(std::string_view name) noexcept;
// CONNECT .. DISCONNECT.
bool is_client_command(command c) noexcept;
// CONNECT, STOMP and CONNECTED: frames whose headers are never escaped (section 2).
bool is_never_escaped(command c) noexcept;

struct limits {
  static constexpr std::size_t default_max_body_bytes = std::size_t{10} << 20;
  static constexpr std::size_t default_header_allowance = std::size_t{64} << 10;

  std::size_t max_command_bytes = 64;
  std::size_t max_header_line_bytes = std::size_t{10} << 10;
  std::size_t max_header_count = 1000;
  std::size_t max_frame_bytes = default_max_body_bytes + default_header_allowance;
};

using header = std::pair<std::string, std::string>;

// One frame, headers unescaped. A plain value: no invariants beyond what the parser produced
// (the command is a valid one, the body matches content-length when there was one).
struct frame {
  std::string command;
  std::vector<header> headers;  // in wire order, repeats kept
  std::string body;

  // The value of the FIRST header with this exact (case-sensitive) name. The view points into
  // this frame and is valid until the frame is modified or destroyed.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  // Appends a header (after any existing ones, so an existing header of that name still wins).
  void add(std::string name, std::string value);
  // Empties the frame; command, body and the header vector keep their capacity.
  void clear() noexcept;

  friend bool operator==(const frame&, const frame&) = default;
};

}  // namespace tandem::stomp
