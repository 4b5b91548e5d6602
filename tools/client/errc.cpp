#include "tools/client/errc.h"

#include <string>

namespace tandem::client {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tandem.client"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::bad_url: return "client: malformed broker URL";
      case errc::unknown_url_option: return "client: unknown option in broker URL";
      case errc::no_broker_reachable: return "client: no broker reachable";
      case errc::connect_refused: return "client: broker refused CONNECT";
      case errc::protocol_error: return "client: malformed frame from broker";
      case errc::broker_error: return "client: broker sent ERROR";
      case errc::receipt_lost: return "client: connection lost before RECEIPT";
      case errc::heartbeat_timeout: return "client: broker heart-beat timed out";
      case errc::not_connected: return "client: not connected";
      case errc::closed: return "client: connection closed";
      case errc::timed_out: return "client: broker did not answer in time";
      case errc::connection_dropped: return "client: connection dropped on purpose";
    }
    return "client: unknown error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace tandem::client
