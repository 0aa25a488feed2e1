// kv::Provider: configuration from JSON (errors name the key), the effective config, run-time
// administration through kv::Admin, persistence across provider restarts, and stores that
// cannot be used (unusable path, corrupt files) giving clear errors while the provider serves on.

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "kv_test_util.hpp"

namespace dango::kv {
namespace {

using namespace testing;
using nlohmann::json;

std::string config_error(const json& config) {
  try {
    ProviderOptions::from_json(config);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(KvProviderOptions, ReadsDatabasesAndLimitsFromJson) {
  auto options = ProviderOptions::from_json(json::parse(R"({
    "databases": [{"name": "meta", "type": "map"}, {"name": "h", "type": "unordered_map"}],
    "max_key_size": 100, "max_value_size": 1000, "inline_limit": 512, "max_list_reply": 4096})"));
  ASSERT_EQ(options.databases.size(), 2u);
  EXPECT_EQ(options.databases[1].name, "h");
  EXPECT_EQ(options.databases[1].type, "unordered_map");
  EXPECT_EQ(options.max_key_size, 100u);
  EXPECT_EQ(options.inline_limit, 512u);
  EXPECT_EQ(ProviderOptions::from_json(options.to_json()).to_json(), options.to_json());
}

TEST(KvProviderOptions, UnknownKeysAndWrongTypesNameTheKeyPath) {
  EXPECT_EQ(config_error(json{{"bogus", 1}}), "bogus: unknown key");
  EXPECT_EQ(config_error(json::parse(R"({"databases": [{"name": "a", "colour": "red"}]})")),
            "databases[0].colour: unknown key");
  EXPECT_EQ(config_error(json::parse(R"({"databases": [{"type": "map"}]})")),
            "databases[0].name: missing required key");
  EXPECT_NE(config_error(json{{"max_key_size", "big"}}).find("max_key_size: expected an unsigned"),
            std::string::npos);
}

TEST(KvProviderOptions, ASingleDatabaseTakesItsBackendOptionsNextToItsType) {
  auto options = ProviderOptions::from_json(
      json::parse(R"({"database": {"type": "rocksdb", "path": "/tmp/x", "sync": true}})"));
  ASSERT_EQ(options.databases.size(), 1u);
  EXPECT_EQ(options.databases[0].name, "default");
  EXPECT_EQ(options.databases[0].type, "rocksdb");
  EXPECT_EQ(options.databases[0].config, json::parse(R"({"path": "/tmp/x", "sync": true})"));
  EXPECT_EQ(options.databases[0].config_path, "database");
  auto named = ProviderOptions::from_json(
      json::parse(R"({"databases": [{"name": "a"}], "database": {"name": "b"}})"));
  ASSERT_EQ(named.databases.size(), 2u);
  EXPECT_EQ(named.databases[1].name, "b");
  EXPECT_EQ(named.databases[1].type, "map");
  EXPECT_EQ(config_error(json::parse(R"({"databases": [{"name": "default"}], "database": {}})")),
            "database.name: database \"default\" is also listed in \"databases\"");
  EXPECT_EQ(config_error(json::parse(R"({"database": {"name": ""}})")),
            "database.name: must not be empty");
}

TEST(KvProvider, ASingleDatabasesBackendErrorsNameTheKeysAsWritten) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  try {
    Provider provider(engine, 1,
                      ProviderOptions::from_json(json::parse(R"({"database": {"colour": 1}})")));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "database.colour: unknown key");
  }
}

TEST(KvProvider, UnknownBackendTypeIsAnErrorListingTheAvailableOnes) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  std::string message;
  EXPECT_EQ(
      error_code_of([&] { Provider p(engine, 1, {.databases = {{.name = "x", .type = "rocks"}}}); },
                    &message),
      ErrorCode::UnknownBackend);
  EXPECT_NE(message.find("\"rocks\""), std::string::npos) << message;
  EXPECT_NE(message.find("map"), std::string::npos) << message;
}

TEST(KvProvider, DuplicateDatabaseNamesAreAConfigError) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  try {
    Provider p(engine, 1, {.databases = {{.name = "x"}, {.name = "x"}}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("databases[1].name"), std::string::npos) << e.what();
  }
}

class KvBackendConfig : public ::testing::TestWithParam<std::string> {
 protected:
  TempDir dir_;
};

TEST_P(KvBackendConfig, UnknownBackendOptionNamesItsKeyPath) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  DatabaseConfig config = database_config("db", GetParam(), dir_.path());
  config.config["no_such_option"] = true;
  try {
    Provider p(engine, 1, {.databases = {config}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "databases[0].config.no_such_option: unknown key");
  }
}

TEST_P(KvBackendConfig, EffectiveConfigReportsEveryOptionWithDefaults) {
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  Provider provider(engine, 1, {.databases = {database_config("db", GetParam(), dir_.path())}});
  json effective = provider.config();
  ASSERT_EQ(effective["databases"].size(), 1u);
  EXPECT_EQ(effective["databases"][0]["type"], GetParam());
  EXPECT_EQ(effective["inline_limit"], 16384);
  if (describe(GetParam()).persistent) {
    EXPECT_EQ(effective["databases"][0]["config"]["path"], (dir_.path() / "db").string());
    EXPECT_TRUE(effective["databases"][0]["config"].contains("sync"));
  }
}

TEST_P(KvBackendConfig, PersistentStoresKeepTheirDataAcrossProviderRestarts) {
  if (!describe(GetParam()).persistent) GTEST_SKIP() << "in-memory backend";
  const DatabaseConfig config = database_config("db", GetParam(), dir_.path());
  {
    rpc::Engine engine{"tcp://127.0.0.1:0"};
    Provider provider(engine, 1, {.databases = {config}});
    Database db = Client{engine}.open(engine.self(), 1, "db");
    db.put("kept", "across restarts");
    db.put_multi(std::vector<std::string>{"a", "b"}, std::vector<std::string>{"1", "2"});
  }
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  Provider provider(engine, 1, {.databases = {config}});
  Database db = Client{engine}.open(engine.self(), 1, "db");
  EXPECT_EQ(db.get("kept"), "across restarts");
  EXPECT_EQ(db.count(), 3u);
}

TEST_P(KvBackendConfig, UnusablePathIsAnIoErrorAndTheProviderServesOn) {
  if (!describe(GetParam()).persistent) GTEST_SKIP() << "in-memory backend";
  rpc::Engine server{"tcp://127.0.0.1:0"};
  Provider provider(server, 1, {.databases = {{.name = "ok", .type = "map"}}});
  std::ofstream(dir_.path() / "a-file") << "not a directory";
  rpc::Engine client{"tcp"};
  Admin admin{client};
  DatabaseConfig bad{.name = "bad",
                     .type = GetParam(),
                     .config = {{"path", (dir_.path() / "a-file" / "db").string()}}};
  std::string message;
  EXPECT_EQ(error_code_of([&] { admin.create_database(server.address(), 1, bad); }, &message),
            ErrorCode::IoError);
  EXPECT_NE(message.find("a-file"), std::string::npos) << message;
  Database ok = Client{client}.open(server.address(), 1, "ok");
  ok.put("still", "serving");
  EXPECT_EQ(ok.get("still"), "serving");
}

TEST_P(KvBackendConfig, CorruptStoreIsAClearErrorAndTheProviderServesOn) {
  if (!describe(GetParam()).persistent) GTEST_SKIP() << "in-memory backend";
  const DatabaseConfig config = database_config("db", GetParam(), dir_.path());
  {
    rpc::Engine engine{"tcp://127.0.0.1:0"};
    Provider provider(engine, 1, {.databases = {config}});
    Client{engine}.open(engine.self(), 1, "db").put("k", "v");
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "db")) {
    if (!entry.is_regular_file() || entry.path().filename() == "LOCK" ||
        entry.path().filename() == "lock.mdb" || entry.path().filename() == "LOG") {
      continue;
    }
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const std::string garbage(4096, '\xab');
    f.write(garbage.data(), garbage.size());
  }
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  Provider provider(engine, 1, {.databases = {{.name = "ok", .type = "map"}}});
  std::string message;
  const ErrorCode code = error_code_of([&] { provider.open_database(config); }, &message);
  EXPECT_TRUE(code == ErrorCode::Corruption || code == ErrorCode::IoError)
      << to_string(code) << ": " << message;
  EXPECT_NE(message.find("\"db\""), std::string::npos) << message;
  Database ok = Client{engine}.open(engine.self(), 1, "ok");
  ok.put("still", "serving");
  EXPECT_EQ(ok.get("still"), "serving");
}

