// Beast compiled once for the whole program (BOOST_BEAST_SEPARATE_COMPILATION, set for every
// user by the tandem_asio target; asio.cpp says why).
#include "broker/asio.h"  // before Beast, which includes Asio

#include <boost/beast/src.hpp>
