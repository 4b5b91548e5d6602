// Header escaping per version (frame.h section 2), shared by the parser and the encoder.
// Pure functions, no allocation beyond the output string.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "broker/stomp/frame.h"

namespace tandem::stomp {

enum class escaping {
  none,  // 1.0, and CONNECT / STOMP / CONNECTED in every version
  v1_1,  // \\ \n \c
  v1_2,  // \\ \n \c \r
};

// The escaping used by headers of frame `c` in protocol version `v`.
escaping escaping_for(version v, command c) noexcept;

// Replaces `out` with `in` unescaped. Returns false, leaving `out` unspecified, on an
// undefined escape or a trailing backslash (never with escaping::none); then `*bad_at`, when
// given, is the offset of that backslash in `in`.
bool unescape(std::string_view in, escaping e, std::string& out, std::size_t* bad_at = nullptr);

// Which side of the ':' a string goes to; a raw ':' is harmless only in a value.
enum class header_part { name, value };

// Appends `in` escaped for `e`. Returns errc::unencodable_header, having appended nothing,
// when `in` cannot be written so that it reads back identically: with escaping::none, any LF,
// a ':' in a name, or a value ending in CR (taken as part of CR LF); with v1_1, a value ending
// in CR. An empty name is the caller's to refuse.
std::error_code escape_append(std::string_view in, escaping e, header_part part, std::string& out);

}  // namespace tandem::stomp
