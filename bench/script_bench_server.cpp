// The server side of the `script` suite, run in its own process (the bench binary re-exec'd as
// helper "script_bench_server", see suite.hpp): an Engine with default options hosting a script
// provider (id 1) with one interpreter per registered language, named after it, and the empty
// RPC "bench_empty" the suite compares against.
//
// Arguments: <listen address>. It prints its address as one line on stdout, then serves until
// the client calls "bench_shutdown". If the parent dies first, the kernel kills it
// (PR_SET_PDEATHSIG, set by HelperProcess); a watchdog alarm ends it in any case.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/script/provider.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

constexpr unsigned kWatchdogSeconds = 600;

int script_bench_server(const std::vector<std::string>& args) {
  signal(SIGALRM, SIG_DFL);
  alarm(kWatchdogSeconds);
  try {
    if (args.size() != 1) throw std::runtime_error("expected <address>");
    rpc::Engine engine{args[0]};  // default options, as the rpc suite's server
    script::ProviderOptions options;
    for (const std::string& language : script::registered_languages()) {
      options.interpreters.push_back({.name = language, .language = language});
    }
    script::Provider provider{engine, 1, options};
    engine.define("bench_empty", [] {});
    engine.define("bench_shutdown", [&engine] { engine.finalize(); });
    std::printf("%s\n", engine.address().c_str());
    std::fflush(stdout);
    engine.wait_for_finalize();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "script_bench_server: %s\n", e.what());
    return 1;
  }
}

}  // namespace

DANGO_REGISTER_BENCH_HELPER(script_bench_server, script_bench_server);

}  // namespace dango::bench
