// Asio's SSL code compiled once (see asio.cpp); linked by what includes broker/tls.h.
#include "broker/asio.h"

#include <boost/asio/ssl/impl/src.hpp>
