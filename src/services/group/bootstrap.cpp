// The bootstrap registry (see bootstrap.hpp).

#include "bootstrap.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

namespace dango::group::detail {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, BootstrapMethod, std::less<>> methods;
};

// Function-local: registrations from other files' static initialisers may run first.
Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

bool register_bootstrap(BootstrapMethod method) {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  const std::string name = method.name;
  if (!reg.methods.emplace(name, std::move(method)).second) {
    std::fprintf(stderr, "dango group: bootstrap method \"%s\" registered twice\n", name.c_str());
    std::abort();
  }
  return true;
}

const BootstrapMethod* find_bootstrap(std::string_view name) {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  auto it = reg.methods.find(name);
  return it == reg.methods.end() ? nullptr : &it->second;
}

std::vector<std::string> bootstrap_names() {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  std::vector<std::string> names;
  for (const auto& [name, method] : reg.methods) names.push_back(name);
  return names;
}

}  // namespace dango::group::detail
