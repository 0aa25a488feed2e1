// Parsing and validation of a process's JSON description (see process_config.hpp).

#include "dango/compose/process_config.hpp"

#include <algorithm>
#include <set>

#include "dango/common/config.hpp"
#include "dango/compose/group_support.hpp"
#include "dango/compose/module.hpp"
#include "dango/thread/options.hpp"

namespace dango::compose {
namespace {

using config::fail;
using config::join;

// Line and column (1-based) of byte `offset` (1-based, as nlohmann reports it) in `text`.
std::pair<size_t, size_t> line_and_column(std::string_view text, size_t offset) {
  size_t line = 1, column = 0;
  for (size_t i = 0; i < std::min(offset, text.size() + 1) && i < text.size(); ++i) {
    if (i + 1 == offset) break;
    if (text[i] == '\n') {
      ++line;
      column = 0;
    } else {
      ++column;
    }
  }
  return {line, column + 1};
}

const std::string kNoGroupSupport =
    "this dango-daemon has no group support (no group component is linked or loaded)";

std::vector<std::string> pool_names(const thread::ThreadsOptions& threads) {
  std::vector<std::string> names{std::string(thread::kPrimary)};
  for (const auto& pool : threads.pools) names.push_back(pool.name);
  return names;
}

// Providers without an id get the lowest free one from 1 up, in the order written.
void assign_provider_ids(std::vector<ProviderConfig>& providers, const std::vector<bool>& has_id) {
  std::set<rpc::ProviderId> used;
  for (size_t i = 0; i < providers.size(); ++i) {
    if (has_id[i]) used.insert(providers[i].provider_id);
  }
  rpc::ProviderId next = 1;
  for (size_t i = 0; i < providers.size(); ++i) {
    if (has_id[i]) continue;
    while (used.count(next)) ++next;
    providers[i].provider_id = next;
    used.insert(next);
  }
}

// A duplicate name or id is reported at the later of the two entries.
void check_unique(const std::vector<ProviderConfig>& providers) {
  for (size_t i = 0; i < providers.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (providers[j].name == providers[i].name) {
        fail(join(join("providers", i), "name"),
             "duplicate provider name \"" + providers[i].name + "\"");
      }
      if (providers[j].provider_id == providers[i].provider_id) {
        fail(join(join("providers", i), "provider_id"),
             "duplicate provider id " + std::to_string(providers[i].provider_id) + " (also \"" +
                 providers[j].name + "\")");
      }
    }
  }
}

}  // namespace

DependencyRef DependencyRef::parse(const std::string& spec, std::string_view path) {
  DependencyRef ref;
  ref.spec = spec;
  const size_t at = spec.find('@');
  ref.name = spec.substr(0, at);
  if (ref.name.empty()) fail(path, "\"" + spec + "\" names no provider (expected name[@where])");
  if (at == std::string::npos) return ref;
  const std::string where = spec.substr(at + 1);
  if (where == "group") {
    ref.where = Where::kGroup;
  } else if (where.find("://") != std::string::npos && where.find("://") > 0) {
    ref.where = Where::kAddress;
    ref.address = where;
  } else {
    fail(path, "\"" + spec + "\": expected name, name@group or name@<transport>://<location>");
  }
  return ref;
}

ProviderConfig ProviderConfig::from_json(const nlohmann::json& json, std::string_view path,
                                         bool* has_id) {
  ProviderConfig p;
  config::ConfigReader reader(json, std::string(path));
  reader.require("name", p.name);
  if (p.name.empty()) fail(join(path, "name"), "must not be empty");
  if (p.name.find('@') != std::string::npos) fail(join(path, "name"), "must not contain '@'");
  reader.require("type", p.type);
  const bool id_given = reader.get("provider_id", p.provider_id);
  if (has_id) *has_id = id_given;
  reader.get("pool", p.pool);
  if (reader.get("config", p.config) && !p.config.is_object()) {
    fail(join(path, "config"), "expected an object, got " + config::type_name(p.config));
  }
  nlohmann::json deps = nlohmann::json::object();
  if (reader.get("dependencies", deps)) {
    const std::string deps_path = join(path, "dependencies");
    if (!deps.is_object()) fail(deps_path, "expected an object, got " + config::type_name(deps));
    for (const auto& [slot, value] : deps.items()) {
      const std::string slot_path = join(deps_path, slot);
      std::vector<std::string> specs;
      if (value.is_string()) {
        specs.push_back(value.get<std::string>());
      } else if (value.is_array()) {
        config::read_value(value, slot_path, specs);
      } else {
        fail(slot_path,
             "expected a string or an array of strings, got " + config::type_name(value));
      }
      auto& refs = p.dependencies[slot];
      for (size_t i = 0; i < specs.size(); ++i) {
        refs.push_back(
            DependencyRef::parse(specs[i], value.is_array() ? join(slot_path, i) : slot_path));
      }
    }
  }
  reader.finish();
  return p;
}

