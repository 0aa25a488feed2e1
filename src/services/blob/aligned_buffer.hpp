#pragma once
// AlignedBuffer: heap memory aligned for O_DIRECT I/O (address, and so the caller's offsets and
// lengths, in multiples of the device block).

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>

namespace dango::blob {

class AlignedBuffer {
 public:
  // `size` bytes (rounded up to `alignment`) at an address that is a multiple of `alignment`
  // (a power of two). Throws std::bad_alloc.
  AlignedBuffer(size_t size, size_t alignment) : size_(size) {
    const size_t rounded = (size + alignment - 1) / alignment * alignment;
    bytes_.reset(
        static_cast<std::byte*>(std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded)));
    if (!bytes_) throw std::bad_alloc();
  }
  std::span<std::byte> span() const { return {bytes_.get(), size_}; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte[], Free> bytes_;
  size_t size_;
};

}  // namespace dango::blob
