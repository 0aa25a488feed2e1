#pragma once
// Helpers shared by the blob tests: a provider on a server engine with its own execution stream
// and a client engine in the same process, checksums, and the blob server process
// (tools/dango-blob-server) for the multi-process tests.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dango/services/blob/client.hpp"
#include "dango/services/blob/provider.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::blob::testing {

using rpc::testing::ChildProcess;
using rpc::testing::eventually;
using rpc::testing::pattern;
using rpc::testing::server_on_own_thread;
using rpc::testing::TempDir;
using namespace std::chrono_literals;

constexpr rpc::ProviderId kProviderId = 7;

// FNV-1a over the bytes: enough to tell a changed byte.
inline uint64_t checksum(std::span<const std::byte> bytes) {
  uint64_t hash = 1469598103934665603ull;
  for (std::byte b : bytes) hash = (hash ^ static_cast<uint8_t>(b)) * 1099511628211ull;
  return hash;
}

// One target made from the example configuration `example` (a type, "file", or a variant,
// "file.directory": see example_target_names()) keeping its data under `dir`/`name`, with
// `overrides` merged in.
inline TargetConfig target_config(const std::string& example, const std::filesystem::path& dir,
                                  const std::string& name = "main",
                                  const nlohmann::json& overrides = nlohmann::json::object()) {
  TargetConfig target = example_target(example, (dir / name).string());
  std::filesystem::create_directories(dir / name);
  target.name = name;
  target.config.update(overrides);
  return target;
}

// The example configurations of target type `type` ("file": "file", "file.directory"), from the
// registry.
inline std::vector<std::string> examples_of_type(std::string_view type) {
  std::vector<std::string> names;
  for (const std::string& name : example_target_names()) {
    if (std::string_view(name).substr(0, name.find('.')) == type) names.push_back(name);
  }
  return names;
}

// A test-name-safe form of an example's name ("file.directory" -> "file_directory").
inline std::string example_test_name(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

// A server engine (its own execution stream) hosting a blob provider, and a client engine.
struct BlobServer {
  explicit BlobServer(ProviderOptions options)
      : server(server_on_own_thread()),
        provider(std::make_unique<Provider>(server, kProviderId, std::move(options))),
        client_engine("tcp"),
        client(client_engine) {}
  Target open(const std::string& name = "main") {
    return client.open(server.address(), kProviderId, name);
  }
  rpc::Engine server;
  std::unique_ptr<Provider> provider;
  rpc::Engine client_engine;
  Client client;
};

// The blob server program.
inline std::string blob_server_path() { return std::string(DANGO_BIN_DIR) + "/dango-blob-server"; }

// Starts dango-blob-server with `config` (ProviderOptions JSON) written into `dir`; returns once
// its address is known (or fails the test). SIGKILLed and reaped on scope exit.
struct BlobServerProcess {
  BlobServerProcess(const std::filesystem::path& dir, const nlohmann::json& config,
                    const std::string& name = "blob-server")
      : config_file((dir / (name + ".json")).string()),
        address_file((dir / (name + ".address")).string()) {
    std::filesystem::remove(address_file);
    std::ofstream(config_file) << config.dump();
    process.emplace(blob_server_path(), std::vector<std::string>{
                                            "--config", config_file, "--address-file", address_file,
                                            "--provider-id", std::to_string(kProviderId)});
    const bool ready = eventually([&] { return std::filesystem::exists(address_file); }, 20000ms);
    EXPECT_TRUE(ready) << "dango-blob-server wrote no address to " << address_file;
    if (ready) {
      std::ifstream in(address_file);
      std::getline(in, address);
    }
  }
  std::string config_file;
  std::string address_file;
  std::optional<ChildProcess> process;
  std::string address;
};

}  // namespace dango::blob::testing
