// Reading and writing the blob service's options (options.hpp) as JSON.

#include "dango/services/blob/options.hpp"

#include "dango/common/config.hpp"

namespace dango::blob {

TargetConfig TargetConfig::from_json(const nlohmann::json& json, std::string_view path) {
  if (!json.is_object()) config::fail(path, "expected an object, got " + config::type_name(json));
  TargetConfig target;
  config::ConfigReader reader{json, std::string(path)};
  reader.get("name", target.name);
  reader.require("type", target.type);
  if (target.name.empty()) config::fail(config::join(path, "name"), "must not be empty");
  // The type's own keys are checked by the target itself (it names them with the same path).
  for (const auto& [key, value] : json.items()) {
    if (key != "name" && key != "type") target.config[key] = value;
  }
  return target;
}

nlohmann::json TargetConfig::to_json() const {
  nlohmann::json json = config.is_object() ? config : nlohmann::json::object();
  json["name"] = name;
  json["type"] = type;
  return json;
}

StagingOptions StagingOptions::from_json(const nlohmann::json& json, std::string_view path) {
  StagingOptions staging;
  config::ConfigReader reader{json, std::string(path)};
  reader.get("buffer_size", staging.buffer_size);
  reader.get("buffers", staging.buffers);
  reader.get("pipeline_depth", staging.pipeline_depth);
  reader.finish();
  if (staging.buffer_size < 4096 || staging.buffer_size % 4096 != 0) {
    config::fail(config::join(path, "buffer_size"), "must be a positive multiple of 4096");
  }
  if (staging.buffers == 0) config::fail(config::join(path, "buffers"), "must be at least 1");
  if (staging.pipeline_depth == 0 || staging.pipeline_depth > staging.buffers) {
    config::fail(config::join(path, "pipeline_depth"), "must be between 1 and \"buffers\"");
  }
  return staging;
}

nlohmann::json StagingOptions::to_json() const {
  return {{"buffer_size", buffer_size}, {"buffers", buffers}, {"pipeline_depth", pipeline_depth}};
}

ProviderOptions ProviderOptions::from_json(const nlohmann::json& json, std::string_view path) {
  ProviderOptions options;
  config::ConfigReader reader{json, std::string(path)};
  reader.get_list_or_single("targets", "target", options.targets);
  reader.get("inline_threshold", options.inline_threshold);
  reader.get("staging", options.staging);
  reader.finish();
  return options;
}

nlohmann::json ProviderOptions::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& target : targets) list.push_back(target.to_json());
  return {
      {"targets", list}, {"inline_threshold", inline_threshold}, {"staging", staging.to_json()}};
}

}  // namespace dango::blob
