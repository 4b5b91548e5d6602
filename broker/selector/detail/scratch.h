// Per-evaluation storage for strings the evaluator makes (concatenation, JMSDestination in
// ActiveMQ form). Lives on the caller's stack; spills to the heap only past its inline area.
#pragma once

#include <cstddef>
#include <cstring>
#include <forward_list>
#include <string>
#include <string_view>

namespace tandem::selector::detail {

class scratch {
 public:
  scratch() = default;
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;

  // Room for n octets that stay valid until the scratch is destroyed.
  char* allocate(std::size_t n) {
    if (n <= sizeof(inline_) - used_) {
      char* p = inline_ + used_;
      used_ += n;
      return p;
    }
    spill_.emplace_front(n, '\0');
    return spill_.front().data();
  }

  std::string_view concat(std::string_view a, std::string_view b) {
    char* p = allocate(a.size() + b.size());
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    if (!b.empty()) std::memcpy(p + a.size(), b.data(), b.size());
    return {p, a.size() + b.size()};
  }

 private:
  char inline_[512];
  std::size_t used_ = 0;
  std::forward_list<std::string> spill_;
};

}  // namespace tandem::selector::detail
