#pragma once
// A provider the daemon runs: its validated entry, its component and its resolved
// dependencies. Private to src/compose.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dango/compose/group_support.hpp"
#include "dango/compose/module.hpp"
#include "dango/compose/process_config.hpp"

namespace dango::compose {

struct RunningProvider {
  ProviderConfig config;
  std::map<std::string, std::vector<ResolvedDependency>> dependencies;
  std::unique_ptr<Component> component;
};

// Resolves every dependency of `provider` (entry at `path`): local ones among `running`
// (this process, `engine`), remote ones by asking that process (retrying until `timeout` while
// it is unreachable), "@group" ones by asking the members of `group` in order. Checks the
// slot types of `module`. Throws ConfigError naming the dependency.
std::map<std::string, std::vector<ResolvedDependency>> resolve_dependencies(
    const ProviderConfig& provider, std::string_view path, const Module& module,
    const std::vector<RunningProvider>& running, rpc::Engine& engine, const GroupMembership* group,
    std::chrono::milliseconds timeout);

}  // namespace dango::compose
