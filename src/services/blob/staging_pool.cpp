// The provider's staging buffers (see staging_pool.hpp).

#include "services/blob/staging_pool.hpp"

#include <mutex>

namespace dango::blob {

StagingPool::StagingPool(rpc::Engine& engine, size_t buffer_size, size_t buffers)
    : buffer_size_(buffer_size) {
  buffers_.reserve(buffers);
  for (size_t i = 0; i < buffers; ++i) {
    buffers_.push_back(engine.allocate_exposed(buffer_size, rpc::Access::kReadWrite));
    free_.push_back(i);
  }
}

StagingPool::Lease StagingPool::acquire() {
  std::unique_lock lock(mutex_);
  available_.wait(mutex_, [&] { return !free_.empty(); });
  const size_t index = free_.back();
  free_.pop_back();
  return Lease(this, index);
}

std::optional<StagingPool::Lease> StagingPool::try_acquire() {
  std::unique_lock lock(mutex_);
  if (free_.empty()) return std::nullopt;
  const size_t index = free_.back();
  free_.pop_back();
  return Lease(this, index);
}

void StagingPool::release(size_t index) {
  {
    std::unique_lock lock(mutex_);
    free_.push_back(index);
  }
  available_.notify_one();
}

}  // namespace dango::blob
