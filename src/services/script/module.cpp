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

#include <algorithm>
#include <memory>
#include <set>

#include "dango/common/config.hpp"
#include "dango/compose/provider_component.hpp"
#include "dango/services/script/provider.hpp"

namespace dango::script {
namespace {

// The key path of interpreter `i` as the user wrote it: "interpreter" for the single form.
std::string interpreter_path(const nlohmann::json& config, std::string_view path, size_t i) {
  if (config.contains("interpreter") && !config.contains("interpreters")) {
    return config::join(path, "interpreter");
  }
  return config::join(config::join(path, "interpreters"), i);
}

// Options read from `config` and checked as far as possible without starting an interpreter.
ProviderOptions checked_options(const nlohmann::json& config, std::string_view path) {
  ProviderOptions options = ProviderOptions::from_json(config, path);
  const std::vector<std::string> languages = registered_languages();
  std::set<std::string> names;
  for (size_t i = 0; i < options.interpreters.size(); ++i) {
    const InterpreterConfig& interpreter = options.interpreters[i];
    if (!names.insert(interpreter.name).second) {
      config::fail(config::join(interpreter_path(config, path, i), "name"),
                   "duplicate interpreter name \"" + interpreter.name + "\"");
    }
    if (std::find(languages.begin(), languages.end(), interpreter.language) == languages.end()) {
      std::string list;
      for (const auto& language : languages) list += (list.empty() ? "" : ", ") + language;
      config::fail(config::join(interpreter_path(config, path, i), "language"),
                   "unknown language \"" + interpreter.language + "\" (registered: " + list + ")");
    }
  }
  return options;
}

// The provider names keys relative to its options ("interpreters[0].memory_limit: ..."); the
// daemon's user wants them from the process's root, as written.
[[noreturn]] void rethrow_with_path(const ConfigError& e, const nlohmann::json& config,
                                    const std::string& config_path) {
  std::string message = e.what();
  const std::string relative = "interpreters[0]";
  if (message.rfind(relative, 0) == 0 && interpreter_path(config, "", 0) == "interpreter") {
    message.replace(0, relative.size(), "interpreter");
  }
  throw ConfigError(config_path + "." + message);
}

// The provider. Stopping it (destruction) stops serving, lets running scripts finish or reach
// their time limit, then closes the interpreters.
std::unique_ptr<compose::Component> make_component(const compose::ComponentArgs& args) {
  ProviderOptions options = checked_options(args.config, args.config_path);
  try {
    return std::make_unique<compose::ProviderComponent<Provider>>(
        std::make_unique<Provider>(args.engine, args.provider_id, std::move(options), args.pool));
  } catch (const ConfigError& e) {
    rethrow_with_path(e, args.config, args.config_path);
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
