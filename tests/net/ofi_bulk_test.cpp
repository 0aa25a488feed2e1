// One-sided get/put over ofi+tcp (fi_read/fi_write): sizes, segments, offsets, chunking, errors,
// and operations cut short by a close or a lost peer.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "net_test_util.hpp"
#include "ofi_test_util.hpp"

namespace dango::net {
namespace {

using namespace testing;

// A buffer split into uneven segments, as a user's scattered memory would be.
struct Buffer {
  Buffer(size_t size, std::initializer_list<double> cuts) : bytes(size) {
    size_t start = 0;
    for (double cut : cuts) {
      size_t end = static_cast<size_t>(static_cast<double>(size) * cut);
      segments.emplace_back(bytes.data() + start, end - start);
      start = end;
    }
    segments.emplace_back(bytes.data() + start, size - start);
  }
  void fill(uint32_t seed) {
    uint32_t x = seed;
    for (auto& b : bytes) {
      x = x * 1664525u + 1013904223u;
      b = static_cast<std::byte>(x >> 24);
    }
  }
  std::vector<std::byte> bytes;
  std::vector<std::span<std::byte>> segments;
};

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

class OfiBulk : public ::testing::Test {
 protected:
  void SetUp() override {
    DANGO_SKIP_WITHOUT_OFI_TCP();
    server_ = make_transport("ofi+tcp://127.0.0.1:0");
    // A short connect_timeout: a lost peer is declared after one unanswered probe of that long.
    client_ = make_transport("ofi+tcp", {.bulk_chunk_size = size_t{1} << 20,
                                         .connect_timeout = std::chrono::milliseconds(1000)});
    server_->set_handler(&server_inbox_);
    client_->set_handler(&client_inbox_);
    peer_ = client_->lookup(server_->address());
  }

  Status run(bool is_get, std::span<const std::byte> remote, size_t remote_offset,
             MemoryRegion& local, size_t local_offset, size_t size) {
    Done done;
    if (is_get) {
      client_->get(peer_, remote, remote_offset, local, local_offset, size, &done);
    } else {
      client_->put(peer_, remote, remote_offset, local, local_offset, size, &done);
    }
    EXPECT_TRUE(drive({client_.get(), server_.get()}, [&] { return done.fired(); }));
    EXPECT_EQ(done.calls(), 1);
    return done.status();
  }

  void expect_peer_usable() {
    size_t before = server_inbox_.count();
    ASSERT_TRUE(send_text(*client_, peer_, "still here").ok());
    ASSERT_TRUE(
        drive({client_.get(), server_.get()}, [&] { return server_inbox_.count() == before + 1; }));
  }

