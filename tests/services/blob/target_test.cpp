// The region operations of blob::Target, run against every example configuration of every
// registered target type (file, file.directory, memory: the list comes from the registry at run
// time) through a provider served over tcp.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "blob_test_util.hpp"

namespace dango::blob {
namespace {

using namespace testing;

class TargetSuite : public ::testing::TestWithParam<std::string> {
 protected:
  // Small staging buffers, so that a few MiB cross several pipelined chunks; a bounded target
  // holds 8 MiB, so that reuse of erased space is needed after a few MiB.
  ProviderOptions options() {
    TargetConfig target = target_config(GetParam(), dir_.path());
    if (target.config.contains("capacity")) target.config["capacity"] = uint64_t{8} << 20;
    return ProviderOptions{
        .targets = {target},
        .inline_threshold = 1024,
        .staging = {.buffer_size = 256 << 10, .buffers = 4, .pipeline_depth = 2}};
  }
  TempDir dir_;
  BlobServer server_{options()};
  Target target_ = server_.open();
};

TEST_P(TargetSuite, WrittenBytesReadBackForInlineAndBulkSizes) {
  for (size_t size :
       {size_t{1}, size_t{1000}, size_t{1025}, size_t{64 << 10}, size_t{(1 << 20) + 12345}}) {
    const auto data = pattern(size, static_cast<uint8_t>(size));
    const RegionId id = target_.create(size);
    target_.write(id, 0, data);
    target_.persist(id, 0, size);
    std::vector<std::byte> back(size);
    target_.read(id, 0, back);
    EXPECT_EQ(checksum(back), checksum(data)) << "size " << size;
    EXPECT_EQ(target_.get_size(id), size);
  }
}

TEST_P(TargetSuite, CreateWritePersistMakesAReadableRegionInOneCall) {
  const auto small = pattern(100, 1);
  const auto large = pattern(3 << 20, 2);
  const RegionId a = target_.create_write_persist(small);
  const RegionId b = target_.create_write_persist(large);
  EXPECT_NE(a, b);
  std::vector<std::byte> back(large.size());
  target_.read(b, 0, back);
  EXPECT_EQ(checksum(back), checksum(large));
  back.resize(small.size());
  target_.read(a, 0, back);
  EXPECT_EQ(back, small);
}

TEST_P(TargetSuite, WriteAtAnOffsetChangesOnlyThatRange) {
  const size_t size = 700000;
  auto data = pattern(size, 3);
  const RegionId id = target_.create_write_persist(data);
  const auto patch = pattern(300000, 4);
  target_.write(id, 123457, patch);
  std::copy(patch.begin(), patch.end(), data.begin() + 123457);
  std::vector<std::byte> back(size);
  target_.read(id, 0, back);
  EXPECT_EQ(checksum(back), checksum(data));
  std::vector<std::byte> middle(5000);
  target_.read(id, 400001, middle);
  EXPECT_TRUE(std::equal(middle.begin(), middle.end(), data.begin() + 400001));
}

TEST_P(TargetSuite, CallerExposedMemoryIsUsedWithOffsets) {
  std::vector<std::byte> memory = pattern(2 << 20, 5);
  const Bulk bulk = server_.client_engine.expose(memory, rpc::Access::kReadWrite);
  const RegionId id = target_.create_write_persist(bulk, 4096, 1 << 20);
  std::vector<std::byte> expected(memory.begin() + 4096, memory.begin() + 4096 + (1 << 20));
  std::fill(memory.begin(), memory.end(), std::byte{0});
  target_.read(id, 0, bulk, 100, 1 << 20);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), memory.begin() + 100));
  EXPECT_EQ(memory[99], std::byte{0});
}

TEST_P(TargetSuite, ReadsAndWritesPastTheEndAreRefusedAndChangeNothing) {
  const auto data = pattern(5000, 6);
  const RegionId id = target_.create_write_persist(data);
  std::vector<std::byte> out(100);
  try {
    target_.read(id, 4950, out);
    FAIL() << "a read past the end succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
    EXPECT_NE(std::string(e.what()).find(id.to_string()), std::string::npos) << e.what();
  }
  std::vector<std::byte> big(2 << 20);
  EXPECT_THROW(
      try { target_.read(id, 0, big); } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
        throw;
      },
      Error);
  const auto junk = pattern(200, 7);
  EXPECT_THROW(target_.write(id, 4900, junk), Error);
  EXPECT_THROW(target_.write(id, ~uint64_t{0} - 10, junk), Error);  // offset + size overflows
  EXPECT_THROW(target_.persist(id, 0, 5001), Error);
  std::vector<std::byte> back(5000);
  target_.read(id, 0, back);
  EXPECT_EQ(back, data);
}

