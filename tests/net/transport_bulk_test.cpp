// One-sided get/put over every transport (transport_suite.hpp): sizes, segments, offsets,
// chunking, many operations at once, allocated memory, the checks every transport makes before
// it starts, and operations cut short by a close or a lost peer. Forged descriptors (whose
// format is each transport's own) are in the transports' files.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#include "bulk_test_util.hpp"
#include "sm_test_util.hpp"
#include "transport_suite.hpp"

namespace dango::net {
namespace {

using namespace testing;

class TransportBulk : public BulkPair, public OverNetTransports {
 protected:
  void SetUp() override { start(scheme()); }
};

class TransportBulkSizes : public BulkPair,
                           public ::testing::TestWithParam<std::tuple<std::string, size_t>> {
 protected:
  void SetUp() override { start(std::get<0>(GetParam())); }
};

TEST_P(TransportBulkSizes, GetAndPutMoveEveryByteAcrossSegmentsAndOffsets) {
  const size_t size = std::get<1>(GetParam());
  Buffer remote(size, {0.3, 0.31, 0.8});
  Buffer local(size + 64, {0.5});
  remote.fill(1);
  local.fill(2);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto desc = remote_region->descriptor();

  // Whole region, then an unaligned window.
  ASSERT_TRUE(run(true, desc, 0, *local_region, 64, size).ok());
  ASSERT_EQ(std::memcmp(local.bytes.data() + 64, remote.bytes.data(), size), 0);
  const size_t window = size - 13;
  local.fill(3);
  ASSERT_TRUE(run(true, desc, 5, *local_region, 7, window).ok());
  ASSERT_EQ(std::memcmp(local.bytes.data() + 7, remote.bytes.data() + 5, window), 0);

  local.fill(4);
  ASSERT_TRUE(run(false, desc, 0, *local_region, 64, size).ok());
  ASSERT_EQ(std::memcmp(remote.bytes.data(), local.bytes.data() + 64, size), 0);
  local.fill(5);
  ASSERT_TRUE(run(false, desc, 11, *local_region, 3, window).ok());
  ASSERT_EQ(std::memcmp(remote.bytes.data() + 11, local.bytes.data() + 3, window), 0);
  expect_peer_usable();
}

INSTANTIATE_TEST_SUITE_P(Transports, TransportBulkSizes,
                         ::testing::Combine(::testing::ValuesIn(working_net_transports()),
                                            ::testing::Values(size_t{4} << 10,
                                                              (size_t{1} << 20) + 3,
                                                              size_t{5} << 20, size_t{64} << 20)),
                         [](const auto& info) {
                           return dango::testing::test_name_of(std::get<0>(info.param)) + "_" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST_P(TransportBulk, ManyConcurrentOperationsAllComplete) {
  constexpr size_t kOps = 64, kEach = 48 << 10;
  Buffer remote(kOps * kEach, {0.5});
  Buffer local(kOps * kEach, {});
  remote.fill(9);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto desc = remote_region->descriptor();
  std::vector<Done> done(kOps);
  for (size_t i = 0; i < kOps; ++i) {
    client_->get(peer_, desc, i * kEach, *local_region, i * kEach, kEach, &done[i]);
  }
  ASSERT_TRUE(drive({client_.get(), server_.get()}, [&] {
    for (auto& d : done) {
      if (!d.fired()) return false;
    }
    return true;
  }));
  for (auto& d : done) EXPECT_TRUE(d.status().ok()) << d.status().message;
  EXPECT_EQ(remote.bytes, local.bytes);
}

TEST_P(TransportBulk, AllocatedMemoryServesBothSides) {
  auto remote_region = server_->allocate_memory(1 << 20, Access::kReadWrite);
  auto local_region = client_->allocate_memory(1 << 20, Access::kReadWrite);
  ASSERT_EQ(remote_region->size(), size_t{1} << 20);
  ASSERT_EQ(remote_region->segments().size(), 1u);
  EXPECT_EQ(local_region->segments()[0][777], std::byte{0}) << "allocated memory is zeroed";
  std::memset(remote_region->segments()[0].data(), 0x5a, 1 << 20);
  ASSERT_TRUE(run(true, remote_region->descriptor(), 0, *local_region, 0, 1 << 20).ok());
  EXPECT_EQ(local_region->segments()[0][12345], std::byte{0x5a});
  std::memset(local_region->segments()[0].data(), 0x3c, 1 << 20);
  ASSERT_TRUE(run(false, remote_region->descriptor(), 100, *local_region, 0, 1000).ok());
  EXPECT_EQ(remote_region->segments()[0][1099], std::byte{0x3c});
  EXPECT_EQ(remote_region->segments()[0][1100], std::byte{0x5a});
}

TEST_P(TransportBulk, LocalMistakesAndWhatTheDescriptorForbidsFailInline) {
  Buffer remote(4096, {}), local(4096, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto ro_region = server_->register_memory(remote.segments, Access::kReadOnly);
  auto wo_region = server_->register_memory(remote.segments, Access::kWriteOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto foreign_region = server_->register_memory(local.segments, Access::kReadWrite);
  Done bad_local, bad_remote, bad_desc, foreign, read_only, write_only, empty;
  client_->get(peer_, remote_region->descriptor(), 0, *local_region, 4000, 200, &bad_local);
  client_->get(peer_, remote_region->descriptor(), 4000, *local_region, 0, 200, &bad_remote);
  std::byte junk[5] = {};
  client_->get(peer_, junk, 0, *local_region, 0, 1, &bad_desc);
  client_->get(peer_, remote_region->descriptor(), 0, *foreign_region, 0, 1, &foreign);
  client_->put(peer_, ro_region->descriptor(), 0, *local_region, 0, 16, &read_only);
  client_->get(peer_, wo_region->descriptor(), 0, *local_region, 0, 16, &write_only);
  client_->put(peer_, remote_region->descriptor(), 0, *local_region, 0, 0, &empty);
  for (auto* done : {&bad_local, &bad_remote, &bad_desc, &foreign, &read_only, &write_only}) {
    ASSERT_TRUE(done->fired());
    EXPECT_EQ(done->calls(), 1);
    EXPECT_EQ(done->status().code, Status::Code::kInvalidArgument) << done->status().message;
  }
  EXPECT_NE(bad_local.status().message.find("local range"), std::string::npos);
  EXPECT_NE(bad_remote.status().message.find("outside"), std::string::npos);
  EXPECT_NE(read_only.status().message.find("not writable"), std::string::npos);
  EXPECT_NE(write_only.status().message.find("not readable"), std::string::npos);
  EXPECT_TRUE(empty.fired() && empty.status().ok());
  // Nothing was sent: the peer is as usable as before, and a permitted transfer works.
  expect_peer_usable();
  EXPECT_TRUE(run(false, wo_region->descriptor(), 0, *local_region, 0, 4096).ok());
}

TEST_P(TransportBulk, CloseCompletesPendingOperationsWithShutdown) {
  // The server never progresses, so nothing can answer. (sm moves data without its owner's help
  // unless cross-memory attach is off: then the owner copies through the ring.)
  ScopedEnv owner_copies("DANGO_SM_NO_CMA", "1");
  start(scheme());
  Buffer remote(4 << 20, {}), local(4 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  Done get_done, put_done;
  client_->get(peer_, remote_region->descriptor(), 0, *local_region, 0, 4 << 20, &get_done);
  client_->put(peer_, remote_region->descriptor(), 0, *local_region, 0, 4 << 20, &put_done);
  for (int i = 0; i < 10; ++i) client_->progress(1ms);
  EXPECT_FALSE(get_done.fired());
  client_->close();
  EXPECT_EQ(get_done.status().code, Status::Code::kShutdown);
  EXPECT_EQ(put_done.status().code, Status::Code::kShutdown);
  EXPECT_EQ(get_done.calls(), 1);
  EXPECT_EQ(put_done.calls(), 1);
  Done after;
  client_->get(peer_, remote_region->descriptor(), 0, *local_region, 0, 1, &after);
  EXPECT_EQ(after.status().code, Status::Code::kShutdown);
}

TEST_P(TransportBulk, LostPeerCompletesPendingOperationsWithDisconnected) {
  ScopedEnv owner_copies("DANGO_SM_NO_CMA", "1");  // as above: the owner must take part
  start(scheme());
  Buffer remote(1 << 20, {}), local(1 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  Done done;
  client_->get(peer_, remote_region->descriptor(), 0, *local_region, 0, 1 << 20, &done);
  client_->progress(1ms);
  server_.reset();
  ASSERT_TRUE(drive({client_.get()}, [&] { return done.fired(); }));
  EXPECT_EQ(done.status().code, Status::Code::kDisconnected) << done.status().message;
  EXPECT_EQ(done.calls(), 1);
}

TEST_P(TransportBulk, RegionsMayOutliveTheirTransport) {
  Buffer memory(4096, {});
  auto region = client_->register_memory(memory.segments, Access::kReadWrite);
  auto allocated = client_->allocate_memory(4096, Access::kReadWrite);
  client_.reset();
  EXPECT_EQ(region->size(), 4096u);
  EXPECT_EQ(allocated->size(), 4096u);
  region.reset();
  allocated.reset();
}

DANGO_INSTANTIATE_OVER_NET_TRANSPORTS(TransportBulk);

}  // namespace
}  // namespace dango::net
