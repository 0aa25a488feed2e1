// The "script" provider type of dango-daemon: a script::Provider made from the provider's
// "config", which is script::ProviderOptions in JSON (see
// include/dango/services/script/options.hpp):
//
//   {"name": "scripts", "type": "script", "provider_id": 4,
//    "config": {"interpreter": {"name": "main", "language": "lua", "time_limit_ms": 5000}}}
//
// ("interpreters": [...] hosts several.) Validation (before anything starts) checks the options,
// that interpreter names are unique and that every language is registered; a language's own
// checks (a Lua memory_limit too small, a memory_limit for python) run when the provider starts
// it. Either way the error is a ConfigError whose key path starts with the provider's. Built as
// libdango-module-script.so.

#include "dango/compose/module.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dango/compose/entry_list.hpp"
#include "dango/compose/provider_component.hpp"
#include "dango/services/script/provider.hpp"

namespace dango::script {
namespace {

using compose::EntryList;

// The entries of the config, as the user wrote them.
const EntryList kInterpreters{.list_key = "interpreters",
                              .single_key = "interpreter",
                              .entry = "interpreter",
                              .kind = "language",
                              .kind_key = "language"};

// Options read from `config` and checked as far as possible without starting an interpreter.
ProviderOptions checked_options(const nlohmann::json& config, std::string_view path) {
  ProviderOptions options = ProviderOptions::from_json(config, path);
  std::vector<std::pair<std::string, std::string>> entries;
  for (const InterpreterConfig& interpreter : options.interpreters) {
    entries.emplace_back(interpreter.name, interpreter.language);
  }
  kInterpreters.check(config, path, entries, registered_languages());
  return options;
}

// The provider. Stopping it (destruction) stops serving, lets running scripts finish or reach
// their time limit, then closes the interpreters.
std::unique_ptr<compose::Component> make_component(const compose::ComponentArgs& args) {
  ProviderOptions options = checked_options(args.config, args.config_path);
  try {
    return std::make_unique<compose::ProviderComponent<Provider>>(
        std::make_unique<Provider>(args.engine, args.provider_id, std::move(options), args.pool));
  } catch (const ConfigError& e) {
    kInterpreters.rethrow(e, args.config, args.config_path);
  }
}

class ScriptModule : public compose::Module {
 public:
  void validate(const nlohmann::json& config, std::string_view path) const override {
    (void)checked_options(config, path);
  }
  std::unique_ptr<compose::Component> create(const compose::ComponentArgs& args) const override {
    return make_component(args);
  }
};

}  // namespace
}  // namespace dango::script

DANGO_REGISTER_MODULE(script, ::dango::script::ScriptModule)
