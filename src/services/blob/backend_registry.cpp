// The registry of target types, filled at static-initialisation time by
// DANGO_REGISTER_BLOB_BACKEND; and the public listing built on it.

#include <cstdio>
#include <cstdlib>
#include <map>

#include "services/blob/backend.hpp"

namespace dango::blob {
namespace {

std::map<std::string, BackendType, std::less<>>& registry() {
  static std::map<std::string, BackendType, std::less<>> types;  // filled before main()
  return types;
}

}  // namespace

bool register_backend(std::string_view name, BackendType type) {
  if (!registry().emplace(std::string(name), std::move(type)).second) {
    std::fprintf(stderr, "dango::blob: target type \"%.*s\" registered twice\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return true;
}

const BackendType* find_backend(std::string_view name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> registered_target_types() {
  std::vector<std::string> names;
  for (const auto& [name, type] : registry()) names.push_back(name);
  return names;
}

nlohmann::json example_target_config(std::string_view type, const std::string& scratch_dir) {
  const BackendType* found = find_backend(type);
  if (found == nullptr) {
    throw Error(ErrorCode::kUnknownTargetType, "no target type \"" + std::string(type) + "\"");
  }
  return found->example_config(scratch_dir);
}

}  // namespace dango::blob
