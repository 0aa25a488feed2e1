// The "kv" provider type of dango-daemon: a kv::Provider made from the provider's "config",
// which is kv::ProviderOptions in JSON (see include/dango/services/kv/options.hpp):
//
//   {"name": "meta", "type": "kv", "provider_id": 1,
//    "config": {"databases": [{"name": "meta", "type": "rocksdb",
//                              "config": {"path": "/tmp/store/meta"}}]}}
//
// or, for one database, {"config": {"database": {"type": "rocksdb", "path": "/tmp/store/meta"}}}.
//
// Validation (before anything starts) checks the options, that database names are unique and
// that every backend type is registered; a backend's own options ("path", "sync", ...) are
// checked when the provider opens the store. Either way the error is a ConfigError whose key
// path starts with the provider's ("providers[0].config.databases[0].config.path: ...").
// Built as libdango-module-kv.so (see the top CMakeLists.txt).

#include "dango/compose/module.hpp"

#include <memory>
#include <set>

#include "dango/common/config.hpp"
#include "dango/compose/provider_component.hpp"
#include "dango/services/kv/provider.hpp"
#include "dango/services/kv/types.hpp"

namespace dango::kv {
namespace {

// Options read from `config` and checked as far as possible without opening a store.
ProviderOptions checked_options(const nlohmann::json& config, std::string_view path) {
  ProviderOptions options = ProviderOptions::from_json(config, path);
  std::set<std::string> known;
  for (const auto& backend : available_backends()) known.insert(backend.name);
  std::set<std::string> names;
  // "databases" come first, then the single "database" if there is one.
  const size_t listed = options.databases.size() - (config.contains("database") ? 1 : 0);
  for (size_t i = 0; i < options.databases.size(); ++i) {
    const DatabaseConfig& db = options.databases[i];
    const std::string db_path = i < listed ? config::join(config::join(path, "databases"), i)
                                           : config::join(path, "database");
    if (!names.insert(db.name).second) {
      config::fail(config::join(db_path, "name"), "duplicate database name \"" + db.name + "\"");
    }
    if (!known.count(db.type)) {
      std::string list;
      for (const auto& name : known) list += (list.empty() ? "" : ", ") + name;
      config::fail(config::join(db_path, "type"),
                   "unknown backend \"" + db.type + "\" (available: " + list + ")");
    }
  }
  return options;
}

// The provider's errors name keys relative to its options ("databases[0].config.path: ...");
// the daemon's user wants them from the process's root.
[[noreturn]] void rethrow_with_path(const ConfigError& e, const std::string& config_path) {
  throw ConfigError(config_path + "." + e.what());
}

// The provider, its config read relative to the provider's "config" so that its errors are
// prefixed once. Stopping it (destruction) stops serving, then closes every database: the
// stores write what they buffer (RocksDB and LevelDB their memtables' log, LMDB its last
// transaction) and release their files.
std::unique_ptr<compose::Component> make_component(const compose::ComponentArgs& args) {
  (void)checked_options(args.config, args.config_path);
  ProviderOptions options = ProviderOptions::from_json(args.config);
  try {
    return std::make_unique<compose::ProviderComponent<Provider>>(
        std::make_unique<Provider>(args.engine, args.provider_id, std::move(options), args.pool));
  } catch (const ConfigError& e) {
    rethrow_with_path(e, args.config_path);
  }
}

class KvModule : public compose::Module {
 public:
  void validate(const nlohmann::json& config, std::string_view path) const override {
    (void)checked_options(config, path);
  }
  std::unique_ptr<compose::Component> create(const compose::ComponentArgs& args) const override {
    return make_component(args);
  }
};

}  // namespace
}  // namespace dango::kv

DANGO_REGISTER_MODULE(kv, ::dango::kv::KvModule)
