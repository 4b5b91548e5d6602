// A connection's socket read buffer, sized by what the connection does (issue 17, "one global
// memory budget over all sessions' buffers"). Every connection used to hold a 64 KiB buffer
// from its first byte to its close, outside max_memory_bytes: 1,000 idle clients cost 74 MiB
// of RSS, 10,000 would cost 740 MiB that nothing counted or bounded.
//
// Now a connection starts with 4 KiB (a CONNECT, an ACK, a heart-beat, a small SEND fit). A
// read that fills the buffer means the client streams frames faster than we read them: the
// buffer grows to 64 KiB, because one read of 64 KiB is cheaper than sixteen of 4 KiB. After a
// run of reads that would have fit the small buffer it shrinks again. While the memory budget
// is full it shrinks at once and never grows: that is when its bytes matter. The connection
// counts capacity() in the budget as part of what it holds for reading.
//
// Resizes happen only in prepare(), which the reader calls once every byte of the previous
// read has been parsed: nothing points into the buffer then. Pure: no Asio, no threads.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace tandem::broker {

class read_buffer {
 public:
  static constexpr std::size_t small_bytes = 4 * 1024;
  static constexpr std::size_t large_bytes = 64 * 1024;
  // Small reads in a row before a large buffer is given back: enough that a producer pausing
  // between bursts keeps it, few enough that an idle consumer returns it within seconds of
  // heart-beats or ACKs.
  static constexpr unsigned shrink_after_small_reads = 16;

  read_buffer() : data_(std::make_unique_for_overwrite<char[]>(small_bytes)), size_(small_bytes) {}

  // The space for the next read, after any resize due. `budget_full`: the broker's memory
  // budget is reached, so give back a large buffer and do not grow.
  std::span<char> prepare(bool budget_full);
  // The bytes the last read put at the start of the space; records how full it was.
  std::span<const char> filled(std::size_t n);

  std::size_t capacity() const { return size_; }

 private:
  void resize(std::size_t bytes);

  std::unique_ptr<char[]> data_;  // not zeroed: pages are touched only by what is read
  std::size_t size_;
  bool grow_ = false;
  unsigned small_reads_ = 0;
};

inline std::span<char> read_buffer::prepare(bool budget_full) {
  if (size_ > small_bytes && (budget_full || small_reads_ >= shrink_after_small_reads)) resize(small_bytes);
  else if (grow_ && !budget_full && size_ < large_bytes) resize(large_bytes);
  grow_ = false;
  return {data_.get(), size_};
}

inline std::span<const char> read_buffer::filled(std::size_t n) {
  if (n >= size_) {
    grow_ = true;
    small_reads_ = 0;
  } else if (n <= small_bytes) {
    ++small_reads_;
  } else {
    small_reads_ = 0;
  }
  return {data_.get(), n};
}

inline void read_buffer::resize(std::size_t bytes) {
  data_ = std::make_unique_for_overwrite<char[]>(bytes);
  size_ = bytes;
  small_reads_ = 0;
}

}  // namespace tandem::broker
