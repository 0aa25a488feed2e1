// Views as JSON and as the group file. The file is rewritten through a temporary file in the
// same folder and a rename, so readers (clients, joining members) see the old or the new
// content, never a mix.

#include "dango/services/group/membership.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dango/common/config.hpp"
#include "dango/common/error.hpp"

namespace dango::group {

std::string_view to_string(MemberStatus status) {
  switch (status) {
    case MemberStatus::kAlive:
      return "alive";
    case MemberStatus::kSuspect:
      return "suspect";
    case MemberStatus::kDead:
      return "dead";
    case MemberStatus::kLeft:
      return "left";
  }
  return "?";
}

const Member* Membership::find(std::string_view address) const {
  for (const Member& member : members) {
    if (member.address == address) return &member;
  }
  return nullptr;
}

nlohmann::json Membership::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const Member& member : members) {
    list.push_back({{"address", member.address},
                    {"provider_id", member.provider_id},
                    {"incarnation", member.incarnation}});
  }
  return {{"name", name}, {"version", version}, {"members", list}};
}

Membership Membership::from_json(const nlohmann::json& json, std::string_view path) {
  config::ConfigReader reader(json, std::string(path));
  Membership view;
  reader.require("name", view.name);
  reader.get("version", view.version);
  nlohmann::json list = nlohmann::json::array();
  reader.require("members", list);
  reader.finish();
  const std::string list_path = config::join(path, "members");
  if (!list.is_array())
    config::fail(list_path, "expected an array, got " + config::type_name(list));
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = config::join(list_path, i);
    config::ConfigReader item(list[i], item_path);
    Member member;
    item.require("address", member.address);
    item.get("provider_id", member.provider_id);
    item.get("incarnation", member.incarnation);
    item.finish();
    if (view.contains(member.address)) {
      config::fail(item_path, "duplicate member \"" + member.address + "\"");
    }
    view.members.push_back(std::move(member));
  }
  std::sort(view.members.begin(), view.members.end(),
            [](const Member& a, const Member& b) { return a.address < b.address; });
  for (size_t i = 0; i < view.members.size(); ++i) view.members[i].rank = i;
  return view;
}

Membership Membership::load_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in)
    throw ConfigError("group file " + path.string() + ": cannot open: " + std::strerror(errno));
  nlohmann::json json;
  try {
    in >> json;
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError("group file " + path.string() + ": invalid JSON: " + e.what());
  }
  try {
    return from_json(json, "");
  } catch (const ConfigError& e) {
    throw ConfigError("group file " + path.string() + ": " + e.what());
  }
}

void Membership::save_file(const std::filesystem::path& path) const {
  std::filesystem::path temporary = path;
  temporary += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << to_json().dump(2) << '\n';
    out.flush();
    if (!out) throw Error("group file " + temporary.string() + ": cannot write");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error("group file " + path.string() + ": cannot replace: " + error.message());
  }
}

}  // namespace dango::group
