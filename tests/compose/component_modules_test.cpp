// The component modules in real dango-daemon processes: kv and blob data written through the
// components' clients survives a clean stop and restart (stop() closes the stores), a provider
// removed at run time releases its store so that it can be added again, a component config that
// turns out unusable at run time is rejected with its key path, and a script provider runs
// scripts without a script's exit or endless loop ending or holding up the daemon.

#include "compose_test_util.hpp"
#include "dango/dango.hpp"
#include "dango/services/blob/client.hpp"
#include "dango/services/kv/client.hpp"
#include "dango/services/script/client.hpp"

namespace dango::compose {
namespace {

using namespace testing;

nlohmann::json kv_provider(const std::string& dir) {
  return {{"name", "meta"},
          {"type", "kv"},
          {"provider_id", 1},
          {"config",
           {{"databases",
             {{{"name", "meta"}, {"type", "rocksdb"}, {"config", {{"path", dir + "/meta"}}}}}}}}};
}

nlohmann::json blob_provider(const std::string& dir) {
  return {
      {"name", "data"},
      {"type", "blob"},
      {"provider_id", 2},
      {"config",
       {{"target",
         {{"name", "data"}, {"type", "file"}, {"path", dir + "/data"}, {"capacity", 16 << 20}}}}}};
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

class ComponentModules : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& program : {bin("dango-daemon"), bin("dango-ctl")}) {
      if (::access(program.c_str(), X_OK) != 0) GTEST_SKIP() << program << " is not built";
    }
  }
  TempDir dir_;
};

TEST_F(ComponentModules, KvAndBlobDataSurviveAShutdownAndRestartOfTheDaemon) {
  const nlohmann::json config = {
      {"providers", {kv_provider(dir_.path().string()), blob_provider(dir_.path().string())}}};
  const std::string blob(100000, 'x');  // above the inline threshold: a bulk transfer
  std::string region_text;
  {
    Daemon first(dir_, "first", config);
    Engine client{"tcp"};
    auto db = kv::Client{client}.open(first.address(), 1, "meta");
    auto target = blob::Client{client}.open(first.address(), 2, "data");
    region_text = target.create_write_persist(bytes_of(blob)).to_string();
    db.put("blob", region_text);
    db.put("answer", "42");
    auto shutdown = ctl(dir_, {"shutdown", first.address()});
    ASSERT_EQ(shutdown.code, 0) << shutdown.err;
    ASSERT_EQ(first.process().wait_exit(), 0) << first.process().err();
  }
  Daemon second(dir_, "second", config);
  Engine client{"tcp"};
  auto db = kv::Client{client}.open(second.address(), 1, "meta");
  EXPECT_EQ(db.get("answer"), "42");
  ASSERT_EQ(db.get("blob"), region_text);
  auto target = blob::Client{client}.open(second.address(), 2, "data");
  std::string read(blob.size(), '\0');
  target.read(blob::RegionId::from_string(region_text).value(), 0,
              std::as_writable_bytes(std::span(read)));
  EXPECT_EQ(read, blob);
  // The effective configs show the backends' options with their defaults.
  auto query = nlohmann::json::parse(ctl(dir_, {"query", second.address()}).out);
  EXPECT_EQ(query["providers"][0]["config"]["databases"][0]["config"]["path"], dir_.file("meta"));
  EXPECT_EQ(query["providers"][1]["config"]["targets"][0]["capacity"], 16 << 20);
}

TEST_F(ComponentModules, RemovedKvProviderReleasesItsStoreAndCanBeAddedBack) {
  Daemon daemon(dir_, "live", {{"providers", {kv_provider(dir_.path().string())}}});
  Engine client{"tcp"};
  kv::Client{client}.open(daemon.address(), 1, "meta").put("kept", "yes");
  auto remove = ctl(dir_, {"remove-provider", daemon.address(), "meta"});
  ASSERT_EQ(remove.code, 0) << remove.err;
  // RocksDB locks its directory while open: adding it again works only if it was closed.
  auto add =
      ctl(dir_, {"add-provider", daemon.address(), kv_provider(dir_.path().string()).dump()});
  ASSERT_EQ(add.code, 0) << add.err;
  EXPECT_EQ(kv::Client{client}.open(daemon.address(), 1, "meta").get("kept"), "yes");
}

TEST_F(ComponentModules, UnusableComponentConfigAddedAtRunTimeIsRejectedWithItsKeyPath) {
  Daemon daemon(dir_, "live", {{"providers", nlohmann::json::array()}});
  nlohmann::json bad = kv_provider(dir_.path().string());
  bad["config"]["databases"][0]["config"].erase("path");
  auto add = ctl(dir_, {"add-provider", daemon.address(), bad.dump()});
  EXPECT_EQ(add.code, 2);
  EXPECT_NE(add.err.find("provider.config.databases[0].config.path: missing required key"),
            std::string::npos)
      << add.err;
  nlohmann::json unknown_type = blob_provider(dir_.path().string());
  unknown_type["config"]["target"]["type"] = "tape";
  auto add_blob = ctl(dir_, {"add-provider", daemon.address(), unknown_type.dump()});
  EXPECT_EQ(add_blob.code, 2);
  EXPECT_NE(add_blob.err.find("provider.config.target.type: unknown target type \"tape\""),
            std::string::npos)
      << add_blob.err;
  auto list = ctl(dir_, {"list-providers", daemon.address()});
  EXPECT_EQ(nlohmann::json::parse(list.out).size(), 0u) << list.out;
}

TEST_F(ComponentModules, ScriptProviderServesOnAfterAScriptExitsOrLoopsForever) {
  const nlohmann::json scripts = {
      {"name", "scripts"},
      {"type", "script"},
      {"provider_id", 4},
      {"config",
       {{"interpreters",
         {{{"name", "main"}, {"language", "lua"}, {"time_limit_ms", 300}}}}}}};
  Daemon daemon(dir_, "live", {{"providers", {scripts}}});
  Engine client{"tcp"};
  auto lua = script::Client{client}.open(daemon.address(), 4, "main");
  lua.execute("kept = 'yes'");
  EXPECT_THROW(lua.execute("os.exit(0)"), script::Error);
  EXPECT_THROW(lua.execute("while true do end"), script::Error);
  EXPECT_EQ(lua.execute("print(kept) return 6 * 7").result, "42");
  auto query = nlohmann::json::parse(ctl(dir_, {"query", daemon.address()}).out);
  EXPECT_EQ(query["providers"][0]["config"]["interpreters"][0]["time_limit_ms"], 300);
  auto shutdown = ctl(dir_, {"shutdown", daemon.address()});
  ASSERT_EQ(shutdown.code, 0) << shutdown.err;
  EXPECT_EQ(daemon.process().wait_exit(), 0) << daemon.process().err();
}

}  // namespace
}  // namespace dango::compose
