#pragma once
// Group support: what the group component registers so that the daemon can join a group (the
// process's "group" section), resolve "name@group" dependencies, leave the group at shutdown,
// and let `dango-ctl shutdown --group FILE` reach every member. Without a registered
// GroupSupport, a "group" section or an "@group" dependency is a config error saying so.
//
//   // src/services/group/module.cpp
//   class FileGroupSupport : public dango::compose::GroupSupport { ... };
//   DANGO_REGISTER_GROUP_SUPPORT(FileGroupSupport)
//
// The daemon resolves "meta@group" itself: it asks each member (GroupMembership::members(),
// in order) for its providers through the daemon's administration RPCs and takes the first
// member serving a provider named "meta".

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"

namespace dango::compose {

// This process's membership of a group, owned by the daemon from start to stop.
class GroupMembership {
 public:
  virtual ~GroupMembership() = default;
  // Addresses of the current members (this process included), in a stable order. May issue
  // RPCs; thread-safe.
  virtual std::vector<std::string> members() const = 0;
  // The effective "group" section (defaults filled in), shown by `dango-ctl query`.
  virtual nlohmann::json config() const = 0;
  // Leaves the group (called once at shutdown, after every provider stopped, while the
  // engine still serves and calls). Errors are logged by the daemon.
  virtual void leave() = 0;
};

class GroupSupport {
 public:
  virtual ~GroupSupport() = default;
  // Checks the "group" section before anything starts; throws ConfigError with a key path
  // starting with `path` ("group.bootstrap: unknown method \"x\"").
  virtual void validate(const nlohmann::json& section, std::string_view path) const = 0;
  // Joins (or creates) the group described by `section` with `engine`, before any provider is
  // created (so "@group" dependencies resolve). Blocks until this process is a member; throws
  // dango::Error naming the group when it cannot join.
  virtual std::unique_ptr<GroupMembership> join(rpc::Engine& engine, const nlohmann::json& section,
                                                std::string_view path) const = 0;
  // The member addresses listed in a group file (the "file" bootstrap's file), for
  // `dango-ctl shutdown --group FILE`. Throws dango::Error naming the file.
  virtual std::vector<std::string> read_group_file(const std::string& file) const = 0;
};

// Installs the group support (first registration wins); true when installed.
bool register_group_support(std::unique_ptr<GroupSupport> support);
// The installed group support, or nullptr.
const GroupSupport* group_support();

}  // namespace dango::compose

#define DANGO_REGISTER_GROUP_SUPPORT(SupportClass)                                \
  namespace {                                                                     \
  [[maybe_unused]] const bool dango_group_support_registered =                    \
      ::dango::compose::register_group_support(std::make_unique<SupportClass>()); \
  }
