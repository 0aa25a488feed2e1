// blob::Provider: configuration (errors name the key), targets created, listed and destroyed at
// run time, and the errors of unknown targets.

#include <gtest/gtest.h>

#include "blob_test_util.hpp"

namespace dango::blob {
namespace {

using namespace testing;

std::string config_error(const nlohmann::json& json) {
  try {
    ProviderOptions::from_json(json);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(BlobProviderOptions, ReadsTargetsAndDefaults) {
  const auto options = ProviderOptions::from_json(nlohmann::json::parse(R"({
      "targets": [{"name": "a", "type": "memory"},
                  {"name": "b", "type": "file", "path": "/tmp/x", "capacity": 8192}],
      "staging": {"buffers": 2}})"));
  ASSERT_EQ(options.targets.size(), 2u);
  EXPECT_EQ(options.targets[1].config["path"], "/tmp/x");
  EXPECT_EQ(options.staging.buffers, 2u);
  EXPECT_EQ(options.inline_threshold, ProviderOptions{}.inline_threshold);
  EXPECT_EQ(ProviderOptions::from_json(options.to_json()).to_json(), options.to_json());
  const auto single = ProviderOptions::from_json({{"target", {{"type", "memory"}}}});
  EXPECT_EQ(single.targets.at(0).name, "default");
}

TEST(BlobProviderOptions, ErrorsNameTheKey) {
  EXPECT_NE(config_error({{"targets", {{{"name", "a"}}}}}).find("targets[0].type"),
            std::string::npos);
  EXPECT_NE(config_error({{"inline_threshold", "big"}}).find("inline_threshold"),
            std::string::npos);
  EXPECT_NE(config_error({{"staging", {{"buffers", 0}}}}).find("staging.buffers"),
            std::string::npos);
  EXPECT_NE(config_error({{"staging", {{"pipeline_depth", 9}}}}).find("staging.pipeline_depth"),
            std::string::npos);
  EXPECT_NE(config_error({{"colour", 1}}).find("colour"), std::string::npos);
}

TEST(BlobProvider, BadTargetsAreRefusedNamingTheKey) {
  TempDir dir;
  rpc::Engine engine(server_on_own_thread());
  try {
    Provider p(engine, 1, ProviderOptions{.targets = {{.name = "x", .type = "rocks"}}});
    FAIL() << "an unknown type was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnknownTargetType);
    EXPECT_NE(std::string(e.what()).find("targets[0].type"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("memory"), std::string::npos) << e.what();
  }
  try {
    Provider p(
        engine, 1,
        ProviderOptions{
            .targets = {{.name = "f", .type = "file", .config = {{"path", "/x"}, {"speed", 3}}}}});
    FAIL() << "an unknown key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("targets[0].speed"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Provider(engine, 1,
                        ProviderOptions{.targets = {{.name = "m", .type = "memory"},
                                                    {.name = "m", .type = "memory"}}}),
               ConfigError);
}

TEST(BlobProvider, TargetsAreCreatedListedAndDestroyedAtRunTime) {
  TempDir dir;
  BlobServer server{ProviderOptions{}};
  const std::string address = server.server.address();
  EXPECT_TRUE(server.client.list_targets(address, kProviderId).empty());
  server.client.create_target(address, kProviderId, {.name = "ram", .type = "memory"});
  server.client.create_target(address, kProviderId, target_config("file", dir.path(), "disk"));
  const auto targets = server.client.list_targets(address, kProviderId);
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].name, "disk");
  EXPECT_EQ(targets[0].type, "file");
  EXPECT_EQ(targets[0].capacity, 64u << 20);
  EXPECT_EQ(targets[0].free_bytes, 64u << 20);
  EXPECT_NE(targets[0].config.find("io_engine"), std::string::npos);
  EXPECT_EQ(targets[1].name, "ram");
  try {
    server.client.create_target(address, kProviderId, {.name = "ram", .type = "memory"});
    FAIL() << "a duplicate target was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTargetExists);
  }
  const Target disk = server.open("disk");
  disk.create_write_persist(pattern(10000, 1));
  server.client.destroy_target(address, kProviderId, "disk");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "disk" / "blob-target"));
  try {
    disk.get_size(RegionId::from_number(1));
    FAIL() << "a destroyed target answered";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnknownTarget);
  }
  EXPECT_THROW(server.client.destroy_target(address, kProviderId, "disk"), Error);
  EXPECT_EQ(server.client.list_targets(address, kProviderId).size(), 1u);
}

TEST(BlobProvider, AMemoryTargetWithACapacityRefusesWhatDoesNotFit) {
  BlobServer server{ProviderOptions{
      .targets = {{.name = "m", .type = "memory", .config = {{"capacity", uint64_t{10000}}}}}}};
  const Target target = server.open("m");
  const RegionId a = target.create(6000);
  try {
    target.create(6000);
    FAIL() << "a region past the capacity was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNoSpace);
  }
  target.erase(a);
  target.create(10000);
  EXPECT_EQ(server.provider->targets().front().free_bytes, 0u);
}

TEST(BlobProvider, OpeningAnUnknownTargetFailsNamingIt) {
  BlobServer server{ProviderOptions{.targets = {{.name = "a", .type = "memory"}}}};
  try {
    server.open("nope");
    FAIL() << "an unknown target opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnknownTarget);
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

TEST(BlobProvider, BadTargetConfigSentByRpcIsAnInvalidArgument) {
  BlobServer server{ProviderOptions{}};
  try {
    server.client.create_target(server.server.address(), kProviderId,
                                {.name = "f", .type = "file", .config = {{"capacity", 4096}}});
    FAIL() << "a file target without a path was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("target.path"), std::string::npos) << e.what();
  }
}

TEST(BlobProvider, EffectiveConfigListsTargetsWithDefaults) {
  BlobServer server{ProviderOptions{.targets = {{.name = "a", .type = "memory"}}}};
  const nlohmann::json config = server.provider->config();
  EXPECT_EQ(config["targets"][0]["name"], "a");
  EXPECT_EQ(config["staging"]["buffers"], 8);
}

TEST(BlobProvider, CallsToAProviderOfTheSameEngineWork) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  Provider provider(engine, 3, ProviderOptions{.targets = {{.name = "m", .type = "memory"}}});
  Client client(engine);
  const Target target = client.open(engine.address(), 3, "m");
  const auto data = pattern(1 << 20, 9);
  const RegionId id = target.create_write_persist(data);
  std::vector<std::byte> back(data.size());
  target.read(id, 0, back);
  EXPECT_EQ(back, data);
}

}  // namespace
}  // namespace dango::blob
