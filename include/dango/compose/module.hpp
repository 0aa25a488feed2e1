#pragma once
// Modules: how the composition daemon (dango-daemon) makes providers of any component from the
// "providers" section of a process's JSON. Each component (kv, blob, group, an application, or
// a user's own library) registers one Module under its `type` name:
//
//   // src/services/kv/module.cpp — the only file a component adds for the daemon
//   class KvModule : public dango::compose::Module {
//    public:
//     std::vector<dango::compose::DependencySlot> dependencies() const override { return {}; }
//     void validate(const nlohmann::json& config, std::string_view path) const override {
//       (void)kv::ProviderOptions::from_json(config, path);   // ConfigError naming the key
//     }
//     std::unique_ptr<dango::compose::Component> create(
//         const dango::compose::ComponentArgs& args) const override {
//       return std::make_unique<KvComponent>(args);   // owns a kv::Provider
//     }
//   };
//   DANGO_REGISTER_MODULE(kv, KvModule)
//
// A built-in module is registered when its shared library is loaded: a component's module.cpp
// builds as libdango-module-<type>.so (dango::<type>_module), which dango-daemon and dango-ctl
// link, so the component's own library never depends on this layer. Any other module is a
// shared library found on the module path (--module-path DIR:DIR, or DANGO_MODULE_PATH) as
// `libdango-module-<type>.so` or `<type>.so`, loaded with dlopen the first time a provider of
// that type is configured, and never unloaded. An out-of-tree module links dango::compose
// (find_package(dango)) and uses the same macro.
//
// Life of a provider in the daemon: validate() for every provider before anything starts;
// then create() in dependency order (a provider's local dependencies are created first and
// passed to it); at shutdown (or `dango-ctl remove-provider`) stop() and then destruction, in
// the reverse order. The daemon owns the Component.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"

namespace dango::compose {

class Component;

// One dependency a module accepts, under "dependencies": {"<name>": "meta" or [...]}.
struct DependencySlot {
  std::string name{};     // the key in the provider's "dependencies" object
  std::string type{};     // the provider type it must be ("kv"); "" accepts any type
  bool required = false;  // absent required slots are a config error
  bool multiple = false;  // accepts a list of providers (otherwise exactly one)
};

// A dependency after resolution: which provider, where. For a local one, `local` points to the
// running component (created before the dependent, destroyed after it); for a remote one
// (`name@tcp://...` or `name@group`) the daemon asked that process which id and type it has.
struct ResolvedDependency {
  std::string spec{};               // as written: "meta", "meta@tcp://h:7000", "meta@group"
  std::string name{};               // the provider's name ("meta")
  std::string type{};               // its type ("kv")
  std::string address{};            // the process serving it (this engine's address if local)
  rpc::ProviderId provider_id = 0;  // its provider id there
  Component* local = nullptr;       // the component in this process; nullptr when remote

  bool is_local() const { return local != nullptr; }
  nlohmann::json to_json() const;
};

// What create() receives. References are valid during create() only: copy what you keep.
struct ComponentArgs {
  rpc::Engine& engine;           // the process's engine (outlives every component)
  std::string name;              // the provider's name, unique in the process
  rpc::ProviderId provider_id;   // unique in the process
  thread::Pool pool;             // where its handlers run (the engine's rpc pool by default)
  const nlohmann::json& config;  // its "config" object ({} when absent), already validate()d
  std::string config_path;       // key path of `config` for errors: "providers[2].config"
  // Resolved dependencies by slot name, in the order written; every required slot is present.
  std::map<std::string, std::vector<ResolvedDependency>> dependencies;

  // The single dependency of slot `slot`; throws ConfigError naming the slot when absent.
  const ResolvedDependency& dependency(std::string_view slot) const;
};

// A running provider owned by the daemon (typically wraps a Provider subclass).
class Component {
 public:
  virtual ~Component() = default;
  // The effective configuration (defaults filled in), shown by `dango-ctl query` under the
  // provider's "config". Called from RPC handlers: must be thread-safe.
  virtual nlohmann::json config() const = 0;
  // Flushes and stops serving; called once before destruction, dependents first. Errors are
  // logged by the daemon. Default: nothing (destruction is enough).
  virtual void stop() {}
};

// A provider type the daemon can make.
class Module {
 public:
  virtual ~Module() = default;
  // The dependency slots a provider of this type accepts; other keys are config errors.
  virtual std::vector<DependencySlot> dependencies() const { return {}; }
  // Checks `config` (the provider's "config" object) before anything starts; throws ConfigError
  // with a key path starting with `path` ("providers[0].config.database.type: ..."). Default:
  // any config is accepted.
  virtual void validate(const nlohmann::json& config, std::string_view path) const {
    (void)config;
    (void)path;
  }
  // Makes the provider; throws dango::Error (ConfigError naming args.config_path when the
  // config turns out to be unusable, e.g. a path that cannot be opened).
  virtual std::unique_ptr<Component> create(const ComponentArgs& args) const = 0;
};

// Registers `module` under `type` (first registration wins; a second is logged and ignored).
// Returns true when registered. Called by DANGO_REGISTER_MODULE at static-initialisation time.
bool register_module(std::string type, std::unique_ptr<Module> module);
// The module registered under `type`, or nullptr.
const Module* find_module(std::string_view type);
// Every registered type, sorted.
std::vector<std::string> module_types();

// The module of `type`: registered already, or loaded from `module_path` (directories tried
// in order). Throws ConfigError naming `key_path` when there is none ("providers[1].type:
// unknown provider type \"x\" (registered: kv, blob; searched: /opt/mods)") or when a library
// found fails to load or registers no such module.
const Module& load_module(std::string_view type, const std::vector<std::string>& module_path,
                          std::string_view key_path);
// Splits "a:b:c" into directories (empty parts dropped).
std::vector<std::string> split_module_path(std::string_view text);

}  // namespace dango::compose

// Registers ModuleClass (default-constructible, derived from dango::compose::Module) under the
// provider type `type` (an identifier: kv, blob, my_component).
#define DANGO_REGISTER_MODULE(type, ModuleClass)                                 \
  namespace {                                                                    \
  [[maybe_unused]] const bool dango_module_registered_##type =                   \
      ::dango::compose::register_module(#type, std::make_unique<ModuleClass>()); \
  }
