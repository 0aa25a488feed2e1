// The registry of target types, filled at static-initialisation time by
// DANGO_REGISTER_BLOB_BACKEND; and the public listing built on it.

#include <algorithm>
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

std::vector<std::string> example_target_names() {
  std::vector<std::string> names;
  for (const auto& [name, type] : registry()) {
    names.push_back(name);
    if (type.example_variants == nullptr) continue;
    for (const auto& [variant, config] : type.example_variants("")) {
      names.push_back(name + "." + variant);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

nlohmann::json example_target_config(std::string_view name, const std::string& scratch_dir) {
  const std::string_view type = name.substr(0, name.find('.'));
  const BackendType* found = find_backend(type);
  auto unknown = [&] {
    return Error(ErrorCode::kUnknownTargetType,
                 "no target type or example \"" + std::string(name) + "\"");
  };
  if (found == nullptr) throw unknown();
  if (type.size() == name.size()) return found->example_config(scratch_dir);
  if (found->example_variants == nullptr) throw unknown();
  const ExampleVariants variants = found->example_variants(scratch_dir);
  auto it = variants.find(std::string(name.substr(type.size() + 1)));
  if (it == variants.end()) throw unknown();
  return it->second;
}

TargetConfig example_target(std::string_view name, const std::string& scratch_dir) {
  return {.name = "default",
          .type = std::string(name.substr(0, name.find('.'))),
          .config = example_target_config(name, scratch_dir)};
}

}  // namespace dango::blob
