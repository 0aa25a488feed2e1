// What the owner of tcp memory checks itself, whatever a (forged or stale) descriptor claims:
// bounds, rights and keys, each refused without closing the connection. The get/put behaviour
// common to every transport is in transport_bulk_test.cpp.

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "bulk_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

std::vector<std::byte> forged_descriptor(uint64_t key, uint64_t size, Access access) {
  std::vector<std::byte> d(17);
  std::memcpy(d.data(), &key, 8);
  std::memcpy(d.data() + 8, &size, 8);
  d[16] = static_cast<std::byte>(access);
  return d;
}

uint64_t key_of(const MemoryRegion& region) {
  uint64_t key;
  std::memcpy(&key, region.descriptor().data(), 8);
  return key;
}

class TcpBulk : public BulkPair, public ::testing::Test {
 protected:
  void SetUp() override { start("tcp"); }
};

TEST_F(TcpBulk, OwnerRefusesOutOfBoundsAndKeepsTheConnection) {
  Buffer remote(4096, {});
  Buffer local(8192, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  // A forged descriptor claims more than the region has: only the owner can catch it.
  auto forged = forged_descriptor(key_of(*remote_region), 8192, Access::kReadWrite);
  auto s = run(true, forged, 4000, *local_region, 0, 200);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("outside"), std::string::npos) << s.message;
  s = run(false, forged, 4096, *local_region, 0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  expect_peer_usable();
  EXPECT_TRUE(run(true, remote_region->descriptor(), 0, *local_region, 0, 4096).ok());
}

TEST_F(TcpBulk, OwnerRefusesTheWrongAccess) {
  Buffer ro(4096, {}), wo(4096, {}), local(4096, {});
  auto ro_region = server_->register_memory(ro.segments, Access::kReadOnly);
  auto wo_region = server_->register_memory(wo.segments, Access::kWriteOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  // The owner refuses forged rights; a refused put's payload is drained, not a disconnect.
  auto s = run(false, forged_descriptor(key_of(*ro_region), 4096, Access::kReadWrite), 0,
               *local_region, 0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("writes"), std::string::npos) << s.message;
  s = run(true, forged_descriptor(key_of(*wo_region), 4096, Access::kReadWrite), 0, *local_region,
          0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  expect_peer_usable();
  EXPECT_TRUE(run(false, wo_region->descriptor(), 0, *local_region, 0, 4096).ok());
}

TEST_F(TcpBulk, UnknownKeyIsAnErrorNotADisconnect) {
  Buffer remote(1 << 20, {}), local(1 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto desc = remote_region->descriptor();
  remote_region.reset();  // deregistered
  auto s = run(true, desc, 0, *local_region, 0, 1 << 20);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("unknown memory key"), std::string::npos) << s.message;
  EXPECT_EQ(run(false, desc, 0, *local_region, 0, 1 << 20).code, Status::Code::kInvalidArgument);
  expect_peer_usable();
  EXPECT_EQ(client_inbox_.lost_count(), 0u);
}

}  // namespace
}  // namespace dango::net
