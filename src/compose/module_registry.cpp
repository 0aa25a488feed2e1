// The registry of modules (provider types) and of group support, filled at static-
// initialisation time by DANGO_REGISTER_MODULE / DANGO_REGISTER_GROUP_SUPPORT, and the loader
// of modules from the module path (dlopen).

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "dango/compose/group_support.hpp"
#include "dango/compose/module.hpp"

namespace dango::compose {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::unique_ptr<Module>, std::less<>> modules;
  std::unique_ptr<GroupSupport> group;
};

// A function-local static: registrations from other libraries' static initialisers may run
// before this file's globals are constructed.
Registry& registry() {
  static Registry instance;
  return instance;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
  return text.empty() ? "none" : text;
}

}  // namespace

nlohmann::json ResolvedDependency::to_json() const {
  return {{"spec", spec},
          {"name", name},
          {"type", type},
          {"address", address},
          {"provider_id", provider_id},
          {"local", is_local()}};
}

const ResolvedDependency& ComponentArgs::dependency(std::string_view slot) const {
  auto it = dependencies.find(std::string(slot));
  if (it == dependencies.end() || it->second.empty()) {
    config::fail(
        config::join(config::join(config_path.substr(0, config_path.rfind('.')), "dependencies"),
                     slot),
        "missing dependency");
  }
  return it->second.front();
}

bool register_module(std::string type, std::unique_ptr<Module> module) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.modules.count(type)) {
    log::get("compose")->error("module type \"{}\" is registered twice; keeping the first", type);
    return false;
  }
  r.modules.emplace(std::move(type), std::move(module));
  return true;
}

const Module* find_module(std::string_view type) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.modules.find(type);
  return it == r.modules.end() ? nullptr : it->second.get();
}

std::vector<std::string> module_types() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> types;
  for (const auto& [type, module] : r.modules) types.push_back(type);
  return types;
}

std::vector<std::string> split_module_path(std::string_view text) {
  std::vector<std::string> dirs;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(':', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) dirs.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return dirs;
}

const Module& load_module(std::string_view type, const std::vector<std::string>& module_path,
                          std::string_view key_path) {
  if (const Module* module = find_module(type)) return *module;
  // Only identifiers name modules: a type never turns into a path outside the module path.
  const bool identifier =
      !type.empty() &&
      type.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
          std::string_view::npos;
  if (identifier) {
    for (const auto& dir : module_path) {
      for (const std::string& file :
           {"libdango-module-" + std::string(type) + ".so", std::string(type) + ".so"}) {
        const std::filesystem::path candidate = std::filesystem::path(dir) / file;
        std::error_code ec;
        if (!std::filesystem::exists(candidate, ec)) continue;
        // RTLD_GLOBAL: a module's own dependencies (other modules' client libraries) resolve
        // against what is already loaded. Never closed: components run its code until exit.
        void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_GLOBAL);
        if (handle == nullptr) {
          const char* why = ::dlerror();
          config::fail(key_path, "cannot load module \"" + std::string(type) + "\" from " +
                                     candidate.string() + ": " + (why ? why : "unknown error"));
        }
        if (const Module* module = find_module(type)) {
          log::get("compose")->info("loaded module \"{}\" from {}", type, candidate.string());
          return *module;
        }
        config::fail(key_path, candidate.string() + " registers no module \"" + std::string(type) +
                                   "\" (it has: " + join_names(module_types()) + ")");
      }
    }
  }
  config::fail(key_path, "unknown provider type \"" + std::string(type) + "\" (registered: " +
                             join_names(module_types()) + "; module path searched: " +
                             (module_path.empty() ? std::string("none") : [&] {
                               std::string dirs;
                               for (const auto& d : module_path) dirs += (dirs.empty() ? "" : ":") + d;
                               return dirs;
                             }()) +
                             ")");
}

bool register_group_support(std::unique_ptr<GroupSupport> support) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.group) {
    log::get("compose")->error("group support is registered twice; keeping the first");
    return false;
  }
  r.group = std::move(support);
  return true;
}

const GroupSupport* group_support() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.group.get();
}

}  // namespace dango::compose
