#pragma once
// Helpers shared by the RPC engine tests: a server and a client engine in one process, a hang
// watchdog, and an RAII guard for child processes (dango-test-server).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/child_process.hpp"
#include "common/hang_watchdog.hpp"
#include "common/temp_dir.hpp"
#include "dango/dango.hpp"

namespace dango::rpc::testing {

using namespace std::chrono_literals;

// A listening server engine and a client-only engine of the same transport, both served by the
// calling thread (several runtimes may share a primary thread: waiting on one runs the ULTs of
// all). ServerAndClient{"sm"} listens on sm's loopback address. ServerAndClient{"self"} is the
// in-process path: one engine (listening on tcp) is both, and `endpoint` is Engine::self().
struct ServerAndClient {
  explicit ServerAndClient(std::string_view scheme)
      : ServerAndClient(EngineOptions{.address = net::loopback_address(
                            scheme == "self" ? std::string_view("tcp") : scheme)},
                        scheme == "self") {}
  // The client uses the transport of `server_options.address`, or is the server itself when
  // `in_process`.
  explicit ServerAndClient(EngineOptions server_options, bool in_process = false)
      : server(std::move(server_options)),
        own_client(in_process ? std::nullopt
                              : std::optional<Engine>(std::in_place,
                                                      net::split_address(server.options().address).first)),
        client(own_client ? *own_client : server),
        endpoint(in_process ? server.self() : client.lookup(server.address())) {}
  bool in_process() const { return &client == &server; }
  Engine server;
  std::optional<Engine> own_client;  // empty on the in-process path
  Engine& client;
  Endpoint endpoint;  // the server, as the client sees it
};

// Options for a server listening on `address` whose progress loop and handlers run on an
// execution stream of their own, so that it keeps serving while the test's thread blocks (raw
// sockets, sleeps, other threads).
inline EngineOptions server_on_own_thread(std::string address = "tcp://127.0.0.1:0") {
  return EngineOptions{.address = std::move(address),
                       .threads = {.pools = {{.name = "server"}},
                                   .xstreams = {{.name = "server", .pools = {"server"}}},
                                   .progress_pool = "server",
                                   .rpc_pool = "server"}};
}

// Bytes with a position-dependent pattern, so a shifted or partial copy is detected.
inline std::vector<std::byte> pattern(size_t size, uint8_t seed) {
  std::vector<std::byte> bytes(size);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1664525u + 1013904223u;
    bytes[i] = static_cast<std::byte>(x >> 24);
  }
  return bytes;
}

// Polls `condition` until it holds or `limit` passes; true when it held.
template <class Pred>
bool eventually(Pred condition, std::chrono::milliseconds limit = 10000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

using dango::testing::TempDir;

// A child process running a program from build/bin, killed (SIGKILL) and reaped on scope exit
// unless it was already waited for: no test leaves a server behind, even when it fails.
class ChildProcess {
 public:
  ChildProcess(const std::string& program, const std::vector<std::string>& args)
      : process_(dango::testing::ChildPid::exec(program, args)) {}

  pid_t pid() const { return process_.pid(); }
  // Sends `signal`; the guard still reaps the process.
  void kill(int signal) { process_.signal(signal); }
  // Waits up to `limit` for the process to exit; its wait status, or nothing (still running).
  std::optional<int> wait_exit(std::chrono::milliseconds limit) { return process_.wait_for(limit); }

 private:
  dango::testing::ChildPid process_;
};

// The test server program (tools/dango-test-server).
inline std::string test_server_path() { return std::string(DANGO_BIN_DIR) + "/dango-test-server"; }

// Starts dango-test-server listening on `listen_address` (a loopback address such as
// net::loopback_address("tcp")) with its address written into `dir`; returns once the address is
// known (or fails the test).
struct TestServer {
  TestServer(const std::filesystem::path& dir, const std::string& listen_address,
             const std::string& name = "server")
      : address_file((dir / (name + ".address")).string()),
        process(test_server_path(), {"--address", listen_address, "--address-file", address_file}) {
    std::optional<int> exit_status;  // a server that cannot listen exits at once: fail early
    const bool ready = eventually(
        [&] {
          if (std::filesystem::exists(address_file)) return true;
          exit_status = process.wait_exit(0ms);
          return exit_status.has_value();
        },
        20000ms);
    if (exit_status) {
      ADD_FAILURE() << "dango-test-server --address " << listen_address
                    << " exited before it served (wait status " << *exit_status << ")";
    } else if (!ready) {
      ADD_FAILURE() << "dango-test-server wrote no address to " << address_file;
    } else {
      std::ifstream in(address_file);
      std::getline(in, address);
    }
  }
  std::string address_file;
  ChildProcess process;
  std::string address;
};

}  // namespace dango::rpc::testing
