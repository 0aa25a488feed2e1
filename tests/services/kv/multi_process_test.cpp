// Real processes: build/bin/dango-kv-server serves the databases; the tests kill it with SIGKILL
// after acknowledged synced writes and check every write after a restart, and drive it from 8
// forked client processes at once, checking afterwards every write they had acknowledged.
// Every server is stopped by an RAII guard (SIGKILL and reap), even when a test fails.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kv_test_util.hpp"

namespace dango::kv {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using nlohmann::json;
using rpc::testing::ChildProcess;
using rpc::testing::eventually;

std::string server_path() { return std::string(DANGO_BIN_DIR) + "/dango-kv-server"; }

// A dango-kv-server process serving `config`, its address known once constructed.
class KvServer {
 public:
  KvServer(const std::filesystem::path& dir, const std::string& name, const json& config)
      : config_file_((dir / (name + ".json")).string()),
        address_file_((dir / (name + ".address")).string()) {
    std::ofstream(config_file_) << config.dump();
    process_.emplace(server_path(),
                     std::vector<std::string>{"--config", config_file_, "--address-file",
                                              address_file_, "--stop-with-parent"});
    const bool ready = eventually([&] { return std::filesystem::exists(address_file_); }, 20000ms);
    EXPECT_TRUE(ready) << "dango-kv-server wrote no address to " << address_file_;
    if (ready) std::getline(std::ifstream(address_file_) >> std::ws, address_);
  }
  const std::string& address() const { return address_; }
  ChildProcess& process() { return *process_; }

 private:
  std::string config_file_;
  std::string address_file_;
  std::optional<ChildProcess> process_;
  std::string address_;
};

json server_config(const std::string& type, const std::filesystem::path& dir, bool sync) {
  DatabaseConfig db = database_config("db", type, dir);
  if (describe(type).persistent) db.config["sync"] = sync;
  return {{"databases", json::array({db.to_json()})}};
}

class KvMultiProcess : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::access(server_path().c_str(), X_OK) != 0) {
      GTEST_SKIP() << server_path() << " is not built (target dango-kv-server)";
    }
  }
  TempDir dir_;
};

std::string value_of(const std::string& key) {
  return "value of " + key + std::string(key.size() % 50, '+');
}

