#pragma once
// A Dango process built from its JSON description (what dango-daemon runs): the engine, its
// monitoring, its group membership and its providers, started in dependency order and stopped
// in reverse; administered remotely through the RPCs of admin.hpp.
//
//   auto config = ProcessConfig::parse(text, module_path);   // ConfigError: exit code 2
//   Process process{std::move(config), {.module_path = module_path}};
//   process.wait();   // until request_stop() (signal, or dango-ctl shutdown)
//   process.stop();

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dango/compose/process_config.hpp"
#include "dango/rpc/engine.hpp"

namespace dango::compose {

struct ProcessOptions {
  // Directories searched for modules not linked in (default none).
  std::vector<std::string> module_path{};
  // How long a remote dependency ("meta@tcp://...") may stay unreachable before the start
  // fails: peers of one deployment start in any order (default 10 s).
  std::chrono::milliseconds dependency_timeout{10000};
};

class Process {
 public:
  // Starts the engine (its primary stream is the calling thread), monitoring, the group, then
  // every provider in dependency order, and serves the administration RPCs. Throws
  // ConfigError (a dependency that cannot be resolved, a component rejecting its config) or
  // another dango::Error; whatever had started is stopped first.
  explicit Process(ProcessConfig config, ProcessOptions options = {});
  // Stops (see stop()).
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  rpc::Engine& engine();
  // The address clients use (the engine's first address).
  const std::string& address() const;

  // The running configuration: engine (resolved addresses), monitoring (with its Prometheus
  // address), group, and each provider with its component's effective config and resolved
  // dependencies. Thread-safe.
  nlohmann::json query() const;
  // [{"name", "type", "provider_id", "pool"}], in start order.
  nlohmann::json list_providers() const;
  // Validates `provider` (an entry of "providers") against the running ones, resolves its
  // dependencies and starts it; returns its entry as query() shows it. Throws ConfigError.
  nlohmann::json add_provider(const nlohmann::json& provider);
  // Stops and destroys provider `name`. Throws ConfigError when there is none or another
  // provider depends on it.
  void remove_provider(std::string_view name);

  // Asks wait() to return; callable from any thread, a handler, or repeatedly.
  void request_stop();
  // Blocks the calling (primary) thread, serving meanwhile, until request_stop().
  void wait();
  // Stops the providers (dependents first), leaves the group, stops monitoring (writing its
  // dump) and finalizes the engine. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dango::compose
