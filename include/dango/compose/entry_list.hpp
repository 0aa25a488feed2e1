#pragma once
// EntryList: the checks a module makes on a component config that hosts named entries of
// registered kinds — blob targets of a target type, script interpreters of a language — written
// either as a list ("targets": [...]) or as one entry ("target": {...}):
//
//   const compose::EntryList kTargets{.list_key = "targets", .single_key = "target",
//                                     .entry = "target", .kind = "target type"};
//   kTargets.check(config, path, {{"data", "file"}}, registered_target_types());
//
// Every error is a ConfigError naming the key as the user wrote it.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dango/common/error.hpp"

namespace dango::compose {

struct EntryList {
  std::string_view list_key;    // "targets"
  std::string_view single_key;  // "target"
  std::string_view entry;       // what an entry is called in messages: "target"
  std::string_view kind;        // what its kind is called: "target type"
  std::string_view kind_key;    // the entry's key holding its kind ("type")

  // The key path of entry `index` as the user wrote it: "path.targets[index]", or
  // "path.target" for the single form.
  std::string path_of(const nlohmann::json& config, std::string_view path, size_t index) const;

  // Checks that the entries' names are unique and their kinds registered. `entries` holds
  // (name, kind) in the order of the config. Throws ConfigError ("path.targets[1].name:
  // duplicate target name \"d\"", "path.target.type: unknown target type \"tape\" (registered:
  // file, memory)").
  void check(const nlohmann::json& config, std::string_view path,
             const std::vector<std::pair<std::string, std::string>>& entries,
             const std::vector<std::string>& registered) const;

  // Rethrows `error`, raised by a provider with keys relative to its options
  // ("targets[0].path: ..."), with the keys from the process's root as the user wrote them
  // ("providers[1].config.target.path: ...").
  [[noreturn]] void rethrow(const ConfigError& error, const nlohmann::json& config,
                            std::string_view config_path) const;
};

}  // namespace dango::compose
