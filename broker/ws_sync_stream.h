// Beast's websocket::stream asks its next layer for the SyncStream forms of read_some and
// write_some, the throwing ones included. The layers under it (ws_read_buffer.h,
// ws_write_gather.h) define the error_code forms; this base adds the throwing ones once.
#pragma once

#include <cstddef>

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace tandem::broker {

template <typename Layer>
class ws_sync_stream {
 public:
  template <typename MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    boost::system::error_code ec;
    auto n = layer().read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <typename ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    boost::system::error_code ec;
    auto n = layer().write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  Layer& layer() { return static_cast<Layer&>(*this); }
};

}  // namespace tandem::broker
