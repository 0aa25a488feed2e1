#pragma once
// Reading JSON configuration into options structs, with the key's path in every error:
//
//   ConfigReader r{json, "threads"};
//   r.get("stack_size", options.stack_size);       // optional: keeps the default when absent
//   r.require("name", options.name);                // required
//   r.finish();                                     // unknown keys are errors
//
// Errors are dango::ConfigError("threads.stack_size: expected an unsigned integer, got
// string").

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dango/common/error.hpp"

namespace dango::config {

// "path.key" or "path[3]".
std::string join(std::string_view path, std::string_view key);
std::string join(std::string_view path, size_t index);
[[noreturn]] void fail(std::string_view path, std::string_view message);
std::string type_name(const nlohmann::json& json);

// Converts one JSON value to T, throwing ConfigError naming `path` on a type mismatch.
template <typename T>
void read_value(const nlohmann::json& json, std::string_view path, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!json.is_boolean()) fail(path, "expected a boolean, got " + type_name(json));
    out = json.get<bool>();
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    // nlohmann stores a non-negative value built from a signed C++ integer as signed: accept it.
    if (!json.is_number_integer() || (!json.is_number_unsigned() && json.get<int64_t>() < 0)) {
      fail(path, "expected an unsigned integer, got " + type_name(json));
    }
    out = json.get<T>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!json.is_number_integer()) fail(path, "expected an integer, got " + type_name(json));
    out = json.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!json.is_number()) fail(path, "expected a number, got " + type_name(json));
    out = json.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!json.is_string()) fail(path, "expected a string, got " + type_name(json));
    out = json.get<std::string>();
  } else if constexpr (requires { typename T::rep; typename T::period; }) {
    // durations are written as integers in the unit of the field (its name says which)
    typename T::rep count{};
    read_value(json, path, count);
    out = T(count);
  } else if constexpr (std::is_same_v<T, nlohmann::json>) {
    out = json;
  } else if constexpr (requires { typename T::value_type; out.push_back(std::declval<typename T::value_type>()); }) {
    if (!json.is_array()) fail(path, "expected an array, got " + type_name(json));
    out.clear();
    for (size_t i = 0; i < json.size(); ++i) {
      typename T::value_type item{};
      read_value(json[i], join(path, i), item);
      out.push_back(std::move(item));
    }
  } else {
    // A struct with `static T from_json(const nlohmann::json&, std::string_view path)`.
    out = T::from_json(json, path);
  }
}

// Walks one JSON object, remembering which keys were read so that finish() can reject the rest.
class ConfigReader {
 public:
  // Throws ConfigError when `json` is not an object.
  ConfigReader(const nlohmann::json& json, std::string path);

  const std::string& path() const { return path_; }
  bool has(std::string_view key) const { return json_.contains(key); }

  // Reads `key` into `out` if present; leaves the default otherwise.
  template <typename T>
  bool get(std::string_view key, T& out) {
    seen_.emplace(key);
    auto it = json_.find(key);
    if (it == json_.end()) return false;
    read_value(*it, join(path_, key), out);
    return true;
  }
  // Reads a list written either as `list_key: [...]` or, for one item, as `single_key: {...}`
  // (both may be given: the single item comes last).
  template <typename T>
  void get_list_or_single(std::string_view list_key, std::string_view single_key,
                          std::vector<T>& out) {
    get(list_key, out);
    T single{};
    if (get(single_key, single)) out.push_back(std::move(single));
  }
  // Reads `key` into `out`; throws ConfigError naming the key when absent.
  template <typename T>
  void require(std::string_view key, T& out) {
    if (!get(key, out)) fail(join(path_, key), "missing required key");
  }
  // Reads a string key that must be one of `choices`, mapped to an enum value.
  template <typename E, typename Choices>  // Choices: a range of pair<string_view, E>
  bool get_enum(std::string_view key, E& out, const Choices& choices) {
    std::string text;
    if (!get(key, text)) return false;
    for (const auto& [name, value] : choices) {
      if (name == text) {
        out = value;
        return true;
      }
    }
    std::string names;
    for (const auto& choice : choices) names += (names.empty() ? "" : ", ") + std::string(choice.first);
    fail(join(path_, key), "unknown value \"" + text + "\" (expected one of: " + names + ")");
  }
  // Throws ConfigError naming the first key that was never read.
  void finish() const;

 private:
  const nlohmann::json& json_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace dango::config
