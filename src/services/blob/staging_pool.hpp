#pragma once
// StagingPool: the registered buffers through which a provider moves data between the network
// and targets that keep data outside memory (file). Each buffer is engine-owned exposed memory
// (Engine::allocate_exposed: whole pages, so fit for O_DIRECT), registered once for the pool's
// life with every transport of the engine: no registration per transfer.

#include <cstddef>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "dango/rpc/bulk.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/thread/sync.hpp"

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
    std::span<std::byte> bytes() const { return pool_->buffers_[index_].data(); }
    const rpc::Bulk& bulk() const { return pool_->buffers_[index_].bulk(); }

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

  size_t buffer_size_;
  std::vector<rpc::ExposedMemory> buffers_;
  thread::Mutex mutex_;
  thread::ConditionVariable available_;
  std::vector<size_t> free_;
};

}  // namespace dango::blob
