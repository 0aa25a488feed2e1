// Reading and writing the script service's options (include/dango/services/script/options.hpp).

#include "dango/services/script/options.hpp"

#include "dango/common/config.hpp"

namespace dango::script {

InterpreterConfig InterpreterConfig::from_json(const nlohmann::json& json, std::string_view path) {
  InterpreterConfig config;
  config::ConfigReader reader{json, std::string(path)};
  reader.get("name", config.name);
  reader.require("language", config.language);
  reader.get("time_limit_ms", config.time_limit);
  reader.get("memory_limit", config.memory_limit);
  reader.finish();
  if (config.name.empty()) config::fail(config::join(path, "name"), "must not be empty");
  if (config.time_limit.count() <= 0) {
    config::fail(config::join(path, "time_limit_ms"), "must be positive");
  }
  return config;
}

nlohmann::json InterpreterConfig::to_json() const {
  return {{"name", name},
          {"language", language},
          {"time_limit_ms", time_limit.count()},
          {"memory_limit", memory_limit}};
}

ProviderOptions ProviderOptions::from_json(const nlohmann::json& json, std::string_view path) {
  ProviderOptions options;
  config::ConfigReader reader{json, std::string(path)};
  reader.get_list_or_single("interpreters", "interpreter", options.interpreters);
  reader.get("max_code_size", options.max_code_size);
  reader.get("max_output_size", options.max_output_size);
  reader.finish();
  if (options.max_code_size == 0) {
    config::fail(config::join(path, "max_code_size"), "must be at least 1");
  }
  return options;
}

nlohmann::json ProviderOptions::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& interpreter : interpreters) list.push_back(interpreter.to_json());
  return {{"interpreters", list},
          {"max_code_size", max_code_size},
          {"max_output_size", max_output_size}};
}

}  // namespace dango::script