TEST(KvLmdb, AFullMapIsAnIoErrorNamingMapSizeAndTheStoreServesOn) {
  TempDir dir;
  rpc::Engine engine{"tcp://127.0.0.1:0"};
  Provider provider(engine, 1,
                    {.databases = {{.name = "small",
                                    .type = "lmdb",
                                    .config = {{"path", (dir.path() / "small").string()},
                                               {"map_size", size_t{1} << 20},
                                               {"sync", false}}}}});
  Database db = Client{engine}.open(engine.self(), 1, "small");
  db.put("before", "full");
  std::string message;
  EXPECT_EQ(error_code_of([&] { db.put("huge", std::string(4 << 20, 'x')); }, &message),
            ErrorCode::IoError);
  EXPECT_NE(message.find("map_size"), std::string::npos) << message;
  EXPECT_EQ(db.get("before"), "full");
  EXPECT_EQ(db.get("huge"), std::nullopt);
}

INSTANTIATE_TEST_SUITE_P(Backends, KvBackendConfig, ::testing::ValuesIn(backend_names()),
                         [](const auto& info) { return info.param; });

class KvAdmin : public ::testing::Test {
 protected:
  TempDir dir_;
  rpc::Engine server_{"tcp://127.0.0.1:0"};
  Provider provider_{server_, 3, {.databases = {{.name = "configured", .type = "map"}}}};
  rpc::Engine client_{"tcp"};
  Admin admin_{client_};
};

