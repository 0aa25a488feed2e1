// Reading and reporting the key/value service's options (options.hpp).

#include "dango/services/kv/options.hpp"

#include "dango/common/config.hpp"

namespace dango::kv {

DatabaseConfig DatabaseConfig::from_json(const nlohmann::json& json, std::string_view path) {
  config::ConfigReader reader(json, std::string(path));
  DatabaseConfig out;
  reader.require("name", out.name);
  reader.get("type", out.type);
  if (reader.get("config", out.config) && !out.config.is_object()) {
    config::fail(config::join(path, "config"),
                 "expected an object, got " + config::type_name(out.config));
  }
  reader.finish();
  if (out.name.empty()) config::fail(config::join(path, "name"), "must not be empty");
  out.config_path = config::join(path, "config");
  return out;
}

DatabaseConfig DatabaseConfig::from_flat_json(const nlohmann::json& json, std::string_view path) {
  config::ConfigReader reader(json, std::string(path));
  DatabaseConfig out;
  out.name = "default";
  reader.get("name", out.name);
  reader.get("type", out.type);
  if (out.name.empty()) config::fail(config::join(path, "name"), "must not be empty");
  // Every other key is the backend's, checked by the backend when it opens.
  for (const auto& [key, value] : json.items()) {
    if (key != "name" && key != "type") out.config[key] = value;
  }
  out.config_path = std::string(path);
  return out;
}

nlohmann::json DatabaseConfig::to_json() const {
  return {{"name", name}, {"type", type}, {"config", config}};
}

ProviderOptions ProviderOptions::from_json(const nlohmann::json& json, std::string_view path) {
  config::ConfigReader reader(json, std::string(path));
  ProviderOptions out;
  reader.get("databases", out.databases);
  if (reader.has("database")) {
    nlohmann::json single_json;
    reader.get("database", single_json);
    const std::string single_path = config::join(path, "database");
    DatabaseConfig single = DatabaseConfig::from_flat_json(single_json, single_path);
    for (const auto& db : out.databases) {
      if (db.name == single.name) {
        config::fail(config::join(single_path, "name"),
                     "database \"" + single.name + "\" is also listed in \"databases\"");
      }
    }
    out.databases.push_back(std::move(single));
  }
  reader.get("max_key_size", out.max_key_size);
  reader.get("max_value_size", out.max_value_size);
  reader.get("inline_limit", out.inline_limit);
  reader.get("max_list_reply", out.max_list_reply);
  reader.finish();
  if (out.max_key_size == 0) config::fail(config::join(path, "max_key_size"), "must be > 0");
  if (out.max_list_reply == 0) config::fail(config::join(path, "max_list_reply"), "must be > 0");
  return out;
}

nlohmann::json ProviderOptions::to_json() const {
  nlohmann::json dbs = nlohmann::json::array();
  for (const auto& db : databases) dbs.push_back(db.to_json());
  return {{"databases", dbs},
          {"max_key_size", max_key_size},
          {"max_value_size", max_value_size},
          {"inline_limit", inline_limit},
          {"max_list_reply", max_list_reply}};
}

}  // namespace dango::kv
