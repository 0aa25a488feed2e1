// The server side of the `rpc` and `bulk` suites, run in its own process (the bench binary
// re-exec'd as helper "rpc_bench_server", see suite.hpp): an Engine on tcp://127.0.0.1:0 with
// the default EngineOptions (one primary stream running progress and handlers, 10 ms polling
// window), so that the figures are those of an engine nobody tuned.
//
// It prints its address as one line on stdout, then serves until the client calls
// "bench_shutdown". If the parent dies first, the kernel kills it (PR_SET_PDEATHSIG, set by
// HelperProcess); a watchdog alarm ends it in any case.
//
// Arguments: [listen address (default "tcp://127.0.0.1:0")] [bytes of server memory for bulk
// transfers (default 64 MiB; 0 = serve no bulk RPCs)] ["monitor": with monitoring on, as
// dango-daemon's "monitoring" section turns it on].
// RPCs (rpc_suite.cpp and bulk_suite.cpp call them by these names):
//   bench_empty()                   nothing in, nothing out: a 48-byte message each way
//   bench_pull(Bulk remote, size)   pulls `size` bytes of the client's `remote` into server memory
//   bench_push(Bulk remote, size)   pushes `size` bytes of server memory into the client's `remote`
//   bench_shutdown()                finalizes the engine once the reply has left

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/monitor/monitoring.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

// Longer than a full `rpc` + `bulk` run (~2 minutes); only a stuck server ever meets it.
constexpr unsigned kWatchdogSeconds = 600;

// The largest bulk transfer the client asks for (its biggest size).
constexpr std::size_t kMaxBulkSize = 64 * kMiB;

int rpc_bench_server(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);  // the default action of SIGALRM ends the process
  try {
    const std::string address = args.size() > 0 ? args[0] : "tcp://127.0.0.1:0";
    const std::size_t bulk_size = args.size() > 1 ? std::stoull(args[1]) : kMaxBulkSize;

    rpc::Engine engine{address};  // default options, on purpose (see the top of this file)
    std::optional<monitor::Monitoring> monitoring;
    if (args.size() > 2 && args[2] == "monitor") monitoring.emplace(engine, monitor::MonitoringOptions{});

    engine.define("bench_empty", [] {});

    // The server's side of every transfer: allocated, touched and exposed once, so that no
    // first-touched page or registration lands in a timed RPC. The rpc suite asks for none.
    std::unique_ptr<std::byte[]> memory;
    rpc::Bulk local;
    if (bulk_size > 0) {
      memory = std::make_unique_for_overwrite<std::byte[]>(bulk_size);
      std::memset(memory.get(), 0x3c, bulk_size);
      local = engine.expose(std::span<std::byte>(memory.get(), bulk_size), rpc::Access::kReadWrite);
      engine.define("bench_pull", [&local](const rpc::Request& request, const rpc::Bulk& remote,
                                           std::uint64_t size) {
        request.engine().pull(request.source(), remote, 0, local, 0, size);
      });
      engine.define("bench_push", [&local](const rpc::Request& request, const rpc::Bulk& remote,
                                           std::uint64_t size) {
        request.engine().push(request.source(), remote, 0, local, 0, size);
      });
    }
    // From a handler, finalize() only asks wait_for_finalize() below to do it; the reply still
    // leaves, since finalizing waits for running handlers.
    engine.define("bench_shutdown", [&engine] { engine.finalize(); });

    std::printf("%s\n", engine.address().c_str());
    std::fflush(stdout);
    engine.wait_for_finalize();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rpc_bench_server: %s\n", e.what());
    return 1;
  }
}

}  // namespace

DANGO_REGISTER_BENCH_HELPER(rpc_bench_server, rpc_bench_server);

}  // namespace dango::bench
