// Resolution of a provider's dependencies: local names, name@address, name@group.

#include <algorithm>
#include <thread>

#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "dango/compose/admin.hpp"
#include "dango/thread/thread.hpp"
#include "running_provider.hpp"

namespace dango::compose {
namespace {

using config::fail;

bool is_own_address(rpc::Engine& engine, const std::string& address) {
  const auto& own = engine.addresses();
  return std::find(own.begin(), own.end(), address) != own.end();
}

std::optional<ResolvedDependency> find_local(const DependencyRef& ref,
                                             const std::vector<RunningProvider>& running,
                                             rpc::Engine& engine) {
  for (const auto& p : running) {
    if (p.config.name != ref.name) continue;
    return ResolvedDependency{.spec = ref.spec,
                              .name = p.config.name,
                              .type = p.config.type,
                              .address = engine.address(),
                              .provider_id = p.config.provider_id,
                              .local = p.component.get()};
  }
  return std::nullopt;
}

// The provider named `name` at `address`, as its daemon lists it; nullopt when it has none.
// Throws what AdminClient throws when the daemon does not answer.
std::optional<ResolvedDependency> find_remote(const DependencyRef& ref, const std::string& address,
                                              rpc::Engine& engine,
                                              std::chrono::milliseconds call_timeout) {
  AdminClient admin(engine, address, call_timeout);
  for (const auto& entry : admin.list_providers()) {
    if (entry.value("name", "") != ref.name) continue;
    return ResolvedDependency{.spec = ref.spec,
                              .name = ref.name,
                              .type = entry.value("type", ""),
                              .address = address,
                              .provider_id = entry.value("provider_id", rpc::ProviderId{0})};
  }
  return std::nullopt;
}

ResolvedDependency resolve_at_address(const DependencyRef& ref, const std::string& path,
                                      rpc::Engine& engine, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    try {
      auto found = find_remote(ref, ref.address, engine, std::chrono::milliseconds(2000));
      if (!found)
        fail(path,
             "\"" + ref.spec + "\": no provider named \"" + ref.name + "\" at " + ref.address);
      return *found;
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      if (std::chrono::steady_clock::now() >= deadline) {
        fail(path, "\"" + ref.spec + "\": cannot be resolved: " + e.what());
      }
    }
    // Inside a handler (add-provider), sleep this ULT only.
    if (thread::this_ult::inside()) {
      thread::this_ult::sleep_for(std::chrono::milliseconds(100));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

ResolvedDependency resolve_in_group(const DependencyRef& ref, const std::string& path,
                                    const std::vector<RunningProvider>& running,
                                    rpc::Engine& engine, const GroupMembership* group) {
  if (group == nullptr) fail(path, "\"" + ref.spec + "\" needs a \"group\" section");
  std::string unreachable;
  for (const auto& member : group->members()) {
    if (is_own_address(engine, member)) {
      if (auto found = find_local(ref, running, engine)) return *found;
      continue;
    }
    try {
      if (auto found = find_remote(ref, member, engine, std::chrono::milliseconds(2000))) {
        found->spec = ref.spec;
        return *found;
      }
    } catch (const Error& e) {
      unreachable += std::string(unreachable.empty() ? "" : "; ") + e.what();
    }
  }
  fail(path, "\"" + ref.spec + "\": no member of the group serves a provider named \"" + ref.name +
                 "\"" + (unreachable.empty() ? "" : " (" + unreachable + ")"));
}

}  // namespace

std::map<std::string, std::vector<ResolvedDependency>> resolve_dependencies(
    const ProviderConfig& provider, std::string_view path, const Module& module,
    const std::vector<RunningProvider>& running, rpc::Engine& engine, const GroupMembership* group,
    std::chrono::milliseconds timeout) {
  const auto slots = module.dependencies();
  std::map<std::string, std::vector<ResolvedDependency>> resolved;
  for (const auto& [slot_name, refs] : provider.dependencies) {
    const std::string slot_path = config::join(config::join(path, "dependencies"), slot_name);
    auto slot =
        std::find_if(slots.begin(), slots.end(), [&](auto& s) { return s.name == slot_name; });
    for (const auto& ref : refs) {
      std::optional<ResolvedDependency> dep;
      if (ref.where == DependencyRef::Where::kLocal ||
          (ref.where == DependencyRef::Where::kAddress && is_own_address(engine, ref.address))) {
        dep = find_local(ref, running, engine);
        if (!dep) fail(slot_path, "missing dependency: no provider named \"" + ref.name + "\"");
      } else if (ref.where == DependencyRef::Where::kAddress) {
        dep = resolve_at_address(ref, slot_path, engine, timeout);
      } else {
        dep = resolve_in_group(ref, slot_path, running, engine, group);
      }
      if (slot != slots.end() && !slot->type.empty() && dep->type != slot->type) {
        fail(slot_path, "\"" + ref.spec + "\" is of type \"" + dep->type + "\", expected \"" +
                            slot->type + "\"");
      }
      resolved[slot_name].push_back(std::move(*dep));
    }
  }
  return resolved;
}

}  // namespace dango::compose
