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

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dango/compose/entry_list.hpp"
#include "dango/compose/provider_component.hpp"
#include "dango/services/blob/provider.hpp"

namespace dango::blob {
namespace {

using compose::EntryList;

// The entries of the config, as the user wrote them.
const EntryList kTargets{.list_key = "targets",
                         .single_key = "target",
                         .entry = "target",
                         .kind = "target type",
                         .kind_key = "type"};

// Options read from `config` and checked as far as possible without opening a target.
ProviderOptions checked_options(const nlohmann::json& config, std::string_view path) {
  ProviderOptions options = ProviderOptions::from_json(config, path);
  std::vector<std::pair<std::string, std::string>> entries;
  for (const TargetConfig& target : options.targets) entries.emplace_back(target.name, target.type);
  kTargets.check(config, path, entries, registered_target_types());
  return options;
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
    kTargets.rethrow(e, args.config, args.config_path);
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
