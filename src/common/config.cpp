#include "dango/common/config.hpp"

namespace dango::config {

std::string join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return std::string(path) + "." + std::string(key);
}

std::string join(std::string_view path, size_t index) {
  return std::string(path) + "[" + std::to_string(index) + "]";
}

void fail(std::string_view path, std::string_view message) {
  throw ConfigError(std::string(path) + ": " + std::string(message));
}

std::string type_name(const nlohmann::json& json) {
  if (json.is_number_unsigned()) return "unsigned integer";
  if (json.is_number_integer()) return "integer";
  if (json.is_number_float()) return "number";
  return json.type_name();
}

ConfigReader::ConfigReader(const nlohmann::json& json, std::string path)
    : json_(json), path_(std::move(path)) {
  if (!json_.is_object()) fail(path_.empty() ? "<root>" : path_, "expected an object, got " + type_name(json_));
}

void ConfigReader::finish() const {
  for (const auto& [key, value] : json_.items()) {
    if (!seen_.count(key)) fail(join(path_, key), "unknown key");
  }
}

}  // namespace dango::config
