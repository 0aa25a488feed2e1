#pragma once
// The client's handle on the rpc_bench_server process shared by the `rpc` and `bulk` suites.

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

#include "dango/net/transport.hpp"
#include "dango/rpc/engine.hpp"
#include "suite.hpp"

namespace dango::bench {

inline constexpr const char* kShutdownRpc = "bench_shutdown";

// Runs `body` in a ULT of the engine's rpc pool and waits for it; the waiting (primary) thread
// runs the pool meanwhile, as a client application's ULT would.
template <class T>
T in_ult(rpc::Engine& engine, const std::function<T()>& body) {
  T result{};
  engine.rpc_pool().spawn([&] { result = body(); }).join();
  return result;
}

// The listen address for the server of `transport` (its registered loopback address), or
// nullopt when no such transport is registered.
inline std::optional<std::string> server_address(const std::string& transport) {
  try {
    return net::loopback_address(transport);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// A running rpc_bench_server with `bulk_size` bytes of its own memory (0: no bulk RPCs), and
// its endpoint; the destructor asks it to finalize and reaps it (HelperProcess kills it if it
// does not exit by itself).
class BenchServer {
 public:
  // With `monitored`, the server runs with monitoring on (dango::monitor::Monitoring).
  BenchServer(rpc::Engine& engine, const std::string& listen_address, std::size_t bulk_size,
              bool monitored = false)
      : engine_(engine),
        process_("rpc_bench_server", {listen_address, std::to_string(bulk_size),
                                      monitored ? "monitor" : "plain"}) {
    endpoint_ = engine_.lookup(process_.read_line());
  }
  ~BenchServer() {
    try {
      engine_.rpc<void()>(kShutdownRpc).on(endpoint_).timeout(std::chrono::seconds(5))();
      const auto code = process_.wait_exit();
      if (code != 0) std::cerr << "bench server exited with code " << code.value_or(-1) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "stopping the bench server: " << e.what() << "\n";
    }
  }
  BenchServer(const BenchServer&) = delete;
  BenchServer& operator=(const BenchServer&) = delete;
  const rpc::Endpoint& endpoint() const { return endpoint_; }

 private:
  rpc::Engine& engine_;
  HelperProcess process_;
  rpc::Endpoint endpoint_;
};

}  // namespace dango::bench
