// One-sided get/put over the sm transport on its three paths — process_vm_readv/writev, copies
// through the ring (DANGO_SM_NO_CMA=1, as where the kernel forbids cross-memory attach), and
// memcpy from a peer's arena — plus errors and operations cut short by a close or a lost peer.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#include "net_test_util.hpp"
#include "sm_test_util.hpp"

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
  std::vector<std::byte> bytes;
  std::vector<std::span<std::byte>> segments;
};

void fill(std::span<std::byte> bytes, uint32_t seed) {
  uint32_t x = seed;
  for (auto& b : bytes) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(x >> 24);
  }
}

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

class SmBulk : public ::testing::Test {
 protected:
  void start(Path path) {
    path_ = path;
    if (path == Path::kThroughTheRing) {
      no_cma_ = std::make_unique<ScopedEnv>("DANGO_SM_NO_CMA", "1");
    }
    server_ = make_transport("sm://");
    client_ = make_transport("sm", {.bulk_chunk_size = size_t{1} << 20});
    server_->set_handler(&server_inbox_);
    client_->set_handler(&client_inbox_);
    peer_ = client_->lookup(server_->address());
  }
  void SetUp() override { start(Path::kCrossMemoryAttach); }

  Status run(bool is_get, std::span<const std::byte> remote, size_t remote_offset,
             MemoryRegion& local, size_t local_offset, size_t size, bool server_helps = true) {
    Done done;
    if (is_get) {
      client_->get(peer_, remote, remote_offset, local, local_offset, size, &done);
    } else {
      client_->put(peer_, remote, remote_offset, local, local_offset, size, &done);
    }
    std::vector<Transport*> driven{client_.get()};
    if (server_helps) driven.push_back(server_.get());
    EXPECT_TRUE(drive(driven, [&] { return done.fired(); }));
    EXPECT_EQ(done.calls(), 1);
    return done.status();
  }

  void expect_connection_usable() {
    size_t before = server_inbox_.count();
    ASSERT_TRUE(send_text(*client_, peer_, "still here").ok());
    ASSERT_TRUE(
        drive({client_.get(), server_.get()}, [&] { return server_inbox_.count() == before + 1; }));
  }

  Path path_ = Path::kCrossMemoryAttach;
  std::unique_ptr<ScopedEnv> no_cma_;
  std::unique_ptr<Transport> server_, client_;
  Inbox server_inbox_, client_inbox_;
  PeerRef peer_;
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

TEST_F(SmBulk, LocalMistakesFailInline) {
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
    EXPECT_EQ(done->status().code, Status::Code::kInvalidArgument) << done->status().message;
  }
  EXPECT_NE(bad_remote.status().message.find("outside"), std::string::npos);
  EXPECT_NE(read_only.status().message.find("not writable"), std::string::npos);
  EXPECT_TRUE(empty.fired() && empty.status().ok());
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
  expect_connection_usable();  // handshake done; from now on the server never runs
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
  client_.reset();
  server_.reset();
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
  client_.reset();
  server_.reset();
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
  client_.reset();
  server_.reset();
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
  expect_connection_usable();
  EXPECT_EQ(client_inbox_.lost_count(), 0u);
}

TEST_F(SmBulk, CloseCompletesPendingOperationsWithShutdown) {
  client_.reset();
  server_.reset();
  start(Path::kThroughTheRing);  // the server never progresses, so nothing can answer
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

TEST_F(SmBulk, LostPeerCompletesPendingOperationsWithDisconnected) {
  client_.reset();
  server_.reset();
  start(Path::kThroughTheRing);
  Buffer remote(1 << 20, {}), local(1 << 20, {});
  auto remote_region = server_->register_memory(remote.segments, Access::kReadWrite);
  auto local_region = client_->register_memory(local.segments, Access::kReadWrite);
  expect_connection_usable();
  Done done;
  client_->get(peer_, remote_region->descriptor(), 0, *local_region, 0, 1 << 20, &done);
  client_->progress(1ms);
  server_.reset();
  ASSERT_TRUE(drive({client_.get()}, [&] { return done.fired(); }));
  EXPECT_EQ(done.status().code, Status::Code::kDisconnected) << done.status().message;
  EXPECT_EQ(done.calls(), 1);
}

}  // namespace
}  // namespace dango::net
