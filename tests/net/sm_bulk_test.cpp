// One-sided get/put over the sm transport on its three paths — process_vm_readv/writev, copies
// through the ring (DANGO_SM_NO_CMA=1, as where the kernel forbids cross-memory attach), and
// memcpy from a peer's arena — and the checks the owner or the mapped arena make whatever a
// descriptor claims. What every transport does is in transport_bulk_test.cpp.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#include "bulk_test_util.hpp"
#include "sm_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

// Rewrites a descriptor's size and rights (layout of src/net/sm/descriptor.hpp, written out so
// the test checks the format rather than reusing it): as a forger would.
std::vector<std::byte> forge(std::vector<std::byte> d, uint64_t size, Access access) {
  d[4] = static_cast<std::byte>(access);
  uint64_t old_size;
  std::memcpy(&old_size, d.data() + 32, 8);
  std::memcpy(d.data() + 32, &size, 8);
  uint64_t last_length;
  std::memcpy(&last_length, d.data() + d.size() - 8, 8);
  last_length = last_length + size - old_size;
  std::memcpy(d.data() + d.size() - 8, &last_length, 8);
  return d;
}

enum class Path { kCrossMemoryAttach, kThroughTheRing, kArena };

class SmBulk : public BulkPair, public ::testing::Test {
 protected:
  void start(Path path) {
    client_.reset();
    server_.reset();
    path_ = path;
    no_cma_.reset();
    if (path == Path::kThroughTheRing) {
      no_cma_ = std::make_unique<ScopedEnv>("DANGO_SM_NO_CMA", "1");
    }
    BulkPair::start("sm");
  }
  void SetUp() override { start(Path::kCrossMemoryAttach); }

  Path path_ = Path::kCrossMemoryAttach;
  std::unique_ptr<ScopedEnv> no_cma_;
};

std::string path_and_size_name(const ::testing::TestParamInfo<std::tuple<Path, size_t>>& info) {
  static const char* const kNames[] = {"CrossMemoryAttach", "ThroughTheRing", "Arena"};
  return std::string(kNames[static_cast<int>(std::get<0>(info.param))]) + "_" +
         std::to_string(std::get<1>(info.param));
}

class SmBulkPaths : public SmBulk, public ::testing::WithParamInterface<std::tuple<Path, size_t>> {
 protected:
  void SetUp() override { start(std::get<0>(GetParam())); }
};

TEST_P(SmBulkPaths, GetAndPutMoveEveryByteAcrossSegmentsAndOffsets) {
  const size_t size = std::get<1>(GetParam());
  const size_t remote_size = size + 100;
  Buffer remote_buffer(remote_size, {0.1, 0.5, 0.52});
  std::unique_ptr<MemoryRegion> remote_region;
  if (path_ == Path::kArena) {
    remote_region = server_->allocate_memory(remote_size, Access::kReadWrite);
    ASSERT_EQ(remote_region->size(), remote_size);
  } else {
    remote_region = server_->register_memory(remote_buffer.segments, Access::kReadWrite);
  }
  auto remote_bytes = [&] {
    std::vector<std::byte> all;
    for (auto seg : remote_region->segments()) all.insert(all.end(), seg.begin(), seg.end());
    return all;
  };
  for (auto seg : remote_region->segments()) fill(seg, 7);
  Buffer local(size + 50, {0.3, 0.31, 0.9});
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  // Twice: the first transfer of an arena maps it, the second is a plain memcpy.
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(run(true, remote_region->descriptor(), 100, *local_region, 50, size).ok());
    auto expected = remote_bytes();
    ASSERT_TRUE(std::equal(local.bytes.begin() + 50, local.bytes.end(), expected.begin() + 100))
        << "get of " << size << " bytes, round " << round;
    fill(local.bytes, 11 + static_cast<uint32_t>(round));
    ASSERT_TRUE(run(false, remote_region->descriptor(), 100, *local_region, 50, size).ok());
    auto after = remote_bytes();
    ASSERT_TRUE(std::equal(local.bytes.begin() + 50, local.bytes.end(), after.begin() + 100))
        << "put of " << size << " bytes, round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(PathsAndSizes, SmBulkPaths,
                         ::testing::Combine(::testing::Values(Path::kCrossMemoryAttach,
                                                              Path::kThroughTheRing, Path::kArena),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{4095},
                                                              (size_t{1} << 20) + 3,
                                                              size_t{5} << 20)),
                         path_and_size_name);

// A transfer into thousands of small segments goes in several system calls of at most IOV_MAX
// pieces; segment boundaries of the two sides do not line up.
TEST_F(SmBulk, GetAndPutIntoThousandsOfSegmentsMoveEveryByte) {
  constexpr size_t kSegments = 3000, kSegmentSize = 100, kSize = kSegments * kSegmentSize;
  Buffer remote(kSize + 10, {0.37});
  remote.fill(5);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  std::vector<std::byte> local(kSize);
  std::vector<std::span<std::byte>> pieces;
  for (size_t i = 0; i < kSegments; ++i)
    pieces.emplace_back(local.data() + i * kSegmentSize, kSegmentSize);
  auto local_region = client_->register_memory(pieces, Access::kReadWrite);
  ASSERT_TRUE(run(true, remote_region->descriptor(), 10, *local_region, 0, kSize).ok());
  ASSERT_TRUE(std::equal(local.begin(), local.end(), remote.bytes.begin() + 10));
  fill(local, 9);
  ASSERT_TRUE(run(false, remote_region->descriptor(), 10, *local_region, 0, kSize).ok());
  ASSERT_TRUE(std::equal(local.begin(), local.end(), remote.bytes.begin() + 10));
}

