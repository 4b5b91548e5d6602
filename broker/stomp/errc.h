// Errors of the STOMP codec, as std::error_code values (Beast http::error style).
//
// Every parser error is fatal for the connection: the broker answers with an ERROR frame that
// quotes parser::error().reason and .snippet, then closes. None of them is restartable; the
// only "wait for more bytes" outcome is parse_status::need_more, which is not an error.
#pragma once

#include <system_error>

namespace tandem::stomp {

enum class errc {
  // The frame, counted from the first command octet through the NUL, exceeds
  // limits::max_frame_bytes (or its content-length says it would).
  frame_too_large = 1,
  // A frame has more than limits::max_header_count header lines.
  too_many_headers,
  // One header line (as sent, escaped, without its EOL) exceeds limits::max_header_line_bytes.
  header_too_long,
  // The command line exceeds limits::max_command_bytes.
  command_too_long,
  // The command is not a STOMP command, or not one this side accepts (a client sending
  // MESSAGE, a server sending SEND).
  bad_command,
  // A header line with no ':' or with an empty name.
  bad_header_line,
  // In 1.1/1.2: '\' followed by anything but the escapes of that version, or at line end.
  bad_escape,
  // content-length is not a plain decimal number (digits only, at most 19 of them).
  bad_content_length,
  // The octet after a content-length body is not NUL.
  missing_nul,
  // A CR not followed by LF where an EOL is expected (between frames).
  bad_eol,
  // A heart-beat header that is not "<uint>,<uint>".
  bad_heart_beat,
  // accept-version names no version we speak (1.0, 1.1, 1.2).
  no_common_version,
  // encoder: a header cannot be written in this version without changing its meaning (an
  // empty name, LF in a frame without escaping, CR where the version has no \r escape).
  unencodable_header,
};

const std::error_category& stomp_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), stomp_category()};
}

// The enumerator's name ("bad_escape"), for tests, fixtures and logs; "unknown" otherwise.
const char* errc_name(errc e) noexcept;

}  // namespace tandem::stomp

template <>
struct std::is_error_code_enum<tandem::stomp::errc> : std::true_type {};
