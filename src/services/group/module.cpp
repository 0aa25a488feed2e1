// The group component's entries for dango-daemon (built as libdango-module-group.so):
//
// - Group support: a process's "group" section (GroupOptions in JSON, see
//   include/dango/services/group/options.hpp) makes the daemon a member of that group before
//   any provider starts, through any bootstrap method (self, view, file, join); "name@group"
//   dependencies resolve among its members; the daemon leaves at shutdown; `dango-ctl shutdown
//   --group FILE` reads the members from the group file.
//
//     "group": {"name": "store", "bootstrap": "file", "file": "/shared/store.group"}
//
// - The "group" provider type: one more member agent, for a process that belongs to several
//   groups. Its config is the same GroupOptions without "provider_id" (the provider entry's id
//   is the agent's, and must be the same in every member).

#include "dango/compose/module.hpp"

#include <spdlog/spdlog.h>

#include <memory>

#include "dango/common/config.hpp"
#include "dango/common/log.hpp"
#include "dango/compose/group_support.hpp"
#include "dango/services/group/provider.hpp"
#include "dango/thread/sync.hpp"

namespace dango::group {
namespace {

// A member agent owned by the daemon: the process's membership, or a "group" provider.
// leave() and stop() leave the group at once (peers remove this member without suspecting it)
// and stop the protocol while the engine still serves.
class Agent {
 public:
  Agent(rpc::Engine& engine, GroupOptions options, thread::Pool pool) {
    const std::string name = options.name;
    try {
      provider_ = std::make_unique<Provider>(engine, std::move(options), Observer{}, pool);
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      throw Error("group \"" + name + "\": cannot join: " + e.what());
    }
    log::get("group")->info("joined group \"{}\" as {} (view of {} members)", name,
                            engine.address(), provider_->view().size());
  }

  std::vector<std::string> members() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> addresses;
    for (const Member& member : (provider_ ? provider_->view() : last_view_).members) {
      addresses.push_back(member.address);
    }
    return addresses;
  }

  nlohmann::json config() const {
    std::lock_guard lock(mutex_);
    return provider_ ? provider_->config() : last_config_;
  }

  void leave() {
    std::unique_ptr<Provider> leaving;
    {
      std::lock_guard lock(mutex_);
      if (!provider_) return;
      last_config_ = provider_->config();
      last_view_ = provider_->view();
      leaving = std::move(provider_);
    }
    leaving->leave();
    log::get("group")->info("left group \"{}\"", last_view_.name);
  }

 private:
  mutable thread::Mutex mutex_;  // guards provider_ and the last state against leave()
  std::unique_ptr<Provider> provider_;
  nlohmann::json last_config_;
  Membership last_view_;
};

GroupOptions read_options(const nlohmann::json& section, std::string_view path) {
  return GroupOptions::from_json(section, path);  // also validates: names the key
}

class DaemonMembership : public compose::GroupMembership {
 public:
  DaemonMembership(rpc::Engine& engine, GroupOptions options)
      : agent_(engine, std::move(options), engine.rpc_pool()) {}
  std::vector<std::string> members() const override { return agent_.members(); }
  nlohmann::json config() const override { return agent_.config(); }
  void leave() override { agent_.leave(); }

 private:
  Agent agent_;
};

class DaemonGroupSupport : public compose::GroupSupport {
 public:
  void validate(const nlohmann::json& section, std::string_view path) const override {
    (void)read_options(section, path);
  }
  std::unique_ptr<compose::GroupMembership> join(rpc::Engine& engine, const nlohmann::json& section,
                                                 std::string_view path) const override {
    return std::make_unique<DaemonMembership>(engine, read_options(section, path));
  }
  std::vector<std::string> read_group_file(const std::string& file) const override {
    Membership view;
    try {
      view = Membership::load_file(file);
    } catch (const ConfigError& e) {
      throw Error(e.what());  // a file to read, not a configuration to reject
    }
    std::vector<std::string> addresses;
    for (const Member& member : view.members) addresses.push_back(member.address);
    if (addresses.empty()) throw Error(file + ": the group \"" + view.name + "\" has no member");
    return addresses;
  }
};

// The "group" provider type: GroupOptions without "provider_id".
GroupOptions provider_options(const nlohmann::json& config, std::string_view path,
                              rpc::ProviderId provider_id) {
  if (config.contains("provider_id")) {
    config::fail(config::join(path, "provider_id"),
                 "set by the provider entry's \"provider_id\", not in its config");
  }
  GroupOptions options = read_options(config, path);
  options.provider_id = provider_id;
  return options;
}

class GroupComponent : public compose::Component {
 public:
  explicit GroupComponent(const compose::ComponentArgs& args)
      : agent_(args.engine, provider_options(args.config, args.config_path, args.provider_id),
               args.pool) {}
  nlohmann::json config() const override {
    nlohmann::json json = agent_.config();
    json.erase("provider_id");
    return json;
  }
  void stop() override { agent_.leave(); }

 private:
  Agent agent_;
};

class GroupModule : public compose::Module {
 public:
  void validate(const nlohmann::json& config, std::string_view path) const override {
    (void)provider_options(config, path, 0);
  }
  std::unique_ptr<compose::Component> create(const compose::ComponentArgs& args) const override {
    return std::make_unique<GroupComponent>(args);
  }
};

}  // namespace
}  // namespace dango::group

DANGO_REGISTER_GROUP_SUPPORT(::dango::group::DaemonGroupSupport)
DANGO_REGISTER_MODULE(group, ::dango::group::GroupModule)
