// The "blob" provider type of dango-daemon: a blob::Provider made from the provider's "config",
// which is blob::ProviderOptions in JSON (see include/dango/services/blob/options.hpp):
//
//   {"name": "data", "type": "blob", "provider_id": 2,
//    "config": {"target": {"name": "data", "type": "file", "path": "/tmp/store/data"}}}
//
// ("targets": [...] hosts several.) Validation (before anything starts) checks the options,
// that target names are unique and that every target type is registered; a target's own
// options ("path", "capacity", ...) are checked when the provider opens it. Either way the error
// is a ConfigError whose key path starts with the provider's. Built as libdango-module-blob.so.

#include "dango/compose/module.hpp"

#include <algorithm>
#include <memory>
#include <set>

#include "dango/common/config.hpp"
#include "dango/compose/provider_component.hpp"
#include "dango/services/blob/provider.hpp"

namespace dango::blob {
namespace {

// The key path of target `i` as the user wrote it: "target" for the single-target form.
std::string target_path(const nlohmann::json& config, std::string_view path, size_t i) {
  if (config.contains("target") && !config.contains("targets")) return config::join(path, "target");
  return config::join(config::join(path, "targets"), i);
}

// Options read from `config` and checked as far as possible without opening a target.
ProviderOptions checked_options(const nlohmann::json& config, std::string_view path) {
  ProviderOptions options = ProviderOptions::from_json(config, path);
  const std::vector<std::string> types = registered_target_types();
  std::set<std::string> names;
  for (size_t i = 0; i < options.targets.size(); ++i) {
    const TargetConfig& target = options.targets[i];
    if (!names.insert(target.name).second) {
      config::fail(config::join(target_path(config, path, i), "name"),
                   "duplicate target name \"" + target.name + "\"");
    }
    if (std::find(types.begin(), types.end(), target.type) == types.end()) {
      std::string list;
      for (const auto& type : types) list += (list.empty() ? "" : ", ") + type;
      config::fail(config::join(target_path(config, path, i), "type"),
                   "unknown target type \"" + target.type + "\" (registered: " + list + ")");
    }
  }
  return options;
}

// The provider names keys relative to its options ("targets[0].path: ..."); the daemon's user
// wants them from the process's root, as written (the single-target form says "target").
[[noreturn]] void rethrow_with_path(const ConfigError& e, const nlohmann::json& config,
                                    const std::string& config_path) {
  std::string message = e.what();
  const std::string relative = "targets[0]";
  if (message.rfind(relative, 0) == 0 && target_path(config, "", 0) == "target") {
    message.replace(0, relative.size(), "target");
  }
  throw ConfigError(config_path + "." + message);
}

// The provider. Stopping it (destruction) stops serving, then closes every target once its
// in-flight requests are done. A file target holds no write in the process (each completes
// before its reply), so closing its data file and journal leaves every write to the kernel;
// persist() is what survives a crash.
std::unique_ptr<compose::Component> make_component(const compose::ComponentArgs& args) {
  ProviderOptions options = checked_options(args.config, args.config_path);
  try {
    return std::make_unique<compose::ProviderComponent<Provider>>(
        std::make_unique<Provider>(args.engine, args.provider_id, std::move(options), args.pool));
  } catch (const ConfigError& e) {
    rethrow_with_path(e, args.config, args.config_path);
  }
}

class BlobModule : public compose::Module {
 public:
  void validate(const nlohmann::json& config, std::string_view path) const override {
    (void)checked_options(config, path);
  }
  std::unique_ptr<compose::Component> create(const compose::ComponentArgs& args) const override {
    return make_component(args);
  }
};

}  // namespace
}  // namespace dango::blob

DANGO_REGISTER_MODULE(blob, ::dango::blob::BlobModule)