TEST_P(KvMultiProcess, AcknowledgedSyncedWritesSurviveSigkillAndRestart) {
  if (!describe(GetParam()).persistent) GTEST_SKIP() << "in-memory backend";
  const json config = server_config(GetParam(), dir_.path(), /*sync=*/true);
  std::vector<std::string> written;
  {
    KvServer server(dir_.path(), "first", config);
    ASSERT_FALSE(server.address().empty());
    rpc::Engine engine{"tcp"};
    Database db = Client{engine, {.timeout = 30s}}.open(server.address(), 1, "db");
    for (int i = 0; i < 100; ++i) {
      written.push_back("single/" + std::to_string(i));
      db.put(written.back(), value_of(written.back()));
    }
    for (int b = 0; b < 5; ++b) {
      std::vector<std::string> keys, values;
      for (int i = 0; i < 40; ++i) {
        keys.push_back("batch/" + std::to_string(b) + "/" + std::to_string(i));
        values.push_back(value_of(keys.back()));
      }
      db.put_multi(keys, values);
      written.insert(written.end(), keys.begin(), keys.end());
    }
    db.put("big", std::string(100000, 'B'));  // through a bulk transfer
    db.erase_multi(std::vector<std::string>{"single/0", "single/1"});
    server.process().kill(SIGKILL);
    ASSERT_TRUE(server.process().wait_exit(20s).has_value());
  }
  KvServer server(dir_.path(), "second", config);
  ASSERT_FALSE(server.address().empty());
  rpc::Engine engine{"tcp"};
  Database db = Client{engine, {.timeout = 30s}}.open(server.address(), 1, "db");
  auto values = db.get_multi(written);
  size_t missing = 0;
  for (size_t i = 2; i < written.size(); ++i) {
    if (values[i] != value_of(written[i])) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "acknowledged writes lost after SIGKILL";
  EXPECT_EQ(values[0], std::nullopt);
  EXPECT_EQ(values[1], std::nullopt);
  EXPECT_EQ(db.length("big"), 100000u);
  EXPECT_EQ(db.count(), written.size() - 2 + 1);
}

// What one client process did, for the parent to check.
struct ClientLog {
  std::map<std::string, std::string> own;  // final values of its own keys (absent = erased)
  uint64_t appended = 0;                   // acknowledged appends of its letter to "shared/log"
  std::vector<std::string> claimed;        // keys it created with NewOnly
};

constexpr int kClients = 8;
// The full run (8 processes x 10,000 mixed operations) on rocksdb; a shorter one (x 1,000) on
// every backend, to keep the suite's time reasonable on a loaded 2-core machine, where one
// round trip to a server sharing the cores with 8 clients costs up to ~2 ms.
constexpr int kFullOpsPerClient = 10000;
constexpr int kShortOpsPerClient = 1000;
constexpr const char* kFullRunBackend = "rocksdb";

// One client process's work: 10,000 mixed operations, reads checked against its own model.
// Returns an empty string on success, else what went wrong.
std::string run_client(const std::string& address, int c, int ops, ClientLog& log) {
  // Nine processes share the machine's cores: a client that kept polling after each reply would
  // take the CPU from the server it waits for, so clients sleep in the kernel at once.
  rpc::Engine engine{
      rpc::EngineOptions{.address = "tcp", .progress_poll = std::chrono::microseconds(0)}};
  Database db = Client{engine, {.timeout = 60s}}.open(address, 1, "db");
  std::mt19937_64 rng(1000 + c);
  const std::string letter(1, static_cast<char>('a' + c));
  for (int op = 0; op < ops; ++op) {
    const int r = static_cast<int>(rng() % 100);
    const std::string key = "c" + std::to_string(c) + "/" + std::to_string(rng() % 400);
    if (r < 40) {
      std::string value(1 + rng() % 200, static_cast<char>('A' + rng() % 26));
      db.put(key, value);
      log.own[key] = value;
    } else if (r < 65) {
      auto got = db.get(key);
      auto it = log.own.find(key);
      auto expected = it == log.own.end() ? std::nullopt : std::optional<std::string>(it->second);
      if (got != expected) return "get(" + key + ") differs from the last acknowledged write";
    } else if (r < 75) {
      db.erase(key);
      log.own.erase(key);
    } else if (r < 85) {
      std::vector<std::string> keys, values;
      for (int i = 0; i < 8; ++i) {
        keys.push_back("c" + std::to_string(c) + "/" + std::to_string(rng() % 400));
        values.push_back(std::string(1 + rng() % 50, 'm'));
      }
      db.put_multi(keys, values);
      for (int i = 0; i < 8; ++i) log.own[keys[i]] = values[i];
    } else if (r < 93) {
      db.put("shared/log", letter, {.mode = PutMode::Append});
      ++log.appended;
    } else {
      const std::string unique = "shared/unique/" + std::to_string(rng() % 2000);
      auto applied = db.put_multi(std::vector<std::string>{unique},
                                  std::vector<std::string>{letter}, {.mode = PutMode::NewOnly});
      if (applied[0]) log.claimed.push_back(unique);
    }
  }
  return "";
}

void write_log(const std::string& path, const ClientLog& log) {
  json j{{"own", log.own}, {"appended", log.appended}, {"claimed", log.claimed}};
  std::ofstream(path) << j.dump();
}

ClientLog read_log(const std::string& path) {
  json j = json::parse(std::ifstream(path));
  ClientLog log;
  log.own = j["own"].get<std::map<std::string, std::string>>();
  log.appended = j["appended"].get<uint64_t>();
  log.claimed = j["claimed"].get<std::vector<std::string>>();
  return log;
}

TEST_P(KvMultiProcess, EightClientProcessesLoseNoAcknowledgedWrite) {
  const int ops = GetParam() == kFullRunBackend ? kFullOpsPerClient : kShortOpsPerClient;
  KvServer server(dir_.path(), "server", server_config(GetParam(), dir_.path(), /*sync=*/false));
  ASSERT_FALSE(server.address().empty());
  std::vector<dango::testing::ChildPid> children;
  for (int c = 0; c < kClients; ++c) {
    const std::string log_path = (dir_.path() / ("client" + std::to_string(c) + ".json")).string();
    // The child builds its own engine; it never returns into gtest.
    children.push_back(dango::testing::ChildPid::fork([&] {
      int code = 0;
      try {
        ClientLog log;
        std::string error = run_client(server.address(), c, ops, log);
        if (error.empty()) {
          write_log(log_path, log);
        } else {
          std::fprintf(stderr, "client %d: %s\n", c, error.c_str());
          code = 2;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "client %d: %s\n", c, e.what());
        code = 3;
      }
      std::fflush(stderr);
      return code;
    }));
  }
  for (int c = 0; c < kClients; ++c) {
    const auto status = children[c].wait();
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "client " << c << " status " << status.value_or(-1);
  }
  rpc::Engine engine{"tcp"};
  Database db = Client{engine, {.timeout = 60s}}.open(server.address(), 1, "db");
  const std::string shared_log = db.get("shared/log").value_or("");
  std::set<std::string> claimed;
  for (int c = 0; c < kClients; ++c) {
    const ClientLog log =
        read_log((dir_.path() / ("client" + std::to_string(c) + ".json")).string());
    std::vector<std::string> keys;
    for (int k = 0; k < 400; ++k) keys.push_back("c" + std::to_string(c) + "/" + std::to_string(k));
    auto values = db.get_multi(keys);
    size_t wrong = 0;
    for (size_t k = 0; k < keys.size(); ++k) {
      auto it = log.own.find(keys[k]);
      auto expected = it == log.own.end() ? std::nullopt : std::optional<std::string>(it->second);
      if (values[k] != expected) ++wrong;
    }
    EXPECT_EQ(wrong, 0u) << "client " << c << ": keys differ from its acknowledged writes";
    const char letter = static_cast<char>('a' + c);
    EXPECT_EQ(static_cast<uint64_t>(std::count(shared_log.begin(), shared_log.end(), letter)),
              log.appended)
        << "client " << c << ": appends lost or duplicated";
    for (const auto& key : log.claimed) {
      EXPECT_TRUE(claimed.insert(key).second) << key << " created by two clients with NewOnly";
      EXPECT_EQ(db.get(key), std::string(1, letter)) << key;
    }
  }
  server.process().kill(SIGTERM);
  auto status = server.process().wait_exit(20s);
  ASSERT_TRUE(status.has_value()) << "dango-kv-server did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
}

INSTANTIATE_TEST_SUITE_P(Backends, KvMultiProcess, ::testing::ValuesIn(backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dango::kv
