// Bulk transfers: a handler pulls from and pushes into memory the caller exposed, over every
// transport in the binary and on the in-process path; sizes from 0 to 64 MiB, several segments,
// offsets, and refused transfers (out of bounds, wrong access) reaching the caller as errors.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "dango/dango.hpp"
#include "over_transports.hpp"
#include "rpc_test_util.hpp"

namespace dango::rpc {
namespace {

using namespace testing;

uint64_t fnv1a(std::span<const std::byte> bytes) {
  uint64_t h = 1469598103934665603ull;
  for (std::byte b : bytes) {
    h ^= static_cast<uint8_t>(b);
    h *= 1099511628211ull;
  }
  return h;
}

// Serves the transfers the tests drive:
//   pull_hash(bulk, offset, size) -> hash of the bytes pulled from the caller's bulk
//   push_pattern(bulk, offset, size, seed): pushes pattern(size, seed) into the caller's bulk
void define_bulk_rpcs(Engine& engine) {
  engine.define("pull_hash",
                [](const Request& request, const Bulk& remote, uint64_t offset, uint64_t size) {
                  Engine& e = request.engine();
                  std::vector<std::byte> buffer(size);
                  Bulk local = e.expose(buffer, Access::kWriteOnly);
                  e.pull(request.source(), remote, offset, local, 0, size);
                  return fnv1a(buffer);
                });
  engine.define("push_pattern", [](const Request& request, const Bulk& remote, uint64_t offset,
                                   uint64_t size, uint8_t seed) {
    Engine& e = request.engine();
    std::vector<std::byte> buffer = pattern(size, seed);
    Bulk local = e.expose(buffer, Access::kReadOnly);
    e.push(request.source(), remote, offset, local, 0, size);
  });
}

struct BulkPeers : ServerAndClient {
  explicit BulkPeers(std::string_view scheme) : ServerAndClient(scheme) {
    define_bulk_rpcs(server);
    if (!in_process()) define_bulk_rpcs(client);  // for calls to client.self()
  }
  uint64_t pull_hash(const Endpoint& ep, const Bulk& bulk, uint64_t offset, uint64_t size) {
    return client.rpc<uint64_t(Bulk, uint64_t, uint64_t)>("pull_hash").on(ep)(bulk, offset, size);
  }
  void push_pattern(const Endpoint& ep, const Bulk& bulk, uint64_t offset, uint64_t size,
                    uint8_t seed) {
    client.rpc<void(Bulk, uint64_t, uint64_t, uint8_t)>("push_pattern")
        .on(ep)(bulk, offset, size, seed);
  }
};

// Each size over each transport.
class RpcBulkSizes : public ::testing::TestWithParam<std::tuple<std::string, size_t>> {
 protected:
  const std::string& transport() const { return std::get<0>(GetParam()); }
  size_t size() const { return std::get<1>(GetParam()); }
};

TEST_P(RpcBulkSizes, ServerPullsTheCallersBytes) {
  const size_t size = this->size();
  BulkPeers peers{transport()};
  std::vector<std::byte> data = pattern(size, 1);
  Bulk bulk = peers.client.expose(data, Access::kReadOnly);
  EXPECT_EQ(bulk.size(), size);
  EXPECT_TRUE(bulk.is_local());
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 0, size), fnv1a(data));
}

TEST_P(RpcBulkSizes, ServerPushesIntoTheCallersMemory) {
  const size_t size = this->size();
  BulkPeers peers{transport()};
  std::vector<std::byte> data(size, std::byte{0});
  Bulk bulk = peers.client.expose(data, Access::kWriteOnly);
  peers.push_pattern(peers.endpoint, bulk, 0, size, 2);
  EXPECT_TRUE(data == pattern(size, 2)) << "pushed bytes differ (size " << size << ")";
}

INSTANTIATE_TEST_SUITE_P(
    Transports, RpcBulkSizes,
    ::testing::Combine(::testing::ValuesIn(working_transports_and_self()),
                       ::testing::Values(size_t{0}, size_t{1}, size_t{4096}, size_t{(1 << 20) + 7},
                                         size_t{16} << 20, size_t{64} << 20)),
    [](const auto& info) {
      return test_name_of(std::get<0>(info.param)) + "_Bytes" +
             std::to_string(std::get<1>(info.param));
    });

class RpcBulk : public OverTransports {};

