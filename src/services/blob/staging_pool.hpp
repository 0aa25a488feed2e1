#pragma once
// StagingPool: the registered buffers through which a provider moves data between the network
// and targets that keep data outside memory (file). Each buffer is engine-owned exposed memory
// page-aligned (so fit for O_DIRECT) and exposed once for the pool's life: no registration per
// transfer.
//
// Why not Engine::allocate_exposed (which would give same-node peers a shared segment): over tcp
// its memory cannot be the local side of a pull or push (the transport refuses the wrapped
// registration: "local region is not registered with this tcp transport"), so the pool exposes
// its own memory until the engine allows it.

#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "dango/rpc/bulk.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/thread/sync.hpp"
#include "services/blob/aligned_buffer.hpp"

namespace dango::blob {

class StagingPool {
 public:
  // A buffer held by one chunk of a transfer; back in the pool when destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), index_(other.index_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_) pool_->release(index_);
    }
    std::span<std::byte> bytes() const { return pool_->buffers_[index_].memory.span(); }
    const rpc::Bulk& bulk() const { return pool_->buffers_[index_].bulk; }

   private:
    friend class StagingPool;
    Lease(StagingPool* pool, size_t index) : pool_(pool), index_(index) {}
    StagingPool* pool_;
    size_t index_;
  };

  // `buffers` buffers of `buffer_size` bytes. Throws std::bad_alloc, or NetworkError when the
  // memory cannot be exposed.
  StagingPool(rpc::Engine& engine, size_t buffer_size, size_t buffers);
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // A free buffer, waiting (yielding the ULT) until one is. A caller that already holds a lease
  // must use try_acquire instead: holders waiting for each other would never wake.
  Lease acquire();
  std::optional<Lease> try_acquire();
  size_t buffer_size() const { return buffer_size_; }

 private:
  void release(size_t index);

  struct Buffer {
    AlignedBuffer memory;
    rpc::Bulk bulk;
  };
  size_t buffer_size_;
  std::vector<Buffer> buffers_;
  thread::Mutex mutex_;
  thread::ConditionVariable available_;
  std::vector<size_t> free_;
};

}  // namespace dango::blob
