// EntryList (see include/dango/compose/entry_list.hpp).

#include "dango/compose/entry_list.hpp"

#include <algorithm>
#include <set>

#include "dango/common/config.hpp"

namespace dango::compose {

std::string EntryList::path_of(const nlohmann::json& config, std::string_view path,
                               size_t index) const {
  if (config.contains(single_key) && !config.contains(list_key)) {
    return config::join(path, single_key);
  }
  return config::join(config::join(path, list_key), index);
}

void EntryList::check(const nlohmann::json& config, std::string_view path,
                      const std::vector<std::pair<std::string, std::string>>& entries,
                      const std::vector<std::string>& registered) const {
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [name, kind_name] = entries[i];
    if (!names.insert(name).second) {
      config::fail(config::join(path_of(config, path, i), "name"),
                   "duplicate " + std::string(entry) + " name \"" + name + "\"");
    }
    if (std::find(registered.begin(), registered.end(), kind_name) == registered.end()) {
      std::string list;
      for (const auto& known : registered) list += (list.empty() ? "" : ", ") + known;
      config::fail(config::join(path_of(config, path, i), kind_key),
                   "unknown " + std::string(kind) + " \"" + kind_name + "\" (registered: " +
                       list + ")");
    }
  }
}

void EntryList::rethrow(const ConfigError& error, const nlohmann::json& config,
                        std::string_view config_path) const {
  std::string message = error.what();
  const std::string first = config::join(list_key, size_t{0});
  if (message.rfind(first, 0) == 0 && path_of(config, "", 0) == single_key) {
    message.replace(0, first.size(), single_key);
  }
  throw ConfigError(std::string(config_path) + "." + message);
}

}  // namespace dango::compose