TEST_P(RpcBulk, ReadWriteBulkIsPulledThenPushedInOneHandler) {
  ServerAndClient sc{transport()};
  sc.server.define("increment_all", [](const Request& request, const Bulk& remote) {
    Engine& e = request.engine();
    std::vector<std::byte> buffer(remote.size());
    Bulk local = e.expose(buffer, Access::kReadWrite);
    e.pull(request.source(), remote, 0, local, 0, buffer.size());
    for (std::byte& b : buffer) b = static_cast<std::byte>(static_cast<uint8_t>(b) + 1);
    e.push(request.source(), remote, 0, local, 0, buffer.size());
  });
  std::vector<std::byte> data = pattern(100000, 3);
  std::vector<std::byte> expected = data;
  for (std::byte& b : expected) b = static_cast<std::byte>(static_cast<uint8_t>(b) + 1);
  Bulk bulk = sc.client.expose(data, Access::kReadWrite);
  EXPECT_EQ(bulk.access(), Access::kReadWrite);
  sc.client.rpc<void(Bulk)>("increment_all").on(sc.endpoint)(bulk);
  EXPECT_TRUE(data == expected);
}

TEST_P(RpcBulk, MultiSegmentBulkIsSeenAsOneContiguousRange) {
  BulkPeers peers{transport()};
  std::vector<std::byte> a = pattern(10, 4), b = pattern(4096, 5), c = pattern(100003, 6);
  std::span<std::byte> segments[] = {a, b, c};
  Bulk bulk = peers.client.expose(segments, Access::kReadWrite);
  ASSERT_EQ(bulk.size(), a.size() + b.size() + c.size());
  std::vector<std::byte> all;
  for (auto* v : {&a, &b, &c}) all.insert(all.end(), v->begin(), v->end());
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 0, all.size()), fnv1a(all));
  // A range spanning the three segments.
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 5, 5000),
            fnv1a(std::span<const std::byte>(all).subspan(5, 5000)));

  // A push across the segment boundaries lands in each segment at the right place.
  peers.push_pattern(peers.endpoint, bulk, 7, 4100, 7);
  std::vector<std::byte> expected = all;
  auto pushed = pattern(4100, 7);
  std::copy(pushed.begin(), pushed.end(), expected.begin() + 7);
  std::vector<std::byte> now;
  for (auto* v : {&a, &b, &c}) now.insert(now.end(), v->begin(), v->end());
  EXPECT_TRUE(now == expected);
}

TEST_P(RpcBulk, OffsetsSelectTheRemoteRange) {
  BulkPeers peers{transport()};
  std::vector<std::byte> data = pattern(1 << 20, 8);
  Bulk bulk = peers.client.expose(data, Access::kReadWrite);
  const std::span<const std::byte> view(data);
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 100, 1000), fnv1a(view.subspan(100, 1000)));
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, data.size() - 1, 1), fnv1a(view.last(1)));
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, data.size(), 0), fnv1a({}));

  std::vector<std::byte> before = data;
  peers.push_pattern(peers.endpoint, bulk, 4095, 3, 9);
  auto pushed = pattern(3, 9);
  std::copy(pushed.begin(), pushed.end(), before.begin() + 4095);
  EXPECT_TRUE(data == before) << "bytes outside [4095, 4098) changed or the push missed";
}

TEST_P(RpcBulk, LocalOffsetPlacesThePulledBytes) {
  ServerAndClient sc{transport()};
  sc.server.define("pull_into_middle", [](const Request& request, const Bulk& remote) {
    Engine& e = request.engine();
    std::vector<std::byte> buffer(remote.size() + 20, std::byte{0xEE});
    Bulk local = e.expose(buffer, Access::kReadWrite);
    e.pull(request.source(), remote, 0, local, 10, remote.size());
    return buffer;
  });
  std::vector<std::byte> data = pattern(50, 10);
  Bulk bulk = sc.client.expose(data, Access::kReadOnly);
  auto result =
      sc.client.rpc<std::vector<std::byte>(Bulk)>("pull_into_middle").on(sc.endpoint)(bulk);
  ASSERT_EQ(result.size(), 70u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(result[i], std::byte{0xEE});
  EXPECT_TRUE(std::equal(data.begin(), data.end(), result.begin() + 10));
  for (size_t i = 60; i < 70; ++i) EXPECT_EQ(result[i], std::byte{0xEE});
}

TEST_P(RpcBulk, PullOutOfBoundsReachesTheCallerAsAnError) {
  BulkPeers peers{transport()};
  std::vector<std::byte> data = pattern(1000, 11);
  Bulk bulk = peers.client.expose(data, Access::kReadOnly);
  try {
    peers.pull_hash(peers.endpoint, bulk, 990, 20);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("pull"), std::string::npos) << e.what();
  }
  // The connection and the bulk still work.
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 0, 1000), fnv1a(data));
}

