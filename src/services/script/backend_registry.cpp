// The registry of languages, filled at static-initialisation time by
// DANGO_REGISTER_SCRIPT_LANGUAGE.

#include <cstdio>
#include <cstdlib>
#include <map>

#include "services/script/backend.hpp"

namespace dango::script {
namespace {

std::map<std::string, BackendFactory, std::less<>>& registry() {
  static std::map<std::string, BackendFactory, std::less<>> languages;  // filled before main()
  return languages;
}

}  // namespace

bool register_language(std::string_view language, BackendFactory factory) {
  if (!registry().emplace(std::string(language), std::move(factory)).second) {
    std::fprintf(stderr, "dango::script: language \"%.*s\" registered twice\n",
                 static_cast<int>(language.size()), language.data());
    std::abort();
  }
  return true;
}

std::vector<std::string> registered_languages() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Backend> make_backend(const InterpreterConfig& config) {
  auto it = registry().find(config.language);
  if (it == registry().end()) {
    std::string names;
    for (const auto& [name, factory] : registry()) names += (names.empty() ? "" : ", ") + name;
    throw Error(ErrorCode::kUnknownLanguage,
                "unknown language \"" + config.language + "\" (registered: " + names + ")");
  }
  return it->second(config);
}

}  // namespace dango::script
