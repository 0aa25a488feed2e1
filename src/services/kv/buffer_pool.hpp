#pragma once
// Reusable exposed buffers for the bytes a provider pulls from its clients (large batches and
// values). Each buffer is engine-allocated memory exposed once for its whole life
// (Engine::allocate_exposed), so a request neither allocates, zero-fills and page-faults a fresh
// buffer (a 64 MiB batch costs ~16k page faults) nor registers memory: it takes a kept buffer
// and pulls into it. Several requests in flight each get their own buffer. The pool keeps up to
// kMaxKept buffers of at most kMaxKeptBytes each, kMaxKeptTotal bytes in all; larger or surplus
// buffers are freed when their request ends.

#include <algorithm>
#include <cstddef>
#include <limits>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "dango/rpc/engine.hpp"

namespace dango::kv {

class BufferPool {
 public:
  static constexpr size_t kMaxKept = 12;
  // Room for a batch of 1,024 values of 64 KiB with their keys and sizes.
  static constexpr size_t kMaxKeptBytes = size_t{80} << 20;
  static constexpr size_t kMaxKeptTotal = size_t{256} << 20;
  // New buffers are rounded up to this, so that batches of slightly different sizes share them.
  static constexpr size_t kGranule = size_t{1} << 20;

  // A buffer of at least `size` bytes, returned to the pool when destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(BufferPool* pool, rpc::ExposedMemory memory, size_t size)
        : pool_(pool), memory_(std::move(memory)), size_(size) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          memory_(std::move(other.memory_)),
          size_(std::exchange(other.size_, 0)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        memory_ = std::move(other.memory_);
        size_ = std::exchange(other.size_, 0);
      }
      return *this;
    }
    ~Lease() { release(); }
    // The `size` bytes asked for (the buffer may be larger).
    std::span<std::byte> bytes() const { return memory_.data().first(size_); }
    // The whole buffer's handle, for the local side of a pull.
    const rpc::Bulk& bulk() const { return memory_.bulk(); }

   private:
    void release() {
      if (pool_) pool_->give_back(std::move(memory_));
      pool_ = nullptr;
    }
    BufferPool* pool_ = nullptr;
    rpc::ExposedMemory memory_;
    size_t size_ = 0;
  };

  explicit BufferPool(rpc::Engine& engine) : engine_(engine) {}

  // A buffer of at least `size` bytes: the smallest kept one that is large enough, else a new
  // one (then the largest kept one that was too small is freed, so that the pool follows the
  // sizes in use). Throws NetworkError when memory cannot be had.
  Lease take(size_t size) {
    rpc::ExposedMemory memory;
    {
      std::lock_guard lock(mutex_);
      auto fits = free_.end(), too_small = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->size() >= size) {
          if (fits == free_.end() || it->size() < fits->size()) fits = it;
        } else if (too_small == free_.end() || it->size() > too_small->size()) {
          too_small = it;
        }
      }
      auto chosen = fits != free_.end() ? fits : too_small;
      if (chosen != free_.end()) {
        memory = std::move(*chosen);
        free_.erase(chosen);
        kept_bytes_ -= memory.size();
      }
    }
    if (memory.size() < size) {
      memory = {};  // a too-small buffer is freed before the new one is mapped
      memory = engine_.allocate_exposed(round_up(size), rpc::Access::kReadWrite);
    }
    return Lease(this, std::move(memory), size);
  }

 private:
  static size_t round_up(size_t size) {
    if (size == 0) return kGranule;
    return size > std::numeric_limits<size_t>::max() - kGranule
               ? size
               : (size + kGranule - 1) / kGranule * kGranule;
  }

  void give_back(rpc::ExposedMemory memory) {
    if (memory.size() == 0 || memory.size() > kMaxKeptBytes) return;
    std::lock_guard lock(mutex_);
    if (free_.size() >= kMaxKept || kept_bytes_ + memory.size() > kMaxKeptTotal) return;
    kept_bytes_ += memory.size();
    free_.push_back(std::move(memory));
  }

  rpc::Engine& engine_;
  std::mutex mutex_;
  std::vector<rpc::ExposedMemory> free_;
  size_t kept_bytes_ = 0;
};

}  // namespace dango::kv
