#pragma once
// The JSON description of one Dango process (DESIGN.md "Configuration"), parsed and validated
// as a whole before anything starts:
//   {"transport": ..., "threads": {...}, "rpc": {...}, "monitoring": {...}, "group": {...},
//    "providers": [{"name", "type", "provider_id", "pool", "config", "dependencies"}]}
// Every error is one ConfigError whose message starts with the key path
// ("providers[1].dependencies.metadata: unknown provider \"meta\"").

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/monitor/monitoring.hpp"

namespace dango::compose {

class Module;

// One entry of a provider's "dependencies": "meta", "meta@tcp://host:port" or "meta@group".
struct DependencyRef {
  enum class Where { kLocal, kAddress, kGroup };
  std::string spec{};  // as written
  std::string name{};  // the provider's name
  Where where = Where::kLocal;
  std::string address{};  // for kAddress

  // Parses `spec`; throws ConfigError naming `path` when it is malformed.
  static DependencyRef parse(const std::string& spec, std::string_view path);
};

struct ProviderConfig {
  std::string name{};               // required, unique in the process
  std::string type{};               // required: a registered or loadable module type
  rpc::ProviderId provider_id = 0;  // unique in the process (default: lowest free id >= 1)
  std::string pool{};               // pool of its handlers (default "": the rpc pool)
  nlohmann::json config = nlohmann::json::object();  // the component's own section
  // Slot name -> providers, in the order written (a single string is a list of one).
  std::map<std::string, std::vector<DependencyRef>> dependencies{};

  // Reads one entry of "providers" (no cross-checks); `has_id` tells whether an id was given.
  static ProviderConfig from_json(const nlohmann::json& json, std::string_view path,
                                  bool* has_id = nullptr);
  nlohmann::json to_json() const;  // `config` as given
};

// The transport of a process whose config names none: a free port on the loopback interface.
inline constexpr std::string_view kDefaultTransport = "tcp://127.0.0.1:0";

struct ProcessConfig {
  // "transport" (default kDefaultTransport; it must listen), "threads", "rpc".
  rpc::EngineOptions engine{};
  std::optional<monitor::MonitoringOptions> monitoring{};  // "monitoring" (absent: off)
  nlohmann::json group{};                                  // "group" (null: no group)
  std::vector<ProviderConfig> providers{};                 // in the order written

  // Parses JSON text (bad JSON: "config: JSON syntax error at line L, column C: ...") and
  // validates it (see from_json).
  static ProcessConfig parse(std::string_view text, const std::vector<std::string>& module_path);
  // Validates everything that can be known before starting: unknown keys, types, pools,
  // provider types (modules loaded from `module_path` as needed) and their configs, dependency
  // slots and types, missing local dependencies, cycles, duplicate names and ids, group
  // support. Throws ConfigError naming the key.
  static ProcessConfig from_json(const nlohmann::json& json,
                                 const std::vector<std::string>& module_path);
  // The configuration as validated (provider ids assigned, engine defaults filled in).
  nlohmann::json to_json() const;
};

// Checks one provider against the providers already in place (`existing`, validated) and
// `pools`: type, config, slots, local dependencies, unique name and id. Throws ConfigError.
const Module& validate_provider(const ProviderConfig& provider, std::string_view path,
                                const std::vector<ProviderConfig>& existing,
                                const std::vector<std::string>& pools,
                                const std::vector<std::string>& module_path);

// The providers' start order: each after its local dependencies (and after the providers of
// this process named by its "name@group" ones), otherwise as written.
// Throws ConfigError naming the first dependency on a cycle ("providers[0].dependencies.a:
// dependency cycle a -> b -> a").
std::vector<size_t> start_order(const std::vector<ProviderConfig>& providers);

}  // namespace dango::compose
