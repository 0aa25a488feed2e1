// One-sided get/put over the tcp transport: sizes, segments, offsets, chunking, errors, and
// operations cut short by a close or a lost peer.

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "net_test_util.hpp"

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

class TcpBulk : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = make_transport("tcp://127.0.0.1:0");
    client_ = make_transport("tcp", {.bulk_chunk_size = size_t{1} << 20});
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

  void expect_connection_usable() {
    size_t before = server_inbox_.count();
    ASSERT_TRUE(send_text(*client_, peer_, "still here").ok());
    ASSERT_TRUE(
        drive({client_.get(), server_.get()}, [&] { return server_inbox_.count() == before + 1; }));
  }

  std::unique_ptr<Transport> server_, client_;
  Inbox server_inbox_, client_inbox_;
  PeerRef peer_;
};

class TcpBulkSizes : public TcpBulk, public ::testing::WithParamInterface<size_t> {};

TEST_P(TcpBulkSizes, GetAndPutMoveEveryByteAcrossSegmentsAndOffsets) {
  const size_t size = GetParam();
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
  expect_connection_usable();
}

INSTANTIATE_TEST_SUITE_P(Sizes, TcpBulkSizes,
                         ::testing::Values(size_t{4} << 10, (size_t{1} << 20) + 3, size_t{5} << 20,
                                           size_t{64} << 20));

TEST_F(TcpBulk, ManyConcurrentOperationsAllComplete) {
  Buffer remote(1 << 20, {0.5});
  Buffer local(1 << 20, {});
  remote.fill(9);
  auto remote_region = server_->register_memory(remote.segments, Access::kReadOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  auto desc = remote_region->descriptor();
  constexpr size_t kOps = 64, kPiece = (1 << 20) / kOps;
  std::vector<Done> done(kOps);
  for (size_t i = 0; i < kOps; ++i) {
    client_->get(peer_, desc, i * kPiece, *local_region, i * kPiece, kPiece, &done[i]);
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
  expect_connection_usable();
  EXPECT_TRUE(run(true, remote_region->descriptor(), 0, *local_region, 0, 4096).ok());
}

TEST_F(TcpBulk, OwnerRefusesTheWrongAccess) {
  Buffer ro(4096, {}), wo(4096, {}), local(4096, {});
  auto ro_region = server_->register_memory(ro.segments, Access::kReadOnly);
  auto wo_region = server_->register_memory(wo.segments, Access::kWriteOnly);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  // The requester refuses what the descriptor forbids...
  EXPECT_EQ(run(false, ro_region->descriptor(), 0, *local_region, 0, 16).code,
            Status::Code::kInvalidArgument);
  EXPECT_EQ(run(true, wo_region->descriptor(), 0, *local_region, 0, 16).code,
            Status::Code::kInvalidArgument);
  // ...and the owner refuses forged rights; a refused put's payload is drained, not a disconnect.
  auto s = run(false, forged_descriptor(key_of(*ro_region), 4096, Access::kReadWrite), 0,
               *local_region, 0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  EXPECT_NE(s.message.find("writes"), std::string::npos) << s.message;
  s = run(true, forged_descriptor(key_of(*wo_region), 4096, Access::kReadWrite), 0, *local_region,
          0, 4096);
  EXPECT_EQ(s.code, Status::Code::kInvalidArgument);
  expect_connection_usable();
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
  expect_connection_usable();
  EXPECT_EQ(client_inbox_.lost_count(), 0u);
}

TEST_F(TcpBulk, LocalMistakesFailInline) {
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

TEST_F(TcpBulk, CloseCompletesPendingOperationsWithShutdown) {
  Buffer remote(4 << 20, {}), local(4 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  Done get_done, put_done;
  // The server never progresses, so nothing can answer.
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

TEST_F(TcpBulk, LostPeerCompletesPendingOperationsWithDisconnected) {
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
