// The server side of the `kv` suite, run in its own process (the bench binary re-exec'd as helper
// "kv_bench_server", see suite.hpp): an Engine with default options listening on the address
// given (default tcp://127.0.0.1:0) and a kv::Provider (id 1) serving one database "bench" of the
// backend named in the arguments, its files (if any) under the directory given. It prints its
// address as one line on stdout, then serves until the client calls "bench_shutdown"; a watchdog
// alarm ends it in any case.
//
// Arguments: <backend type> <directory for persistent stores> [listen address].
// RPCs besides the kv ones: bench_empty() (the empty-RPC reference), bench_cpu() (the CPU time
// this process has used, every thread counted: seconds), bench_shutdown().

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/kv/provider.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr unsigned kWatchdogSeconds = 1800;

int kv_bench_server(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  try {
    if (args.size() < 2 || args.size() > 3) {
      throw std::runtime_error("usage: kv_bench_server <backend> <dir> [listen address]");
    }
    const std::string address = args.size() > 2 ? args[2] : "tcp://127.0.0.1:0";
    kv::DatabaseConfig database{.name = "bench", .type = args[0]};
    for (const auto& b : kv::available_backends()) {
      if (b.name == args[0] && b.persistent) {
        database.config["path"] = (std::filesystem::path(args[1]) / "rpc").string();
      }
    }
    rpc::Engine engine{address};  // default options, as rpc_bench_server
    engine.define("bench_empty", [] {});
    engine.define("bench_cpu", [] { return process_cpu_seconds(); });
    engine.define("bench_shutdown", [&engine] { engine.finalize(); });
    {
      kv::Provider provider(engine, 1, {.databases = {database}});
      std::printf("%s\n", engine.address().c_str());
      std::fflush(stdout);
      engine.wait_for_finalize();
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kv_bench_server: %s\n", e.what());
    return 1;
  }
}

}  // namespace

DANGO_REGISTER_BENCH_HELPER(kv_bench_server, kv_bench_server);

}  // namespace dango::bench
