#include "broker/stomp/errc.h"

#include <string>

namespace tandem::stomp {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "stomp"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::frame_too_large: return "frame too large";
      case errc::too_many_headers: return "too many headers";
      case errc::header_too_long: return "header line too long";
      case errc::command_too_long: return "command line too long";
      case errc::bad_command: return "bad command";
      case errc::bad_header_line: return "bad header line";
      case errc::bad_escape: return "undefined escape sequence in header";
      case errc::bad_content_length: return "bad content-length";
      case errc::missing_nul: return "missing NUL after content-length body";
      case errc::bad_eol: return "CR not followed by LF";
      case errc::bad_heart_beat: return "bad heart-beat header";
      case errc::no_common_version: return "no common protocol version";
      case errc::unencodable_header: return "header cannot be encoded in this version";
    }
    return "unknown stomp error";
  }
};

}  // namespace

const std::error_category& stomp_category() noexcept {
  static const category instance;
  return instance;
}

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::frame_too_large: return "frame_too_large";
    case errc::too_many_headers: return "too_many_headers";
    case errc::header_too_long: return "header_too_long";
    case errc::command_too_long: return "command_too_long";
    case errc::bad_command: return "bad_command";
    case errc::bad_header_line: return "bad_header_line";
    case errc::bad_escape: return "bad_escape";
    case errc::bad_content_length: return "bad_content_length";
    case errc::missing_nul: return "missing_nul";
    case errc::bad_eol: return "bad_eol";
    case errc::bad_heart_beat: return "bad_heart_beat";
    case errc::no_common_version: return "no_common_version";
    case errc::unencodable_header: return "unencodable_header";
  }
  return "unknown";
}

}  // namespace tandem::stomp
