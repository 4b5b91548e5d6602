// Values of the headers the codec and the session negotiate with: content-length,
// accept-version / version, heart-beat. Pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/outcome/std_result.hpp>

#include "broker/stomp/frame.h"

namespace tandem::stomp {

template <class T>
using result = boost::outcome_v2::std_result<T>;

// The versions we speak, as a `version` header of an ERROR frame lists them.
inline constexpr std::string_view supported_versions = "1.0,1.1,1.2";

// content-length: decimal digits only (no sign, no spaces), fitting in size_t; anything else,
// including an empty value, is errc::bad_content_length.
result<std::size_t> parse_content_length(std::string_view value) noexcept;

// The highest version both sides speak. `accept_version` is the CONNECT header (absent: the
// client speaks only 1.0, per spec); a comma-separated list, spaces around entries ignored,
// unknown entries ("2.0") ignored. errc::no_common_version when nothing is left.
result<version> choose_version(std::optional<std::string_view> accept_version);

// heart-beat "cx,cy" (spec): cx = the smallest period at which the sender can send beats,
// cy = the period at which it wants to receive them; 0 = cannot / does not want.
struct heart_beat {
  std::chrono::milliseconds send_every{0};     // cx
  std::chrono::milliseconds receive_every{0};  // cy
  friend bool operator==(const heart_beat&, const heart_beat&) = default;
};

// Two unsigned 32-bit decimal numbers separated by one ','; spaces around each ignored.
// Anything else is errc::bad_heart_beat. An absent header means {0, 0}: the caller decides.
result<heart_beat> parse_heart_beat(std::string_view value) noexcept;
std::string format_heart_beat(heart_beat hb);

// What one side does after the exchange, 0 = nothing.
struct heart_beat_periods {
  std::chrono::milliseconds send_every{0};    // send an EOL at least this often
  std::chrono::milliseconds expect_every{0};  // the peer sends at least this often
  friend bool operator==(const heart_beat_periods&, const heart_beat_periods&) = default;
};

// `ours` is the header we send (or would), `theirs` the peer's. Per spec: we send every
// max(our cx, their cy) unless either is 0; we expect every max(their cx, our cy) unless
// either is 0. Symmetric: negotiate(a, b).send_every == negotiate(b, a).expect_every.
heart_beat_periods negotiate_heart_beat(heart_beat ours, heart_beat theirs) noexcept;

}  // namespace tandem::stomp
