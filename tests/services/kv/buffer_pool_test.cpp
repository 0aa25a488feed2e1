// The provider's pool of exposed buffers for pulled batches: kept buffers are reused, requests in
// flight each hold their own, a buffer too small for the sizes in use is replaced.

#include <gtest/gtest.h>

#include <cstring>

#include "../../../src/services/kv/buffer_pool.hpp"
#include "dango/rpc/engine.hpp"

namespace dango::kv {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

class KvBufferPool : public ::testing::Test {
 protected:
  rpc::Engine engine_{"tcp"};
  BufferPool pool_{engine_};
};

TEST_F(KvBufferPool, ALeaseHasTheSizeAskedForAndAnExposedHandle) {
  BufferPool::Lease lease = pool_.take(1000);
  EXPECT_EQ(lease.bytes().size(), 1000u);
  EXPECT_TRUE(lease.bulk().is_local());
  EXPECT_GE(lease.bulk().size(), 1000u);
  std::memset(lease.bytes().data(), 0x5a, lease.bytes().size());  // writable
}

TEST_F(KvBufferPool, AReturnedBufferServesTheNextRequest) {
  std::byte* first = nullptr;
  {
    BufferPool::Lease lease = pool_.take(3 * kMiB);
    first = lease.bytes().data();
  }
  BufferPool::Lease again = pool_.take(2 * kMiB);
  EXPECT_EQ(again.bytes().data(), first);
  EXPECT_EQ(again.bytes().size(), 2 * kMiB);
}

TEST_F(KvBufferPool, RequestsInFlightHoldDistinctBuffers) {
  BufferPool::Lease a = pool_.take(kMiB);
  BufferPool::Lease b = pool_.take(kMiB);
  EXPECT_NE(a.bytes().data(), b.bytes().data());
  BufferPool::Lease moved = std::move(a);
  EXPECT_EQ(moved.bytes().size(), kMiB);
}

TEST_F(KvBufferPool, TheSmallestKeptBufferThatFitsIsChosen) {
  std::byte* small = nullptr;
  std::byte* large = nullptr;
  {
    BufferPool::Lease s = pool_.take(kMiB);
    BufferPool::Lease l = pool_.take(8 * kMiB);
    small = s.bytes().data();
    large = l.bytes().data();
  }
  BufferPool::Lease fits_small = pool_.take(kMiB / 2);
  EXPECT_EQ(fits_small.bytes().data(), small);
  BufferPool::Lease needs_large = pool_.take(4 * kMiB);
  EXPECT_EQ(needs_large.bytes().data(), large);
}

TEST_F(KvBufferPool, AKeptBufferTooSmallIsReplacedByOneLargeEnough) {
  { BufferPool::Lease small = pool_.take(kMiB); }
  BufferPool::Lease big = pool_.take(5 * kMiB);
  ASSERT_EQ(big.bytes().size(), 5 * kMiB);
  std::memset(big.bytes().data(), 1, big.bytes().size());  // every byte is there
  std::byte* kept = big.bytes().data();
  big = BufferPool::Lease();
  EXPECT_EQ(pool_.take(5 * kMiB).bytes().data(), kept);
}

TEST_F(KvBufferPool, AnEmptyRequestNeedsNoBuffer) {
  BufferPool::Lease lease = pool_.take(0);
  EXPECT_TRUE(lease.bytes().empty());
}

}  // namespace
}  // namespace dango::kv
