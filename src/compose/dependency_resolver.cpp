// Resolution of a provider's dependencies: local names, name@address, name@group.

#include <algorithm>

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

// Pauses before the next attempt: inside a handler (add-provider) this ULT only; on the
// primary thread (the daemon starting) while running its stream, so that the process keeps
// answering its peers (a member joining through it, a peer resolving its own dependencies).
void pause_before_retry() { thread::this_ult::sleep_for(std::chrono::milliseconds(100)); }

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
    pause_before_retry();
  }
}

// One pass over the members in order; the first serving `ref.name` wins. `why` collects the
// members that did not answer.
std::optional<ResolvedDependency> find_in_group(const DependencyRef& ref,
                                                const std::vector<RunningProvider>& running,
                                                rpc::Engine& engine, const GroupMembership& group,
                                                std::string& why) {
  why.clear();
  for (const auto& member : group.members()) {
    if (is_own_address(engine, member)) {
      if (auto found = find_local(ref, running, engine)) return found;
      continue;
    }
    try {
      if (auto found = find_remote(ref, member, engine, std::chrono::milliseconds(2000))) {
        found->spec = ref.spec;
        return found;
      }
    } catch (const Error& e) {
      why += std::string(why.empty() ? "" : "; ") + e.what();
    }
  }
  return std::nullopt;
}

// Members of one deployment start in any order: until `timeout`, a member that has not joined
// yet or is still starting its providers may be the one serving the dependency.
ResolvedDependency resolve_in_group(const DependencyRef& ref, const std::string& path,
                                    const std::vector<RunningProvider>& running,
                                    rpc::Engine& engine, const GroupMembership* group,
                                    std::chrono::milliseconds timeout) {
  if (group == nullptr) fail(path, "\"" + ref.spec + "\" needs a \"group\" section");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string unreachable;
  while (true) {
    if (auto found = find_in_group(ref, running, engine, *group, unreachable)) return *found;
    if (std::chrono::steady_clock::now() >= deadline) break;
    pause_before_retry();
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
        dep = resolve_in_group(ref, slot_path, running, engine, group, timeout);
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
