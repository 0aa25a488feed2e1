// Bootstrap "file" (the default): the first member creates the group file, the others find it
// and join through the members it lists. The whole decision runs under the file's lock, so of
// members started at once exactly one creates the group and the others join it; a file left
// by a previous run whose members are all gone is replaced by a new group.

#include <filesystem>

#include "../bootstrap.hpp"
#include "../file_lock.hpp"
#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "spdlog/spdlog.h"

namespace dango::group::detail {
namespace {

void validate_file(const GroupOptions& options, std::string_view path) {
  if (options.file.empty())
    config::fail(config::join(path, "file"), "required by the \"file\" bootstrap");
}

std::vector<Member> contacts_in(const std::filesystem::path& path, const GroupOptions& options,
                                const Member& self) {
  std::error_code ignored;
  if (!std::filesystem::exists(path, ignored)) return {};
  Membership existing;
  try {
    existing = Membership::load_file(path);
  } catch (const ConfigError& e) {
    log::get("group")->warn("{}; starting a new group", e.what());
    return {};
  }
  if (existing.name != options.name) {
    throw ConfigError("group.file: " + path.string() + " holds group \"" + existing.name +
                      "\", not \"" + options.name + "\"");
  }
  std::vector<Member> contacts;
  for (const Member& member : existing.members) {
    if (member.address != self.address) contacts.push_back(member);
  }
  return contacts;
}

void run_file(BootstrapContext& context) {
  const GroupOptions& options = context.options();
  const std::filesystem::path path = options.file;
  const FileLock lock(path, options.join_timeout);
  const std::vector<Member> contacts = contacts_in(path, options, context.self());
  // One pass over the listed members: a refused connection fails at once, so a stale file
  // costs little; a live group answers from its first reachable member.
  if (contacts.empty() || !context.join_through(contacts, std::chrono::milliseconds(0))) {
    if (!contacts.empty()) {
      log::get("group")->info("no member listed in {} answered; starting a new group",
                              path.string());
    }
    context.create({context.self()});
  }
  context.view().save_file(path);
}

}  // namespace
DANGO_REGISTER_GROUP_BOOTSTRAP(file, validate_file, run_file);
}  // namespace dango::group::detail