TEST_F(SmBulk, DescriptorOfAnotherProcessIsRefused) {
  auto third = make_transport("sm://");
  Buffer remote(4096, {}), local(4096, {});
  auto third_region = third->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  // The descriptor names `third`, but the transfer goes to the server: never applied there.
  auto s = run(true, third_region->descriptor(), 0, *local_region, 0, 16);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("does not belong"), std::string::npos) << s.message;
}

TEST_F(SmBulk, SingleCopyNeedsNoHelpFromTheOwner) {
  Buffer remote(3 << 20, {0.5}), local(3 << 20, {0.25});
  fill(remote.bytes, 3);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  expect_peer_usable();  // handshake done; from now on the server never runs
  ASSERT_TRUE(run(true, remote_region->descriptor(), 0, *local_region, 0, 3 << 20, false).ok());
  EXPECT_EQ(local.bytes, remote.bytes);
  fill(local.bytes, 4);
  ASSERT_TRUE(run(false, remote_region->descriptor(), 0, *local_region, 0, 3 << 20, false).ok());
  EXPECT_EQ(local.bytes, remote.bytes);
}

// Without cross-memory attach, a transfer that completes while the owner does not run can only
// be a memcpy from the mapped arena. Returns once that is the case.
bool wait_until_arena_mapped(Transport& client, Transport& server, const PeerRef& peer,
                             std::span<const std::byte> arena, MemoryRegion& local) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    Done probe;
    client.get(peer, arena, 0, local, 0, 1, &probe);
    for (int i = 0; i < 200 && !probe.fired(); ++i) client.progress(0us);
    if (probe.fired()) return probe.status().ok();
    if (!drive({&client, &server}, [&] { return probe.fired(); })) return false;
  }
  return false;
}

TEST_F(SmBulk, ArenaTransfersNeedNeitherTheOwnerNorCrossMemoryAttach) {
  start(Path::kThroughTheRing);
  auto arena = server_->allocate_memory(1 << 20, Access::kReadWrite);
  fill(arena->segments()[0], 5);
  Buffer local(1 << 20, {0.7});
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  ASSERT_TRUE(
      wait_until_arena_mapped(*client_, *server_, peer_, arena->descriptor(), *local_region));
  ASSERT_TRUE(run(true, arena->descriptor(), 0, *local_region, 0, 1 << 20, false).ok());
  EXPECT_TRUE(std::equal(local.bytes.begin(), local.bytes.end(), arena->segments()[0].begin()));
  fill(local.bytes, 6);
  ASSERT_TRUE(run(false, arena->descriptor(), 0, *local_region, 0, 1 << 20, false).ok());
  EXPECT_TRUE(std::equal(local.bytes.begin(), local.bytes.end(), arena->segments()[0].begin()));
}

TEST_F(SmBulk, AMappedArenaKeepsItsOwnersRightsWhateverTheDescriptorSays) {
  start(Path::kThroughTheRing);
  auto arena = server_->allocate_memory(4096, Access::kReadOnly);
  Buffer local(4096, {});
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  ASSERT_TRUE(
      wait_until_arena_mapped(*client_, *server_, peer_, arena->descriptor(), *local_region));
  fill(local.bytes, 8);
  auto s = run(false, forge(arena->descriptor(), 4096, Access::kReadWrite), 0, *local_region, 0,
               4096, false);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("writes"), std::string::npos) << s.message;
  EXPECT_EQ(arena->segments()[0][0], std::byte{0});
}

TEST_F(SmBulk, ThroughTheRingTheOwnerRefusesForgedRangesRightsAndKeys) {
  start(Path::kThroughTheRing);
  Buffer remote(4096, {}), local(8192, {});
  auto ro_region = server_->register_memory(remote.segments, Access::kReadOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto bigger = forge(ro_region->descriptor(), 8192, Access::kReadOnly);
  auto s = run(true, bigger, 4000, *local_region, 0, 200);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("outside"), std::string::npos) << s.message;
  auto writable = forge(ro_region->descriptor(), 4096, Access::kReadWrite);
  s = run(false, writable, 0, *local_region, 0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("writes"), std::string::npos) << s.message;
  auto stale = ro_region->descriptor();
  ro_region.reset();
  s = run(true, stale, 0, *local_region, 0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("unknown memory key"), std::string::npos) << s.message;
  expect_peer_usable();
  EXPECT_EQ(client_inbox_.lost_count(), 0u);
}

}  // namespace
}  // namespace dango::net
