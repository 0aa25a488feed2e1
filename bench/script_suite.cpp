// The `script` suite: scripts run by a script provider in another process (helper
// "script_bench_server"), one interpreter per registered language, next to an empty RPC to the
// same process measured in the same run.
//
//   trivial_vs_rpc   median latency (us) of executing a script that does nothing but return a
//                    number (Lua "return 1", Python "1"): what a caller pays per script beyond
//                    the RPC (the hand-off to the interpreter's thread, compiling, running).
//                    Baseline "empty_rpc".
//   loop_us          informational: median latency of a loop of 100,000 additions.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "baselines.hpp"
#include "bench_server.hpp"
#include "dango/net/transport.hpp"
#include "dango/services/script/client.hpp"
#include "suite.hpp"

namespace dango::bench {
namespace {

struct LanguageScripts {
  std::string trivial;
  std::string loop;
};

const std::map<std::string, LanguageScripts>& scripts() {
  static const std::map<std::string, LanguageScripts> table = {
      {"lua", {"return 1", "local s = 0 for i = 1, 100000 do s = s + i end return s"}},
      {"python", {"1", "s = 0\nfor i in range(100000):\n    s += i\ns"}},
  };
  return table;
}

// Median latency (us) of `samples` calls of `call` after a tenth as warm-up.
template <class Call>
double median_us(std::size_t samples, Call&& call) {
  return median(time_round_trips(samples / 10 + 1, samples, call).latency_us);
}

void run_for_transport(const std::string& transport, const std::string& listen_address,
                       const Options& options, Reporter& reporter) {
  const std::size_t samples = options.quick ? 500 : 5000;
  const std::size_t loops = options.quick ? 5 : 30;
  rpc::Engine engine{rpc::EngineOptions{.address = transport}};
  HelperProcess server("script_bench_server", {listen_address});
  const std::string address = server.read_line();
  const rpc::Endpoint endpoint = engine.lookup(address);
  struct Row {
    std::string language;
    double empty_us = 0, trivial_us = 0, loop_us = 0;
  };
  std::vector<Row> rows = in_ult<std::vector<Row>>(engine, [&] {
    auto empty = engine.rpc<void()>("bench_empty").on(endpoint);
    script::Client client{engine};
    std::vector<Row> out;
    for (const std::string& language : script::registered_languages()) {
      auto it = scripts().find(language);
      if (it == scripts().end()) continue;
      script::Interpreter interpreter = client.open(address, 1, language);
      Row row{.language = language};
      // The empty RPC right before each language's scripts: a drift of the machine hits both.
      row.empty_us = median_us(samples, [&] { empty(); });
      row.trivial_us = median_us(samples, [&] { interpreter.execute(it->second.trivial); });
      row.loop_us = median_us(loops, [&] { interpreter.execute(it->second.loop); });
      out.push_back(row);
    }
    return out;
  });
  engine.rpc<void()>(kShutdownRpc).on(endpoint).timeout(std::chrono::seconds(10))();
  server.wait_exit(std::chrono::seconds(30));
  for (const Row& row : rows) {
    reporter.add({.transport = transport,
                  .case_name = "trivial_vs_rpc",
                  .value = row.trivial_us,
                  .unit = "us",
                  .baseline = "empty_rpc",
                  .baseline_value = row.empty_us,
                  .extra = {{"language", row.language}}});
    reporter.add({.transport = transport,
                  .case_name = "loop_us",
                  .value = row.loop_us,
                  .unit = "us",
                  .extra = {{"language", row.language}}});
  }
}

void run_script_suite(const Options& options, Reporter& reporter) {
  const std::vector<std::string> registered = net::registered_transports();
  for (const std::string& transport : options.transports) {
    const auto address = server_address(transport);
    if (!address ||
        std::find(registered.begin(), registered.end(), transport) == registered.end()) {
      std::cerr << "script suite: skipping transport \"" << transport
                << "\" (not supported by the engine or by this suite)\n";
      continue;
    }
    run_for_transport(transport, *address, options, reporter);
  }
}

}  // namespace

DANGO_REGISTER_BENCH_SUITE(script, run_script_suite);

}  // namespace dango::bench
