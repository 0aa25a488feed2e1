#pragma once
// Helpers shared by the key/value tests: the backend list from the registry, a config for each
// backend in a temporary directory, and a server engine + provider + client engine in one process.

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dango/dango.hpp"
#include "dango/services/kv/admin.hpp"
#include "dango/services/kv/client.hpp"
#include "dango/services/kv/provider.hpp"
#include "rpc/rpc_test_util.hpp"

namespace dango::kv::testing {

using rpc::testing::TempDir;

inline std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const auto& b : available_backends()) names.push_back(b.name);
  return names;
}

inline BackendDescription describe(const std::string& name) {
  for (const auto& b : available_backends()) {
    if (b.name == name) return b;
  }
  throw std::runtime_error("no backend " + name);
}

// A config for a database of `type` whose files (if any) live under `dir`.
inline DatabaseConfig database_config(const std::string& name, const std::string& type,
                                      const std::filesystem::path& dir) {
  DatabaseConfig config{.name = name, .type = type};
  if (describe(type).persistent) config.config["path"] = (dir / name).string();
  return config;
}

// The engine a test calls from and the endpoint of the provider: over tcp (a second engine in
// this process) or in-process (the server engine's self endpoint).
struct Deployment {
  Deployment(const std::string& type, bool in_process, const std::filesystem::path& dir,
             ProviderOptions options = {})
      : server(rpc::EngineOptions{.address = "tcp://127.0.0.1:0"}) {
    options.databases.push_back(database_config("db", type, dir));
    provider = std::make_unique<Provider>(server, 1, options);
    if (in_process) {
      endpoint = server.self();
    } else {
      client_engine = std::make_unique<rpc::Engine>("tcp");
      endpoint = client_engine->lookup(server.address());
    }
  }
  rpc::Engine& client() { return client_engine ? *client_engine : server; }
  Database open(const std::string& name = "db", ClientOptions options = {}) {
    return Client{client(), options}.open(endpoint, 1, name);
  }

  rpc::Engine server;
  std::unique_ptr<Provider> provider;
  std::unique_ptr<rpc::Engine> client_engine;
  rpc::Endpoint endpoint;
};

// Runs `body` and returns the kv::Error code it threw (Ok when it threw nothing).
template <class F>
ErrorCode error_code_of(F&& body, std::string* message = nullptr) {
  try {
    body();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return ErrorCode::Ok;
}

}  // namespace dango::kv::testing
