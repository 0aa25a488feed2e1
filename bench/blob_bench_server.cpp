// The server side of the `blob` suite, run in its own process (the bench binary re-exec'd as
// helper "blob_bench_server", see suite.hpp): an Engine with default options hosting a blob
// provider (id 1) with one target "bench".
//
// Arguments: <listen address> <target config as JSON text ({"type": ..., ...})>.
// It prints its address as one line on stdout, then serves until the client calls
// "blob_bench_shutdown" (provider 0). If the parent dies first, the kernel kills it
// (PR_SET_PDEATHSIG, set by HelperProcess); a watchdog alarm ends it in any case.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/blob/provider.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr unsigned kWatchdogSeconds = 900;

int blob_bench_server(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  try {
    if (args.size() != 2) throw std::runtime_error("expected <address> <target config JSON>");
    rpc::Engine engine{args[0]};  // default options, as the rpc suite's server
    auto target = blob::TargetConfig::from_json(nlohmann::json::parse(args[1]), "target");
    blob::Provider provider{engine, 1, blob::ProviderOptions{.targets = {target}}};
    engine.define("blob_bench_shutdown", [&engine] { engine.finalize(); });
    std::printf("%s\n", engine.address().c_str());
    std::fflush(stdout);
    engine.wait_for_finalize();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blob_bench_server: %s\n", e.what());
    return 1;
  }
}

}  // namespace

DANGO_REGISTER_BENCH_HELPER(blob_bench_server, blob_bench_server);

}  // namespace dango::bench
