// Asio compiled once for the whole program (BOOST_ASIO_SEPARATE_COMPILATION, set for every
// user by the tandem_asio target): without it every translation unit that includes
// broker/asio.h compiles Asio's non-template code again (issue 19: build time). Beast's is
// in beast.cpp (a file of its own, so the two compile in parallel), Asio's SSL part in
// asio_ssl.cpp, so the tools that never speak TLS need not link OpenSSL.
#include "broker/asio.h"

#include <boost/asio/impl/src.hpp>
