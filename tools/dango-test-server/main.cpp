// dango-test-server: an RPC server for the multi-process tests (tests/rpc/two_process_test.cpp).
// It listens (default tcp://127.0.0.1:0), writes its address to --address-file (or stdout) once
// it serves, and runs until a client calls "shutdown". RPCs, all for provider 0:
//   sum(int64, int64) -> int64           echo(string) -> string
//   bulk_xor(Bulk, uint8 key) -> uint64  pulls the whole (read-write) bulk from the caller, returns
//                                        the sum of its bytes and pushes back every byte ^ key
//   fail(string)                         throws std::runtime_error(message)
//   sleep_ms(uint32) -> uint32           sleeps that long in the handler ULT, returns the argument
//   pid() -> int32                       this process's id
//   shutdown()                           finalizes the engine; main() then returns 0

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dango/dango.hpp"

namespace {

// Writes `text` to `path` through a temporary file and a rename, so a reader polling for the
// file never sees it half written.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path);
}

void define_rpcs(dango::Engine& engine) {
  engine.define("sum", [](int64_t a, int64_t b) { return a + b; });
  engine.define("echo", [](const std::string& text) { return text; });
  engine.define("bulk_xor",
                [](const dango::Request& request, const dango::Bulk& remote, uint8_t key) {
                  dango::Engine& e = request.engine();
                  std::vector<std::byte> buffer(remote.size());
                  dango::Bulk local = e.expose(buffer, dango::rpc::Access::kReadWrite);
                  e.pull(request.source(), remote, 0, local, 0, buffer.size());
                  uint64_t sum = 0;
                  for (std::byte& b : buffer) {
                    sum += static_cast<uint8_t>(b);
                    b ^= static_cast<std::byte>(key);
                  }
                  e.push(request.source(), remote, 0, local, 0, buffer.size());
                  return sum;
                });
  engine.define("fail", [](const std::string& message) { throw std::runtime_error(message); });
  engine.define("sleep_ms", [](uint32_t ms) {
    dango::thread::this_ult::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  engine.define("pid", [] { return static_cast<int32_t>(::getpid()); });
  engine.define("shutdown", [](const dango::Request& request) { request.engine().finalize(); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dango-test-server: an RPC server for Dango's multi-process tests"};
  std::string address = "tcp://127.0.0.1:0";
  std::string address_file;
  app.add_option("--address", address, "address to listen on (default tcp://127.0.0.1:0)");
  app.add_option("--address-file", address_file,
                 "file to write the listening address to (default: stdout)");
  CLI11_PARSE(app, argc, argv);

  try {
    dango::Engine engine{address};
    define_rpcs(engine);
    if (address_file.empty()) {
      std::printf("%s\n", engine.address().c_str());
      std::fflush(stdout);
    } else {
      write_atomically(address_file, engine.address());
    }
    engine.wait_for_finalize();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dango-test-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