TEST_F(KvAdmin, CreatesListsClosesAndDestroysDatabasesAtRunTime) {
  const std::string address = server_.address();
  for (const auto& backend : available_backends()) {
    admin_.create_database(address, 3,
                           database_config("new-" + backend.name, backend.name, dir_.path()));
  }
  auto listed = admin_.list_databases(address, 3);
  EXPECT_EQ(listed.size(), available_backends().size() + 1);
  EXPECT_EQ(listed.front(), (DatabaseInfo{"configured", "map"}));

  for (const auto& backend : available_backends()) {
    const std::string name = "new-" + backend.name;
    Database db = Client{client_}.open(address, 3, name);
    db.put("k", "v");
    admin_.destroy_database(address, 3, name);
    EXPECT_EQ(error_code_of([&] { db.get("k"); }), ErrorCode::UnknownDatabase) << name;
    EXPECT_EQ(error_code_of([&] { Client{client_}.open(address, 3, name); }),
              ErrorCode::UnknownDatabase);
    if (backend.persistent) {
      EXPECT_FALSE(std::filesystem::exists(dir_.path() / name)) << name << ": files left behind";
    }
  }
  EXPECT_EQ(admin_.list_databases(address, 3), (std::vector<DatabaseInfo>{{"configured", "map"}}));
}

TEST_F(KvAdmin, CloseKeepsDataThatOpenServesAgain) {
  const std::string address = server_.address();
  for (const auto& backend : available_backends()) {
    if (!backend.persistent) continue;
    const DatabaseConfig config = database_config("p-" + backend.name, backend.name, dir_.path());
    admin_.create_database(address, 3, config);
    Client{client_}.open(address, 3, config.name).put("k", "kept");
    admin_.close_database(address, 3, config.name);
    EXPECT_EQ(error_code_of([&] { admin_.create_database(address, 3, config); }),
              ErrorCode::DatabaseExists)
        << backend.name << ": create over existing data must fail";
    admin_.open_database(address, 3, config);
    EXPECT_EQ(Client{client_}.open(address, 3, config.name).get("k"), "kept") << backend.name;
  }
}

