// What the owner's provider checks on ofi+tcp (fi_read/fi_write), whatever a forged descriptor
// claims: bounds, keys and rights. What every transport does is in transport_bulk_test.cpp.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "bulk_test_util.hpp"
#include "ofi_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

// Mirror of the descriptor layout (src/net/ofi/wire.hpp), written out so that the test checks
// the format rather than reusing the code under test: a 16-byte header (magic, version, access,
// segment count, size), then per segment its address, key and length.
struct ForgedSegment {
  uint64_t address, key, length;
};
std::vector<std::byte> forged_descriptor(Access access, uint64_t size,
                                         std::vector<ForgedSegment> segments) {
  std::vector<std::byte> d(16 + 24 * segments.size());
  const uint32_t magic = 0x4d464f44;
  const uint16_t count = static_cast<uint16_t>(segments.size());
  std::memcpy(d.data(), &magic, 4);
  d[4] = std::byte{1};
  d[5] = static_cast<std::byte>(access);
  std::memcpy(d.data() + 6, &count, 2);
  std::memcpy(d.data() + 8, &size, 8);
  std::memcpy(d.data() + 16, segments.data(), 24 * segments.size());
  return d;
}
ForgedSegment first_segment(const MemoryRegion& region) {
  ForgedSegment s;
  std::memcpy(&s, region.descriptor().data() + 16, sizeof s);
  return s;
}

class OfiBulk : public BulkPair, public ::testing::Test {
 protected:
  void SetUp() override {
    DANGO_SKIP_WITHOUT_OFI_TCP();
    start("ofi+tcp");
  }
};

TEST_F(OfiBulk, OwnerRefusesForgedBoundsAndRights) {
  Buffer ro(4096, {}), local(8192, {});
  auto ro_region = server_->register_memory(ro.segments, Access::kReadOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  local.fill(6);
  // Forged descriptors claim more than the region allows: only the owner's provider can catch it.
  auto segment = first_segment(*ro_region);
  auto too_long = forged_descriptor(Access::kReadOnly, 8192, {{segment.address, segment.key, 8192}});
  EXPECT_FALSE(run(true, too_long, 4000, *local_region, 0, 200).ok());
  auto unknown_key = forged_descriptor(Access::kReadOnly, 4096,
                                       {{segment.address, segment.key + 1000, 4096}});
  EXPECT_FALSE(run(true, unknown_key, 0, *local_region, 0, 4096).ok());
  // The tcp provider completes a write once sent, before the owner checks it: the requester may
  // see success, but the owner writes nothing.
  auto writable = forged_descriptor(Access::kReadWrite, 4096, {segment});
  run(false, writable, 0, *local_region, 0, 4096);
  for (int i = 0; i < 100; ++i) server_->progress(100us);
  EXPECT_EQ(std::count(ro.bytes.begin(), ro.bytes.end(), std::byte{0}), 4096) << "bytes written";
  // The provider resets the connection over such requests; the peer is reachable again after.
  bool arrived = false;
  for (int attempt = 0; attempt < 5 && !arrived; ++attempt) {
    size_t before = server_inbox_.count(), lost = client_inbox_.lost_count();
    ASSERT_TRUE(send_text(*client_, peer_, "still here").ok());
    drive({client_.get(), server_.get()}, [&] {
      return server_inbox_.count() > before || client_inbox_.lost_count() > lost;
    });
    arrived = server_inbox_.count() > before;
    // Let the provider notice the reset connection before the next attempt.
    auto until = std::chrono::steady_clock::now() + 1s;
    while (!arrived && std::chrono::steady_clock::now() < until) {
      client_->progress(0us);
      server_->progress(0us);
    }
  }
  EXPECT_TRUE(arrived);
  EXPECT_TRUE(run(true, ro_region->descriptor(), 0, *local_region, 0, 4096).ok());
}

}  // namespace
}  // namespace dango::net