TEST_P(RpcBulk, PushOutOfBoundsReachesTheCallerAsAnErrorAndWritesNothing) {
  BulkPeers peers{transport()};
  std::vector<std::byte> data(1000, std::byte{0});
  Bulk bulk = peers.client.expose(data, Access::kWriteOnly);
  try {
    peers.push_pattern(peers.endpoint, bulk, 900, 200, 12);
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("push"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::all_of(data.begin(), data.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_P(RpcBulk, PullFromWriteOnlyMemoryIsRefused) {
  BulkPeers peers{transport()};
  std::vector<std::byte> data = pattern(4096, 13);
  Bulk bulk = peers.client.expose(data, Access::kWriteOnly);
  EXPECT_THROW(peers.pull_hash(peers.endpoint, bulk, 0, data.size()), RemoteError);
}

TEST_P(RpcBulk, PushIntoReadOnlyMemoryIsRefusedAndLeavesItUnchanged) {
  BulkPeers peers{transport()};
  std::vector<std::byte> data = pattern(4096, 14);
  const std::vector<std::byte> original = data;
  Bulk bulk = peers.client.expose(data, Access::kReadOnly);
  EXPECT_THROW(peers.push_pattern(peers.endpoint, bulk, 0, data.size(), 15), RemoteError);
  EXPECT_TRUE(data == original);
  // Still served afterwards.
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 0, data.size()), fnv1a(original));
}

TEST_P(RpcBulk, LocalBulkTooSmallIsANetworkErrorBeforeAnyTransfer) {
  ServerAndClient sc{transport()};
  std::vector<std::byte> remote_memory = pattern(100, 16);
  Bulk remote = sc.server.expose(remote_memory, Access::kReadWrite);
  std::vector<std::byte> small(10);
  Bulk local = sc.client.expose(small, Access::kReadWrite);
  EXPECT_THROW(sc.client.pull(sc.endpoint, remote, 0, local, 0, 100), NetworkError);
  EXPECT_THROW(sc.client.push(sc.endpoint, remote, 0, local, 5, 6), NetworkError);
  // A handle received from a peer is not a local bulk (in process, the peer is this engine).
  if (!sc.in_process()) {
    EXPECT_THROW(sc.client.pull(sc.endpoint, remote, 0, remote, 0, 10), NetworkError);
  }
}

TEST_P(RpcBulk, ClientPullsAndPushesServerMemoryDirectly) {
  ServerAndClient sc{transport()};
  std::vector<std::byte> server_memory = pattern(300000, 17);
  const std::vector<std::byte> original = server_memory;
  Bulk remote = sc.server.expose(server_memory, Access::kReadWrite);
  EXPECT_EQ(remote.owner(), sc.server.address());
  std::vector<std::byte> mine(300000);
  Bulk local = sc.client.expose(mine, Access::kReadWrite);
  sc.client.pull(sc.endpoint, remote, 0, local, 0, mine.size());
  EXPECT_TRUE(mine == original);
  const auto fresh = pattern(300000, 18);
  std::copy(fresh.begin(), fresh.end(), mine.begin());  // in place: the bulk keeps pointing here
  sc.client.push(sc.endpoint, remote, 0, local, 0, mine.size());
  EXPECT_TRUE(server_memory == mine);
}

TEST_P(RpcBulk, AllocatedExposedMemoryIsZeroedAndServesTransfersBothWays) {
  BulkPeers peers{transport()};
  const size_t size = 1 << 20;
  ExposedMemory memory = peers.client.allocate_exposed(size);
  ASSERT_EQ(memory.size(), size);
  EXPECT_EQ(memory.bulk().size(), size);
  EXPECT_TRUE(memory.bulk().is_local());
  EXPECT_TRUE(std::all_of(memory.data().begin(), memory.data().end(),
                          [](std::byte b) { return b == std::byte{0}; }));
  peers.push_pattern(peers.endpoint, memory.bulk(), 0, size, 9);
  const auto expected = pattern(size, 9);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), memory.data().begin()));
  EXPECT_EQ(peers.pull_hash(peers.endpoint, memory.bulk(), 0, size), fnv1a(expected));
  // As the local side of the client's own transfers too.
  std::vector<std::byte> server_memory = pattern(size, 10);
  Bulk remote = peers.server.expose(server_memory, Access::kReadWrite);
  peers.client.pull(peers.endpoint, remote, 0, memory.bulk(), 0, size);
  EXPECT_TRUE(std::equal(server_memory.begin(), server_memory.end(), memory.data().begin()));
  std::fill(memory.data().begin(), memory.data().end(), std::byte{7});
  peers.client.push(peers.endpoint, remote, 0, memory.bulk(), 0, size);
  EXPECT_EQ(server_memory[size / 2], std::byte{7});
  // A read-only allocation refuses a push into it before any transfer.
  ExposedMemory read_only = peers.client.allocate_exposed(64, Access::kReadOnly);
  EXPECT_THROW(peers.push_pattern(peers.endpoint, read_only.bulk(), 0, 64, 1), RemoteError);
}