nlohmann::json ProviderConfig::to_json() const {
  nlohmann::json deps = nlohmann::json::object();
  for (const auto& [slot, refs] : dependencies) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& ref : refs) list.push_back(ref.spec);
    deps[slot] = list;
  }
  return {{"name", name}, {"type", type},     {"provider_id", provider_id},
          {"pool", pool}, {"config", config}, {"dependencies", deps}};
}

// The provider's dependencies against the module's slots and the other providers.
static void check_dependencies(const ProviderConfig& provider, std::string_view path,
                               const std::vector<DependencySlot>& slots,
                               const std::vector<ProviderConfig>& existing) {
  const std::string deps_path = join(path, "dependencies");
  for (const auto& [name, refs] : provider.dependencies) {
    auto slot = std::find_if(slots.begin(), slots.end(), [&](auto& s) { return s.name == name; });
    if (slot == slots.end()) {
      std::string accepted;
      for (const auto& s : slots) accepted += (accepted.empty() ? "" : ", ") + s.name;
      fail(join(deps_path, name), "unknown dependency for type \"" + provider.type +
                                      "\" (accepted: " + (accepted.empty() ? "none" : accepted) +
                                      ")");
    }
    if (!slot->multiple && refs.size() != 1) {
      fail(join(deps_path, name),
           "expected exactly one provider, got " + std::to_string(refs.size()));
    }
    for (const auto& ref : refs) {
      if (ref.where == DependencyRef::Where::kGroup && group_support() == nullptr) {
        fail(join(deps_path, name), "\"" + ref.spec + "\": " + kNoGroupSupport);
      }
      if (ref.where != DependencyRef::Where::kLocal) continue;
      auto target = std::find_if(existing.begin(), existing.end(),
                                 [&](auto& p) { return p.name == ref.name; });
      if (target == existing.end()) {
        if (ref.name == provider.name) {
          fail(join(deps_path, name), "dependency cycle " + ref.name + " -> " + ref.name);
        }
        fail(join(deps_path, name), "missing dependency: no provider named \"" + ref.name + "\"");
      }
      if (!slot->type.empty() && target->type != slot->type) {
        fail(join(deps_path, name), "\"" + ref.name + "\" is of type \"" + target->type +
                                        "\", expected \"" + slot->type + "\"");
      }
    }
  }
  for (const auto& slot : slots) {
    if (slot.required && !provider.dependencies.count(slot.name)) {
      fail(join(deps_path, slot.name), "missing required dependency");
    }
  }
}

const Module& validate_provider(const ProviderConfig& provider, std::string_view path,
                                const std::vector<ProviderConfig>& existing,
                                const std::vector<std::string>& pools,
                                const std::vector<std::string>& module_path) {
  for (const auto& other : existing) {
    if (other.name == provider.name) {
      fail(join(path, "name"), "duplicate provider name \"" + provider.name + "\"");
    }
    if (other.provider_id == provider.provider_id) {
      fail(join(path, "provider_id"), "duplicate provider id " +
                                          std::to_string(provider.provider_id) + " (also \"" +
                                          other.name + "\")");
    }
  }
  const Module& module = load_module(provider.type, module_path, join(path, "type"));
  if (!provider.pool.empty() &&
      std::find(pools.begin(), pools.end(), provider.pool) == pools.end()) {
    fail(join(path, "pool"), "unknown pool \"" + provider.pool + "\"");
  }
  module.validate(provider.config, join(path, "config"));
  check_dependencies(provider, path, module.dependencies(), existing);
  return module;
}

