// The backend registry: filled at static-initialisation time by DANGO_REGISTER_KV_BACKEND.

#include <cstdio>
#include <cstdlib>
#include <map>

#include "services/kv/backend.hpp"

namespace dango::kv {
namespace {

struct Entry {
  BackendDescription description;
  BackendFactory factory;
};

// A function-local static, so registration from any translation unit finds it constructed.
std::map<std::string, Entry, std::less<>>& registry() {
  static std::map<std::string, Entry, std::less<>> entries;
  return entries;
}

}  // namespace

bool register_backend(BackendDescription description, BackendFactory factory) {
  std::string name = description.name;
  auto [it, inserted] = registry().emplace(name, Entry{std::move(description), std::move(factory)});
  if (!inserted) {
    std::fprintf(stderr, "dango kv: backend \"%s\" registered twice\n", name.c_str());
    std::abort();
  }
  return true;
}

std::vector<BackendDescription> available_backends() {
  std::vector<BackendDescription> out;
  for (const auto& [name, entry] : registry()) out.push_back(entry.description);
  return out;
}

bool backend_is_ordered(std::string_view type) {
  auto it = registry().find(type);
  return it != registry().end() && it->second.description.ordered;
}

std::unique_ptr<Backend> make_backend(std::string_view type, const nlohmann::json& config,
                                      const BackendContext& context) {
  auto it = registry().find(type);
  if (it == registry().end()) {
    std::string names;
    for (const auto& [name, entry] : registry()) names += (names.empty() ? "" : ", ") + name;
    throw Error(ErrorCode::UnknownBackend, "database \"" + context.name + "\": unknown backend \"" +
                                               std::string(type) + "\" (available: " + names + ")");
  }
  return it->second.factory(config.is_null() ? nlohmann::json::object() : config, context);
}

}  // namespace dango::kv
