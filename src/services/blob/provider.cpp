// blob::Provider: registers the blob RPCs and hosts the targets (see provider.hpp). The RPC
// bodies are ProviderState's methods (provider_state.cpp, migrate.cpp).

#include "dango/services/blob/provider.hpp"

#include <set>

#include "dango/common/config.hpp"
#include "services/common/guarded.hpp"
#include "services/blob/provider_state.hpp"

namespace dango::blob {

using services::guarded;
Provider::Provider(rpc::Engine& engine, rpc::ProviderId provider_id, ProviderOptions options,
                   thread::Pool pool)
    : rpc::Provider(engine, provider_id, pool) {
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < options.targets.size(); ++i) {
    if (!names.insert(options.targets[i].name).second) {
      config::fail(config::join(config::join("targets", i), "name"),
                   "duplicate target name \"" + options.targets[i].name + "\"");
    }
  }
  std::vector<TargetConfig> initial = options.targets;
  options.targets.clear();
  state_ = std::make_unique<ProviderState>(engine, std::move(options), this->pool());
  for (size_t i = 0; i < initial.size(); ++i) {
    state_->create_target(initial[i], config::join("targets", i));
  }

  ProviderState* s = state_.get();
  using protocol::Outcome, protocol::Payload, protocol::Destination;
  define(protocol::kOpen, [s](const std::string& target) {
    return guarded<protocol::OpenReply, Error>([&] { return s->open(target); });
  });
  define(protocol::kCreate, [s](const std::string& target, uint64_t size) {
    return guarded<protocol::CreateReply, Error>([&] { return s->create(target, size); });
  });
  define(protocol::kWrite, [s](const rpc::Request& request, const std::string& target, RegionId id,
                               uint64_t offset, const Payload& payload) {
    return guarded<Outcome, Error>([&] { return s->write(request, target, id, offset, payload); });
  });
  define(protocol::kPersist,
         [s](const std::string& target, RegionId id, uint64_t offset, uint64_t size) {
           return guarded<Outcome, Error>([&] { return s->persist(target, id, offset, size); });
         });
  define(protocol::kCreateWritePersist,
         [s](const rpc::Request& request, const std::string& target, const Payload& payload) {
           return guarded<protocol::CreateReply, Error>(
               [&] { return s->create_write_persist(request, target, payload); });
         });
  define(protocol::kRead, [s](const rpc::Request& request, const std::string& target, RegionId id,
                              uint64_t offset, uint64_t size, const Destination& dest) {
    return guarded<protocol::ReadReply, Error>(
        [&] { return s->read(request, target, id, offset, size, dest); });
  });
  define(protocol::kGetSize, [s](const std::string& target, RegionId id) {
    return guarded<protocol::SizeReply, Error>([&] { return s->get_size(target, id); });
  });
  define(protocol::kErase, [s](const std::string& target, RegionId id) {
    return guarded<Outcome, Error>([&] { return s->erase(target, id); });
  });
  define(protocol::kMigrate, [s](const std::string& target, const std::vector<RegionId>& regions,
                                 const protocol::TargetRef& destination) {
    return guarded<protocol::MigrateReply, Error>(
        [&] { return s->migrate(target, regions, destination); });
  });
  define(protocol::kCreateTarget, [s](const std::string& json) {
    return guarded<Outcome, Error>([&] {
      const nlohmann::json parsed = nlohmann::json::parse(json);
      s->create_target(TargetConfig::from_json(parsed, "target"), "target");
      return Outcome{};
    });
  });
  define(protocol::kDestroyTarget, [s](const std::string& name) {
    return guarded<Outcome, Error>([&] {
      s->destroy_target(name);
      return Outcome{};
    });
  });
  define(protocol::kListTargets, [s] {
    return guarded<protocol::ListReply, Error>(
        [&] { return protocol::ListReply{.targets = s->targets()}; });
  });
}

Provider::~Provider() {
  // The RPCs go first (rpc::Provider's destructor runs after this body), so drop the handlers
  // before the state they point to: deregister them here.
  for (const char* name : {protocol::kOpen, protocol::kCreate, protocol::kWrite, protocol::kPersist,
                           protocol::kCreateWritePersist, protocol::kRead, protocol::kGetSize,
                           protocol::kErase, protocol::kMigrate, protocol::kCreateTarget,
                           protocol::kDestroyTarget, protocol::kListTargets}) {
    engine().deregister(name, provider_id());
  }
}

nlohmann::json Provider::config() const { return state_->config(); }
void Provider::create_target(const TargetConfig& config) {
  state_->create_target(config, "target");
}
void Provider::destroy_target(std::string_view name) { state_->destroy_target(name); }
std::vector<TargetInfo> Provider::targets() const { return state_->targets(); }

}  // namespace dango::blob