std::vector<size_t> start_order(const std::vector<ProviderConfig>& providers) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < providers.size(); ++i) index[providers[i].name] = i;
  enum class Mark { kNew, kVisiting, kDone };
  std::vector<Mark> marks(providers.size(), Mark::kNew);
  std::vector<size_t> order, stack;
  // Depth-first, dependencies first; `stack` holds the path for the cycle's message.
  std::function<void(size_t)> visit = [&](size_t i) {
    marks[i] = Mark::kVisiting;
    stack.push_back(i);
    for (const auto& [slot, refs] : providers[i].dependencies) {
      for (const auto& ref : refs) {
        // "name@group" orders too when this process has a provider of that name: the process
        // may be the member that serves it.
        if (ref.where == DependencyRef::Where::kAddress) continue;
        auto it = index.find(ref.name);
        if (it == index.end()) continue;  // reported by validate_provider (local), or remote
        if (marks[it->second] == Mark::kVisiting) {
          std::string cycle;
          auto from = std::find(stack.begin(), stack.end(), it->second);
          for (; from != stack.end(); ++from) cycle += providers[*from].name + " -> ";
          fail(join(join(join("providers", i), "dependencies"), slot),
               "dependency cycle " + cycle + ref.name);
        }
        if (marks[it->second] == Mark::kNew) visit(it->second);
      }
    }
    stack.pop_back();
    marks[i] = Mark::kDone;
    order.push_back(i);
  };
  for (size_t i = 0; i < providers.size(); ++i) {
    if (marks[i] == Mark::kNew) visit(i);
  }
  return order;
}

ProcessConfig ProcessConfig::parse(std::string_view text,
                                   const std::vector<std::string>& module_path) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    auto [line, column] = line_and_column(text, e.byte);
    std::string what = e.what();
    // nlohmann's message repeats the byte offset; keep its explanation after "error: ".
    auto pos = what.find("error: ");
    pos = what.find(": ", pos == std::string::npos ? 0 : pos + 7);
    throw ConfigError("config: JSON syntax error at line " + std::to_string(line) + ", column " +
                      std::to_string(column) + ": " +
                      (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
  return from_json(json, module_path);
}

ProcessConfig ProcessConfig::from_json(const nlohmann::json& json,
                                       const std::vector<std::string>& module_path) {
  ProcessConfig c;
  config::ConfigReader reader(json, "");
  nlohmann::json engine_json = nlohmann::json::object();
  for (const char* key : {"transport", "threads", "rpc"}) {
    nlohmann::json value;
    if (reader.get(key, value)) engine_json[key] = value;
  }
  // A daemon serves: without a transport it listens on a free loopback port.
  if (!engine_json.contains("transport")) engine_json["transport"] = kDefaultTransport;
  c.engine = rpc::EngineOptions::from_json(engine_json, "");
  if (c.engine.address.find("://") == std::string::npos) {
    fail("transport", "\"" + c.engine.address +
                          "\" does not listen: give an address such as tcp://0.0.0.0:7000");
  }
  nlohmann::json monitoring;
  if (reader.get("monitoring", monitoring)) {
    c.monitoring = monitor::MonitoringOptions::from_json(monitoring, "monitoring");
  }
  if (reader.get("group", c.group)) {
    if (group_support() == nullptr) fail("group", kNoGroupSupport);
    group_support()->validate(c.group, "group");
  }
  nlohmann::json providers = nlohmann::json::array();
  reader.get("providers", providers);
  if (!providers.is_array())
    fail("providers", "expected an array, got " + config::type_name(providers));
  reader.finish();

  std::vector<bool> has_id(providers.size());
  for (size_t i = 0; i < providers.size(); ++i) {
    bool given = false;
    c.providers.push_back(ProviderConfig::from_json(providers[i], join("providers", i), &given));
    has_id[i] = given;
  }
  assign_provider_ids(c.providers, has_id);
  check_unique(c.providers);
  const auto pools = pool_names(c.engine.threads);
  for (size_t i = 0; i < c.providers.size(); ++i) {
    std::vector<ProviderConfig> others = c.providers;  // dependencies may name any other entry
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
    validate_provider(c.providers[i], join("providers", i), others, pools, module_path);
  }
  for (size_t i = 0; i < c.providers.size(); ++i) {
    for (const auto& [slot, refs] : c.providers[i].dependencies) {
      for (const auto& ref : refs) {
        if (ref.where == DependencyRef::Where::kGroup && c.group.is_null()) {
          fail(join(join(join("providers", i), "dependencies"), slot),
               "\"" + ref.spec + "\" needs a \"group\" section");
        }
      }
    }
  }
  (void)start_order(c.providers);  // cycles
  return c;
}

nlohmann::json ProcessConfig::to_json() const {
  nlohmann::json json = engine.to_json();
  if (monitoring) json["monitoring"] = monitoring->to_json();
  if (!group.is_null()) json["group"] = group;
  json["providers"] = nlohmann::json::array();
  for (const auto& p : providers) json["providers"].push_back(p.to_json());
  return json;
}

}  // namespace dango::compose
