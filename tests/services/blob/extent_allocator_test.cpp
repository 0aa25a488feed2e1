// Unit tests of the file target's space allocator: no leak, no double allocation, reuse,
// coalescing, and rebuilding the layout on restart.

#include <gtest/gtest.h>

#include <map>
#include <random>

// A private header of the component (src/services/blob/), tested on its own.
#include "../../../src/services/blob/extent_allocator.hpp"

namespace dango::blob {
namespace {

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kBase = 4096;

TEST(ExtentAllocator, AllocationsRoundUpToBlocksAndNeverOverlap) {
  ExtentAllocator allocator(kBase, 100 * kBlock, kBlock);
  auto a = allocator.allocate(1);
  auto b = allocator.allocate(kBlock + 1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a % kBlock, 0u);
  EXPECT_TRUE(*b >= *a + kBlock || *a >= *b + 2 * kBlock);
  EXPECT_EQ(allocator.used_bytes(), 3 * kBlock);
  EXPECT_EQ(allocator.check(), "");
}

TEST(ExtentAllocator, AFullAreaRefusesAndFreedSpaceIsReused) {
  ExtentAllocator allocator(kBase, 4 * kBlock, kBlock);
  auto a = allocator.allocate(2 * kBlock);
  auto b = allocator.allocate(2 * kBlock);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(allocator.allocate(1).has_value());
  EXPECT_TRUE(allocator.release(*a, 2 * kBlock));
  EXPECT_EQ(allocator.allocate(2 * kBlock), a);
}

TEST(ExtentAllocator, NeighboursMergeSoALargeExtentFitsAgain) {
  ExtentAllocator allocator(kBase, 3 * kBlock, kBlock);
  auto a = allocator.allocate(kBlock), b = allocator.allocate(kBlock),
       c = allocator.allocate(kBlock);
  ASSERT_TRUE(a && b && c);
  EXPECT_TRUE(allocator.release(*a, kBlock));
  EXPECT_TRUE(allocator.release(*c, kBlock));
  EXPECT_EQ(allocator.free_extents(), 2u);
  EXPECT_FALSE(allocator.allocate(2 * kBlock).has_value());
  EXPECT_TRUE(allocator.release(*b, kBlock));
  EXPECT_EQ(allocator.free_extents(), 1u);
  EXPECT_EQ(allocator.allocate(3 * kBlock), kBase);
  EXPECT_EQ(allocator.check(), "");
}

TEST(ExtentAllocator, DoubleFreesAndForeignExtentsAreRefused) {
  ExtentAllocator allocator(kBase, 10 * kBlock, kBlock);
  auto a = allocator.allocate(kBlock);
  ASSERT_TRUE(a);
  EXPECT_TRUE(allocator.release(*a, kBlock));
  EXPECT_FALSE(allocator.release(*a, kBlock));
  EXPECT_FALSE(allocator.release(kBase + 100 * kBlock, kBlock));
  EXPECT_FALSE(allocator.release(0, kBlock));
  EXPECT_EQ(allocator.free_bytes(), 10 * kBlock);
  EXPECT_EQ(allocator.check(), "");
}

TEST(ExtentAllocator, BestFitKeepsLargeRunsWhole) {
  ExtentAllocator allocator(kBase, 20 * kBlock, kBlock);
  auto small = allocator.allocate(kBlock);
  auto fence = allocator.allocate(kBlock);
  ASSERT_TRUE(small && fence);
  EXPECT_TRUE(allocator.release(*small, kBlock));  // a 1-block hole, and 18 blocks at the end
  EXPECT_EQ(allocator.allocate(kBlock), small);    // the hole, not the big run
  EXPECT_EQ(allocator.largest_free(), 18 * kBlock);
}

TEST(ExtentAllocator, ReserveRebuildsALayoutAndRejectsOverlaps) {
  ExtentAllocator allocator(kBase, 10 * kBlock, kBlock);
  EXPECT_TRUE(allocator.reserve(kBase + 2 * kBlock, 2 * kBlock));
  EXPECT_TRUE(allocator.reserve(kBase + 6 * kBlock, 1));
  EXPECT_FALSE(allocator.reserve(kBase + 3 * kBlock, kBlock));      // inside the first
  EXPECT_FALSE(allocator.reserve(kBase + 9 * kBlock, 2 * kBlock));  // past the end
  EXPECT_EQ(allocator.used_bytes(), 3 * kBlock);
  EXPECT_EQ(allocator.free_extents(), 3u);
  EXPECT_EQ(allocator.check(), "");
}

TEST(ExtentAllocator, RandomWorkloadNeitherLeaksNorDoublesAnExtent) {
  ExtentAllocator allocator(kBase, 1000 * kBlock, kBlock);
  std::map<uint64_t, uint64_t> live;  // offset -> rounded size
  std::mt19937_64 random(42);
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || random() % 3 != 0) {
      const uint64_t size = 1 + random() % (8 * kBlock);
      auto offset = allocator.allocate(size);
      if (!offset) continue;
      auto next = live.lower_bound(*offset);
      ASSERT_TRUE(next == live.end() || next->first >= *offset + allocator.round_up(size));
      if (next != live.begin()) {
        auto previous = std::prev(next);
        ASSERT_LE(previous->first + previous->second, *offset);
      }
      live.emplace(*offset, allocator.round_up(size));
    } else {
      auto it = std::next(live.begin(), static_cast<long>(random() % live.size()));
      ASSERT_TRUE(allocator.release(it->first, it->second));
      live.erase(it);
    }
  }
  uint64_t used = 0;
  for (const auto& [offset, size] : live) used += size;
  EXPECT_EQ(allocator.used_bytes(), used);
  EXPECT_EQ(allocator.check(), "");
  // Rebuilt from the live extents, as on restart: the same free space.
  ExtentAllocator rebuilt(kBase, 1000 * kBlock, kBlock);
  for (const auto& [offset, size] : live) ASSERT_TRUE(rebuilt.reserve(offset, size));
  EXPECT_EQ(rebuilt.free_bytes(), allocator.free_bytes());
  for (const auto& [offset, size] : live) ASSERT_TRUE(allocator.release(offset, size));
  EXPECT_EQ(allocator.free_extents(), 1u);
  EXPECT_EQ(allocator.free_bytes(), 1000 * kBlock);
}

}  // namespace
}  // namespace dango::blob