TEST_F(KvAdmin, CreatingATakenNameOrAnUnknownTypeFailsClearly) {
  const std::string address = server_.address();
  std::string message;
  EXPECT_EQ(
      error_code_of([&] { admin_.create_database(address, 3, {.name = "configured"}); }, &message),
      ErrorCode::DatabaseExists);
  EXPECT_NE(message.find("\"configured\""), std::string::npos) << message;
  EXPECT_EQ(
      error_code_of([&] { admin_.create_database(address, 3, {.name = "x", .type = "nope"}); }),
      ErrorCode::UnknownBackend);
  EXPECT_EQ(error_code_of(
                [&] {
                  admin_.create_database(address, 3, {.name = "x", .config = {{"bogus", 1}}});
                },
                &message),
            ErrorCode::InvalidArgument);
  EXPECT_NE(message.find("config.bogus: unknown key"), std::string::npos) << message;
  EXPECT_EQ(error_code_of([&] { admin_.destroy_database(address, 3, "never"); }),
            ErrorCode::UnknownDatabase);
}

TEST_F(KvAdmin, OpeningAnUnknownDatabaseOrProviderFailsClearly) {
  std::string message;
  EXPECT_EQ(error_code_of([&] { Client{client_}.open(server_.address(), 3, "nope"); }, &message),
            ErrorCode::UnknownDatabase);
  EXPECT_NE(message.find("\"nope\""), std::string::npos) << message;
  EXPECT_THROW(Client{client_}.open(server_.address(), 9, "configured"), RemoteError);
}

TEST(KvInlineLimits, TinyInlineLimitsSendEveryValueAndBatchByBulkAndLoseNothing) {
  for (const auto& backend : available_backends()) {
    TempDir dir;
    Deployment d(backend.name, /*in_process=*/false, dir.path(),
                 {.inline_limit = 32, .max_list_reply = 64});
    Database db = d.open("db", {.inline_limit = 32});
    std::vector<std::string> keys, values;
    for (int i = 0; i < 50; ++i) {
      keys.push_back("key/" + std::to_string(100 + i));
      values.push_back(std::string(40 + i, static_cast<char>('a' + i % 26)));
    }
    db.put_multi(keys, values);
    db.put("single", std::string(100, 's'));
    EXPECT_EQ(db.get("single"), std::string(100, 's')) << backend.name;
    auto got = db.get_multi(keys);
    for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(got[i], values[i]) << backend.name;
    EXPECT_EQ(db.get("single", {.consume = true}), std::string(100, 's')) << backend.name;
    EXPECT_FALSE(db.exists("single"));
    if (!backend.ordered) continue;
    // Pages are cut by max_list_reply (64 bytes) long before max: still nothing skipped.
    std::vector<std::string> listed;
    ListOptions options{.prefix = "key/"};
    for (auto page = db.list_keyvals(options); !page.empty(); page = db.list_keyvals(options)) {
      for (const auto& kv : page) listed.push_back(kv.key);
      options.start = page.back().key;
      options.inclusive = false;
    }
    EXPECT_EQ(listed, keys) << backend.name;
  }
}

TEST(KvInlineLimits, PutBatchesOfSmallValuesCrossBothPutLimitsAndLoseNothing) {
  // Values under inline_limit: a batch up to put_inline_limit travels in the message, a bigger
  // one by bulk; a single larger value sends its batch by bulk whatever the total.
  TempDir dir;
  Deployment d("map", /*in_process=*/false, dir.path(), {});
  Database db = d.open("db", {.inline_limit = 32, .put_inline_limit = 512});
  for (size_t count : {5, 20, 60}) {
    std::vector<std::string> keys, values;
    for (size_t i = 0; i < count; ++i) {
      keys.push_back("n" + std::to_string(count) + "/" + std::to_string(i));
      values.push_back(std::string(10 + i % 20, static_cast<char>('a' + i % 26)));
    }
    if (count == 60) values[7] = std::string(100, 'L');  // over inline_limit
    db.put_multi(keys, values);
    const auto got = db.get_multi(keys);
    for (size_t i = 0; i < count; ++i) ASSERT_EQ(got[i], values[i]) << count << " values, #" << i;
  }
}

TEST(KvErrors, KvErrorsAreDangoErrorsWithACode) {
  Error e(ErrorCode::KeyExists, "key \"k\" already exists");
  const dango::Error& base = e;
  EXPECT_STREQ(base.what(), "key \"k\" already exists");
  EXPECT_EQ(e.code(), ErrorCode::KeyExists);
  EXPECT_EQ(to_string(ErrorCode::Unsupported), "Unsupported");
}

}  // namespace
}  // namespace dango::kv
