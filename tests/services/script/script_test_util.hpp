#pragma once
// What the script tests share: a deployment of a script provider (in process or over tcp) and
// the error code a call threw.

#include <memory>
#include <string>

#include "dango/services/script/client.hpp"
#include "dango/services/script/provider.hpp"

namespace dango::script::testing {

inline constexpr rpc::ProviderId kProviderId = 4;

// A server engine with a script provider on its own execution stream (a script's wait must not
// stall the client's calls), and the engine the test calls from: a second engine over tcp, or
// the server's own (in process).
struct Deployment {
  explicit Deployment(ProviderOptions options, bool in_process)
      : server(rpc::EngineOptions{
            .address = "tcp://127.0.0.1:0",
            .threads = {.pools = {{.name = "server"}},
                        .xstreams = {{.name = "server", .pools = {"server"}}},
                        .progress_pool = "server",
                        .rpc_pool = "server"}}),
        provider(std::make_unique<Provider>(server, kProviderId, std::move(options))) {
    if (!in_process) client_engine = std::make_unique<rpc::Engine>("tcp");
  }
  rpc::Engine& engine() { return client_engine ? *client_engine : server; }
  Client client() { return Client{engine()}; }
  Interpreter open(const std::string& name = "main") {
    return client().open(server.address(), kProviderId, name);
  }

  rpc::Engine server;
  std::unique_ptr<Provider> provider;
  std::unique_ptr<rpc::Engine> client_engine;
};

// The script::Error code `body` threw (kOk when it threw nothing).
template <class F>
ErrorCode error_code_of(F&& body, std::string* message = nullptr) {
  try {
    body();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return ErrorCode::kOk;
}

}  // namespace dango::script::testing