TEST_P(TargetSuite, UnknownRegionsAndEmptyRegionsAreErrors) {
  const RegionId never = RegionId::from_number(987654321);
  std::vector<std::byte> out(10);
  for (auto call : std::vector<std::function<void()>>{
           [&] { target_.get_size(never); }, [&] { target_.read(never, 0, out); },
           [&] { target_.write(never, 0, out); }, [&] { target_.erase(never); },
           [&] { target_.persist(never, 0, 1); }}) {
    try {
      call();
      ADD_FAILURE() << "an operation on an unknown region succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnknownRegion) << e.what();
    }
  }
  try {
    target_.create(0);
    ADD_FAILURE() << "an empty region was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
}

TEST_P(TargetSuite, EraseRemovesTheRegionAndItsSpaceIsReused) {
  const auto data = pattern(1 << 20, 8);
  std::vector<RegionId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(target_.create_write_persist(data));
  const TargetInfo before = server_.provider->targets().front();
  EXPECT_EQ(before.regions, 4u);
  for (RegionId id : ids) target_.erase(id);
  EXPECT_THROW(target_.get_size(ids[0]), Error);
  const TargetInfo after = server_.provider->targets().front();
  EXPECT_EQ(after.regions, 0u);
  EXPECT_EQ(after.used_bytes, 0u);
  // Twice as many regions of 1 MiB as fit at once in an 8 MiB target: only reuse allows it.
  for (int i = 0; i < 16; ++i) target_.erase(target_.create_write_persist(data));
  const RegionId last = target_.create_write_persist(data);
  std::vector<std::byte> back(data.size());
  target_.read(last, 0, back);
  EXPECT_EQ(checksum(back), checksum(data));
  EXPECT_NE(last, ids[0]);  // ids are never handed out twice
}

TEST_P(TargetSuite, ConcurrentClientsWriteAndReadDistinctRegions) {
  constexpr int kWriters = 4;
  std::vector<RegionId> ids(kWriters);
  std::vector<std::vector<std::byte>> data;
  for (int i = 0; i < kWriters; ++i) data.push_back(pattern(600000 + i * 1000, 10 + i));
  std::vector<thread::Ult> ults;
  for (int i = 0; i < kWriters; ++i) {
    ults.push_back(server_.client_engine.rpc_pool().spawn(
        [&, i] { ids[i] = target_.create_write_persist(data[i]); }));
  }
  for (auto& ult : ults) ult.join();
  // Reads at once too: more chunks in flight than the provider has staging buffers.
  std::vector<std::vector<std::byte>> back(kWriters);
  ults.clear();
  for (int i = 0; i < kWriters; ++i) {
    back[i].resize(data[i].size());
    ults.push_back(
        server_.client_engine.rpc_pool().spawn([&, i] { target_.read(ids[i], 0, back[i]); }));
  }
  for (auto& ult : ults) ult.join();
  for (int i = 0; i < kWriters; ++i) {
    EXPECT_EQ(checksum(back[i]), checksum(data[i])) << "reader " << i;
  }
}

TEST_P(TargetSuite, BulkHandlesTooSmallOrWithoutAccessAreRefused) {
  const auto data = pattern(100000, 30);
  const RegionId id = target_.create_write_persist(data);
  std::vector<std::byte> memory(50000);
  const Bulk small = server_.client_engine.expose(memory, rpc::Access::kReadWrite);
  try {
    target_.write(id, 0, small, 0, 60000);
    FAIL() << "a write from a bulk smaller than its size succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  EXPECT_THROW(target_.read(id, 0, small, 10, 50000), Error);
  const Bulk read_only = server_.client_engine.expose(memory, rpc::Access::kReadOnly);
  try {
    target_.read(id, 0, read_only, 0, 50000);
    FAIL() << "a read into read-only memory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTransferFailed) << e.what();
  }
  std::vector<std::byte> back(data.size());
  target_.read(id, 0, back);
  EXPECT_EQ(back, data);  // nothing changed, and the provider still serves
}

TEST_P(TargetSuite, RegionIdsPrintAndParse) {
  const RegionId id = target_.create(10);
  EXPECT_EQ(RegionId::from_string(id.to_string()), id);
  EXPECT_FALSE(RegionId::from_string("r-").has_value());
  EXPECT_FALSE(RegionId::from_string("x-12").has_value());
  EXPECT_FALSE(RegionId{}.valid());
}

TEST_P(TargetSuite, MigrateCopiesToAnotherProviderThenErasesHere) {
  rpc::Engine other_engine(server_on_own_thread());
  Provider other(other_engine, 9,
                 ProviderOptions{.targets = {target_config("memory", dir_.path(), "dest")}});
  const Target there = server_.client.open(other_engine.address(), 9, "dest");
  const auto one = pattern(3 << 20, 20);
  const auto two = pattern(1000, 21);
  const RegionId a = target_.create_write_persist(one);
  const RegionId b = target_.create_write_persist(two);
  const RegionId moved = target_.migrate(a, there);
  EXPECT_THROW(target_.get_size(a), Error);
  std::vector<std::byte> back(one.size());
  there.read(moved, 0, back);
  EXPECT_EQ(checksum(back), checksum(one));
  const auto all = target_.migrate_all(there);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].first, b);
  back.resize(two.size());
  there.read(all[0].second, 0, back);
  EXPECT_EQ(back, two);
  EXPECT_EQ(server_.provider->targets().front().regions, 0u);
}

INSTANTIATE_TEST_SUITE_P(RegisteredTargets, TargetSuite,
                         ::testing::ValuesIn(example_target_names()),
                         [](const auto& info) { return example_test_name(info.param); });

}  // namespace
}  // namespace dango::blob