  std::unique_ptr<Transport> server_, client_;
  Inbox server_inbox_, client_inbox_;
  PeerRef peer_;
};

class OfiBulkSizes : public OfiBulk, public ::testing::WithParamInterface<size_t> {};

TEST_P(OfiBulkSizes, GetAndPutMoveEveryByteAcrossSegmentsAndOffsets) {
  const size_t size = GetParam();
  Buffer remote(size, {0.3, 0.31, 0.8});
  Buffer local(size + 64, {0.5});
  remote.fill(1);
  local.fill(2);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto desc = remote_region->descriptor();

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

INSTANTIATE_TEST_SUITE_P(Sizes, OfiBulkSizes,
                         ::testing::Values(size_t{4} << 10, (size_t{1} << 20) + 3, size_t{5} << 20,
                                           size_t{24} << 20));

TEST_F(OfiBulk, ManyConcurrentOperationsAllComplete) {
  constexpr size_t kOps = 64, kEach = 48 << 10;
  Buffer remote(kOps * kEach, {});
  Buffer local(kOps * kEach, {});
  remote.fill(9);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  std::vector<Done> done(kOps);
  for (size_t i = 0; i < kOps; ++i) {
    client_->get(peer_, remote_region->descriptor(), i * kEach, *local_region, i * kEach, kEach,
                 &done[i]);
  }
  ASSERT_TRUE(drive({client_.get(), server_.get()}, [&] {
    for (auto& d : done) {
      if (!d.fired()) return false;
    }
    return true;
  }));
  for (auto& d : done) EXPECT_TRUE(d.status().ok()) << d.status().message;
  EXPECT_EQ(local.bytes, remote.bytes);
}

TEST_F(OfiBulk, AllocatedMemoryServesBothSides) {
  auto remote_region = server_->allocate_memory(1 << 20, Access::kReadWrite);
  auto local_region = client_->allocate_memory(1 << 20, Access::kReadWrite);
  ASSERT_EQ(remote_region->segments().size(), 1u);
  std::memset(remote_region->segments()[0].data(), 0x5a, 1 << 20);
  ASSERT_TRUE(run(true, remote_region->descriptor(), 0, *local_region, 0, 1 << 20).ok());
  EXPECT_EQ(local_region->segments()[0][12345], std::byte{0x5a});
}

TEST_F(OfiBulk, RequesterRefusesWhatTheDescriptorForbids) {
  Buffer ro(4096, {}), wo(4096, {}), local(4096, {});
  auto ro_region = server_->register_memory(ro.segments, Access::kReadOnly);
  auto wo_region = server_->register_memory(wo.segments, Access::kWriteOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  EXPECT_EQ(run(false, ro_region->descriptor(), 0, *local_region, 0, 16).code,
            Status::Code::kInvalidArgument);
  EXPECT_EQ(run(true, wo_region->descriptor(), 0, *local_region, 0, 16).code,
            Status::Code::kInvalidArgument);
  EXPECT_EQ(run(true, ro_region->descriptor(), 4000, *local_region, 0, 200).code,
            Status::Code::kInvalidArgument);
  EXPECT_TRUE(run(false, wo_region->descriptor(), 0, *local_region, 0, 4096).ok());
}

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

TEST_F(OfiBulk, LocalMistakesFailInline) {
  Buffer remote(4096, {}), local(4096, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto foreign_region = server_->register_memory(local.segments, Access::kReadWrite);
  Done bad_local, bad_desc, foreign, empty;
  client_->get(peer_, remote_region->descriptor(), 0, *local_region, 4000, 200, &bad_local);
  std::byte junk[5] = {};
  client_->get(peer_, junk, 0, *local_region, 0, 1, &bad_desc);
  client_->get(peer_, remote_region->descriptor(), 0, *foreign_region, 0, 1, &foreign);
  client_->put(peer_, remote_region->descriptor(), 0, *local_region, 0, 0, &empty);
  EXPECT_EQ(bad_local.status().code, Status::Code::kInvalidArgument);
  EXPECT_EQ(bad_desc.status().code, Status::Code::kInvalidArgument);
  EXPECT_EQ(foreign.status().code, Status::Code::kInvalidArgument);
  EXPECT_TRUE(empty.fired() && empty.status().ok());
}

TEST_F(OfiBulk, CloseCompletesPendingOperationsWithShutdown) {
  Buffer remote(4 << 20, {}), local(4 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  Done get_done, put_done;
  // The server never progresses, so its side of the transfers cannot run.
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

TEST_F(OfiBulk, RegionsMayOutliveTheirTransport) {
  Buffer memory(4096, {});
  auto region = client_->register_memory(memory.segments, Access::kReadWrite);
  client_.reset();
  EXPECT_EQ(region->size(), 4096u);
  region.reset();
}

TEST_F(OfiBulk, LostPeerCompletesPendingOperationsWithDisconnected) {
  Buffer remote(1 << 20, {}), local(1 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto desc = remote_region->descriptor();
  Done done;
  client_->get(peer_, desc, 0, *local_region, 0, 1 << 20, &done);
  client_->progress(1ms);
  server_.reset();
  ASSERT_TRUE(drive({client_.get()}, [&] { return done.fired(); }));
  EXPECT_EQ(done.status().code, Status::Code::kDisconnected) << done.status().message;
  EXPECT_EQ(done.calls(), 1);
}

}  // namespace
}  // namespace dango::net
