#pragma once
// Reusable buffers for the bytes a provider pulls from its clients (large batches and values):
// a fresh vector per request would zero and page-fault its memory every time (a 64 MiB batch
// costs ~16k page faults). Buffers up to kMaxKeptBytes are kept for the next request; several
// requests in flight each get their own.

#include <cstddef>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

namespace dango::kv {

class BufferPool {
 public:
  static constexpr size_t kMaxKept = 4;
  static constexpr size_t kMaxKeptBytes = size_t{64} << 20;

  // A buffer of at least `size` bytes, returned to the pool when destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(BufferPool* pool, std::vector<std::byte> buffer, size_t size)
        : pool_(pool), buffer_(std::move(buffer)), size_(size) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          buffer_(std::move(other.buffer_)),
          size_(other.size_) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        buffer_ = std::move(other.buffer_);
        size_ = other.size_;
      }
      return *this;
    }
    ~Lease() { release(); }
    std::span<std::byte> bytes() { return {buffer_.data(), size_}; }

   private:
    void release() {
      if (pool_) pool_->give_back(std::move(buffer_));
      pool_ = nullptr;
    }
    BufferPool* pool_ = nullptr;
    std::vector<std::byte> buffer_;
    size_t size_ = 0;
  };

  Lease take(size_t size) {
    std::vector<std::byte> buffer;
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        buffer = std::move(free_.back());
        free_.pop_back();
      }
    }
    // Only growth is zero-filled; a kept buffer keeps its size, so reuse costs nothing.
    if (buffer.size() < size) buffer.resize(size);
    return Lease(this, std::move(buffer), size);
  }

 private:
  void give_back(std::vector<std::byte> buffer) {
    if (buffer.size() > kMaxKeptBytes) return;
    std::lock_guard lock(mutex_);
    if (free_.size() < kMaxKept) free_.push_back(std::move(buffer));
  }

  std::mutex mutex_;
  std::vector<std::vector<std::byte>> free_;
};

}  // namespace dango::kv
