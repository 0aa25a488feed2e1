// Real processes: a file target (each layout) served by tools/dango-blob-server is killed with
// SIGKILL right after persist returns; after a restart every persisted region reads back byte for
// byte and the allocator accounts for every extent exactly once. The server also stops cleanly
// on SIGTERM and refuses a bad config with a message naming the key.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "blob_test_util.hpp"

namespace dango::blob {
namespace {

using namespace testing;

// The server program with a file target made from example `example` ("file" unless given).
class BlobServerProgramBase {
 protected:
  bool built() const { return ::access(blob_server_path().c_str(), X_OK) == 0; }
  nlohmann::json config(const std::string& example = "file") {
    return ProviderOptions{.targets = {target_config(example, dir_.path(), "main",
                                                     {{"capacity", uint64_t{32} << 20}})},
                           .staging = {.buffer_size = 1 << 20, .buffers = 4}}
        .to_json();
  }
  TempDir dir_;
};

class BlobServerProgram : public ::testing::Test, protected BlobServerProgramBase {
 protected:
  void SetUp() override {
    if (!built()) GTEST_SKIP() << blob_server_path() << " is not built (target dango-blob-server)";
  }
};

// Run on each example configuration of the file target (its layouts: one file, a directory).
class CrashedFileTarget : public ::testing::TestWithParam<std::string>,
                          protected BlobServerProgramBase {
 protected:
  void SetUp() override {
    if (!built()) GTEST_SKIP() << blob_server_path() << " is not built (target dango-blob-server)";
  }
  nlohmann::json config() { return BlobServerProgramBase::config(GetParam()); }
};

TEST_P(CrashedFileTarget, PersistedRegionsSurviveSigkillByteForByte) {
  struct Kept {
    RegionId id;
    uint64_t size;
    uint64_t sum;
  };
  std::vector<Kept> kept;
  std::mt19937 random(7);
  {
    BlobServerProcess server(dir_.path(), config());
    ASSERT_FALSE(server.address.empty());
    rpc::Engine engine{"tcp"};
    const Target target = Client(engine).open(server.address, kProviderId, "main");
    for (int i = 0; i < 24; ++i) {
      const uint64_t size = 1 + random() % (3 << 20);
      const auto data = pattern(size, static_cast<uint8_t>(i));
      RegionId id;
      if (i % 2 == 0) {
        id = target.create_write_persist(data);
      } else {
        id = target.create(size);
        target.write(id, 0, data);
        target.persist(id, 0, size);
      }
      kept.push_back({id, size, checksum(data)});
      if (i % 5 == 4) {  // some erased: their space must come back, not leak
        target.erase(kept.front().id);
        kept.erase(kept.begin());
      }
    }
    // Written but never persisted: may or may not survive, must not break anything.
    target.create(4096);
    server.process->kill(SIGKILL);  // right after the last persist returned
    const auto status = server.process->wait_exit(10s);
    ASSERT_TRUE(status && WIFSIGNALED(*status));
  }
  BlobServerProcess server(dir_.path(), config(), "restarted");
  ASSERT_FALSE(server.address.empty());
  rpc::Engine engine{"tcp"};
  Client client(engine);
  const Target target = client.open(server.address, kProviderId, "main");
  uint64_t used = 0;
  for (const Kept& region : kept) {
    ASSERT_EQ(target.get_size(region.id), region.size);
    std::vector<std::byte> back(region.size);
    target.read(region.id, 0, back);
    EXPECT_EQ(checksum(back), region.sum) << region.id.to_string();
    used += (region.size + 4095) / 4096 * 4096;
  }
  const TargetInfo info = client.list_targets(server.address, kProviderId).front();
  EXPECT_GE(info.regions, kept.size());
  EXPECT_LE(info.regions, kept.size() + 1);  // the unpersisted region, if its record landed
  const uint64_t unpersisted = info.regions > kept.size() ? 4096 : 0;
  EXPECT_EQ(info.used_bytes, used + unpersisted);  // nothing leaked
  EXPECT_EQ(info.used_bytes + info.free_bytes, info.capacity);
  // Filling the rest works: no extent is handed out twice over live data.
  std::vector<RegionId> fillers;
  try {
    for (;;) fillers.push_back(target.create_write_persist(pattern(1 << 20, 99)));
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNoSpace) << e.what();
  }
  for (const Kept& region : kept) {
    std::vector<std::byte> back(region.size);
    target.read(region.id, 0, back);
    EXPECT_EQ(checksum(back), region.sum) << region.id.to_string() << " after filling";
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, CrashedFileTarget, ::testing::ValuesIn(examples_of_type("file")),
                         [](const auto& info) { return example_test_name(info.param); });

TEST_F(BlobServerProgram, StopsCleanlyOnSigterm) {
  BlobServerProcess server(dir_.path(), config());
  ASSERT_FALSE(server.address.empty());
  server.process->kill(SIGTERM);
  const auto status = server.process->wait_exit(20s);
  ASSERT_TRUE(status.has_value()) << "the server ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(BlobServerProgram, ABadConfigEndsTheServerWithAMessage) {
  const std::string config_file = (dir_.path() / "bad.json").string();
  std::ofstream(config_file) << R"({"targets": [{"type": "file"}]})";
  const std::string log = (dir_.path() / "stderr.txt").string();
  dango::testing::ChildPid server = dango::testing::ChildPid::exec(
      blob_server_path(), {"--config", config_file},
      [&] { std::freopen(log.c_str(), "w", stderr); });
  const auto status = server.wait_for(20s);
  ASSERT_TRUE(status.has_value()) << "the server did not end";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("targets[0].path"), std::string::npos) << text;
}

}  // namespace
}  // namespace dango::blob
