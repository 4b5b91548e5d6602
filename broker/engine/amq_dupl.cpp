#include "broker/engine/amq_dupl.h"

namespace tandem::broker::detail {

std::string amq_dupl_producer(std::string_view destination) {
  return std::string(amq_dupl_header) + ":" + std::string(destination);
}

std::uint64_t amq_dupl_seq(std::string_view id) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64: offset basis
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ull;  // FNV-1a 64: prime
  }
  return h;
}

}  // namespace tandem::broker::detail