TEST_P(RpcBulk, BulkHandleSurvivesATripThroughSerialization) {
  if (in_process()) GTEST_SKIP() << "an in-process call passes the caller's handle itself, never serialized";
  ServerAndClient sc{transport()};
  std::vector<std::byte> data = pattern(64, 19);
  Bulk bulk = sc.client.expose(data, Access::kReadOnly);
  sc.server.define("describe", [](const Bulk& b) {
    return std::to_string(b.size()) + "/" + std::to_string(static_cast<int>(b.access())) + "/" +
           (b.is_local() ? "local" : "remote") + "/" + b.owner();
  });
  EXPECT_EQ(sc.client.rpc<std::string(Bulk)>("describe").on(sc.endpoint)(bulk),
            "64/" + std::to_string(static_cast<int>(Access::kReadOnly)) + "/remote/" + transport());
}

TEST_P(RpcBulk, EmptyTransferAtAnOffsetPastTheEndIsRefused) {
  BulkPeers peers{transport()};
  std::vector<std::byte> data = pattern(100, 31);
  Bulk bulk = peers.client.expose(data, Access::kReadOnly);
  EXPECT_THROW(peers.pull_hash(peers.endpoint, bulk, 101, 0), RemoteError);
  EXPECT_EQ(peers.pull_hash(peers.endpoint, bulk, 100, 0), fnv1a({}));
}

DANGO_INSTANTIATE_OVER_TRANSPORTS_AND_SELF(RpcBulk);

// ---- in-process ----------------------------------------------------------------------------

TEST(RpcBulk, SelfCallHandlerPullsAndPushesTheCallersMemory) {
  BulkPeers peers{"tcp"};
  std::vector<std::byte> data = pattern(1 << 20, 20);
  Bulk read_only = peers.client.expose(data, Access::kReadOnly);
  EXPECT_EQ(peers.pull_hash(peers.client.self(), read_only, 0, data.size()), fnv1a(data));
  std::vector<std::byte> target(5000, std::byte{0});
  Bulk write_only = peers.client.expose(target, Access::kWriteOnly);
  peers.push_pattern(peers.client.self(), write_only, 0, target.size(), 21);
  EXPECT_TRUE(target == pattern(5000, 21));
}

TEST(RpcBulk, SelfPullAndPushCopyAcrossSegmentsAndOffsets) {
  Engine engine{"tcp://127.0.0.1:0"};
  std::vector<std::byte> a = pattern(7, 22), b = pattern(1000, 23);
  std::span<std::byte> segments[] = {a, b};
  Bulk source = engine.expose(segments, Access::kReadWrite);
  std::vector<std::byte> all(a);
  all.insert(all.end(), b.begin(), b.end());

  std::vector<std::byte> x(300, std::byte{0}), y(300, std::byte{0});
  std::span<std::byte> dst_segments[] = {x, y};
  Bulk dest = engine.expose(dst_segments, Access::kReadWrite);
  engine.pull(engine.self(), source, 3, dest, 250, 350);  // spans both sides' boundaries
  for (size_t i = 0; i < 350; ++i) {
    const std::byte got = 250 + i < 300 ? x[250 + i] : y[250 + i - 300];
    ASSERT_EQ(got, all[3 + i]) << i;
  }
  std::vector<std::byte> fresh = pattern(20, 24);
  Bulk fresh_bulk = engine.expose(fresh, Access::kReadOnly);
  engine.push(engine.self(), source, 0, fresh_bulk, 0, 20);
  EXPECT_TRUE(std::equal(fresh.begin(), fresh.begin() + 7, a.begin()));
  EXPECT_TRUE(std::equal(fresh.begin() + 7, fresh.end(), b.begin()));
}

TEST(RpcBulk, SelfTransferOutOfBoundsOrWithWrongAccessIsRefused) {
  Engine engine{"tcp://127.0.0.1:0"};
  std::vector<std::byte> ro_mem = pattern(100, 25), wo_mem(100), local_mem(200);
  Bulk read_only = engine.expose(ro_mem, Access::kReadOnly);
  Bulk write_only = engine.expose(wo_mem, Access::kWriteOnly);
  Bulk local = engine.expose(local_mem, Access::kReadWrite);
  EXPECT_THROW(engine.pull(engine.self(), read_only, 50, local, 0, 51), NetworkError);
  EXPECT_THROW(engine.pull(engine.self(), write_only, 0, local, 0, 10), NetworkError);
  EXPECT_THROW(engine.push(engine.self(), read_only, 0, local, 0, 10), NetworkError);
  EXPECT_THROW(engine.push(engine.self(), write_only, 90, local, 0, 11), NetworkError);
  EXPECT_NO_THROW(engine.push(engine.self(), write_only, 90, local, 0, 10));
  EXPECT_NO_THROW(engine.pull(engine.self(), read_only, 0, local, 100, 100));
}

}  // namespace
}  // namespace dango::rpc
