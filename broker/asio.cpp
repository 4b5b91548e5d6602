// Asio and Beast compiled once for the whole program (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION, set for every user by the tandem_asio target): without
// them every translation unit that includes broker/asio.h compiles Asio's and Beast's
// non-template code again (issue 19: build time). Asio's SSL part is in asio_ssl.cpp, so
// the tools that never speak TLS need not link OpenSSL.
#include "broker/asio.h"

#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
