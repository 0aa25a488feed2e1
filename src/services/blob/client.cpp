// blob::Client and blob::Target (see client.hpp): each call is one RPC from protocol.hpp; data
// over the inline threshold goes as a bulk handle on the caller's memory.

#include "dango/services/blob/client.hpp"

#include <algorithm>
#include <cstring>

#include "services/blob/protocol.hpp"

namespace dango::blob {

namespace detail {

struct ClientProcedures {
  explicit ClientProcedures(rpc::Engine& engine)
      : open(engine.rpc<protocol::OpenRpc>(protocol::kOpen)),
        create(engine.rpc<protocol::CreateRpc>(protocol::kCreate)),
        write(engine.rpc<protocol::WriteRpc>(protocol::kWrite)),
        persist(engine.rpc<protocol::PersistRpc>(protocol::kPersist)),
        create_write_persist(
            engine.rpc<protocol::CreateWritePersistRpc>(protocol::kCreateWritePersist)),
        read(engine.rpc<protocol::ReadRpc>(protocol::kRead)),
        get_size(engine.rpc<protocol::GetSizeRpc>(protocol::kGetSize)),
        erase(engine.rpc<protocol::EraseRpc>(protocol::kErase)),
        migrate(engine.rpc<protocol::MigrateRpc>(protocol::kMigrate)),
        create_target(engine.rpc<protocol::CreateTargetRpc>(protocol::kCreateTarget)),
        destroy_target(engine.rpc<protocol::DestroyTargetRpc>(protocol::kDestroyTarget)),
        list_targets(engine.rpc<protocol::ListTargetsRpc>(protocol::kListTargets)) {}
  rpc::RemoteProcedure<protocol::OpenRpc> open;
  rpc::RemoteProcedure<protocol::CreateRpc> create;
  rpc::RemoteProcedure<protocol::WriteRpc> write;
  rpc::RemoteProcedure<protocol::PersistRpc> persist;
  rpc::RemoteProcedure<protocol::CreateWritePersistRpc> create_write_persist;
  rpc::RemoteProcedure<protocol::ReadRpc> read;
  rpc::RemoteProcedure<protocol::GetSizeRpc> get_size;
  rpc::RemoteProcedure<protocol::EraseRpc> erase;
  rpc::RemoteProcedure<protocol::MigrateRpc> migrate;
  rpc::RemoteProcedure<protocol::CreateTargetRpc> create_target;
  rpc::RemoteProcedure<protocol::DestroyTargetRpc> destroy_target;
  rpc::RemoteProcedure<protocol::ListTargetsRpc> list_targets;
};

struct TargetHandle {
  rpc::Engine* engine;
  std::shared_ptr<const ClientProcedures> procedures;
  rpc::Endpoint endpoint;
  std::string address;
  rpc::ProviderId provider_id;
  std::string name;
  uint64_t inline_threshold;
};

}  // namespace detail

namespace {

void check(const protocol::Outcome& outcome) {
  if (!outcome.ok()) throw Error(outcome.code, outcome.message);
}

// The caller's read-only bytes, exposed for the provider to pull from (the provider never
// writes through a read-only handle).
rpc::Bulk expose_readonly(rpc::Engine& engine, std::span<const std::byte> data) {
  std::span<std::byte> bytes(const_cast<std::byte*>(data.data()), data.size());
  return engine.expose(bytes, rpc::Access::kReadOnly);
}

}  // namespace

// ---- Target -------------------------------------------------------------------------------------

RegionId Target::create(uint64_t size) const {
  const auto& h = *handle_;
  auto reply = h.procedures->create.on(h.endpoint).with(h.provider_id)(h.name, size);
  check(reply.outcome);
  return reply.id;
}

void Target::write(RegionId region, uint64_t offset, std::span<const std::byte> data) const {
  const auto& h = *handle_;
  if (data.size() <= h.inline_threshold) {
    check(h.procedures->write.on(h.endpoint)
              .with(h.provider_id)(h.name, region, offset, protocol::Payload{.inline_data = data}));
    return;
  }
  write(region, offset, expose_readonly(*h.engine, data), 0, data.size());
}

void Target::write(RegionId region, uint64_t offset, const rpc::Bulk& source,
                   uint64_t source_offset, uint64_t size) const {
  const auto& h = *handle_;
  check(h.procedures->write.on(h.endpoint)
            .with(h.provider_id)(
                h.name, region, offset,
                protocol::Payload{.bulk = source, .bulk_offset = source_offset, .size = size}));
}

void Target::persist(RegionId region, uint64_t offset, uint64_t size) const {
  const auto& h = *handle_;
  check(h.procedures->persist.on(h.endpoint).with(h.provider_id)(h.name, region, offset, size));
}

RegionId Target::create_write_persist(std::span<const std::byte> data) const {
  const auto& h = *handle_;
  if (data.size() > h.inline_threshold) {
    return create_write_persist(expose_readonly(*h.engine, data), 0, data.size());
  }
  auto reply = h.procedures->create_write_persist.on(h.endpoint)
                   .with(h.provider_id)(h.name, protocol::Payload{.inline_data = data});
  check(reply.outcome);
  return reply.id;
}

RegionId Target::create_write_persist(const rpc::Bulk& source, uint64_t source_offset,
                                      uint64_t size) const {
  const auto& h = *handle_;
  auto reply = h.procedures->create_write_persist.on(h.endpoint)
                   .with(h.provider_id)(
                       h.name, protocol::Payload{
                                   .bulk = source, .bulk_offset = source_offset, .size = size});
  check(reply.outcome);
  return reply.id;
}

void Target::read(RegionId region, uint64_t offset, std::span<std::byte> out) const {
  const auto& h = *handle_;
  if (out.size() <= h.inline_threshold) {
    auto reply = h.procedures->read.on(h.endpoint)
                     .with(h.provider_id)(h.name, region, offset, out.size(), {});
    check(reply.outcome);
    if (reply.data.size() != out.size()) {
      throw Error(ErrorCode::kInternal, "an inline read returned " +
                                            std::to_string(reply.data.size()) +
                                            " bytes instead of " + std::to_string(out.size()));
    }
    std::memcpy(out.data(), reply.data.data(), out.size());
    return;
  }
  read(region, offset, h.engine->expose(out, rpc::Access::kWriteOnly), 0, out.size());
}

void Target::read(RegionId region, uint64_t offset, const rpc::Bulk& dest, uint64_t dest_offset,
                  uint64_t size) const {
  const auto& h = *handle_;
  auto reply =
      h.procedures->read.on(h.endpoint)
          .with(h.provider_id)(h.name, region, offset, size,
                               protocol::Destination{.bulk = dest, .bulk_offset = dest_offset});
  check(reply.outcome);
}

uint64_t Target::get_size(RegionId region) const {
  const auto& h = *handle_;
  auto reply = h.procedures->get_size.on(h.endpoint).with(h.provider_id)(h.name, region);
  check(reply.outcome);
  return reply.size;
}

void Target::erase(RegionId region) const {
  const auto& h = *handle_;
  check(h.procedures->erase.on(h.endpoint).with(h.provider_id)(h.name, region));
}

RegionId Target::migrate(RegionId region, const Target& destination) const {
  const auto& h = *handle_;
  const auto& d = *destination.handle_;
  auto reply = h.procedures->migrate.on(h.endpoint)
                   .with(h.provider_id)(
                       h.name, std::vector<RegionId>{region},
                       protocol::TargetRef{
                           .address = d.address, .provider_id = d.provider_id, .name = d.name});
  check(reply.outcome);
  if (reply.moved.size() != 1) throw Error(ErrorCode::kInternal, "migrate moved no region");
  return reply.moved.front().second;
}

std::vector<std::pair<RegionId, RegionId>> Target::migrate_all(const Target& destination) const {
  const auto& h = *handle_;
  const auto& d = *destination.handle_;
  auto reply = h.procedures->migrate.on(h.endpoint)
                   .with(h.provider_id)(
                       h.name, std::vector<RegionId>{},
                       protocol::TargetRef{
                           .address = d.address, .provider_id = d.provider_id, .name = d.name});
  check(reply.outcome);
  return reply.moved;
}

const std::string& Target::address() const { return handle_->address; }
rpc::ProviderId Target::provider_id() const { return handle_->provider_id; }
const std::string& Target::name() const { return handle_->name; }
uint64_t Target::inline_threshold() const { return handle_->inline_threshold; }

// ---- Client -------------------------------------------------------------------------------------

Client::Client(rpc::Engine& engine)
    : engine_(&engine), procedures_(std::make_shared<const detail::ClientProcedures>(engine)) {}
Client::~Client() = default;
Client::Client(const Client&) = default;
Client& Client::operator=(const Client&) = default;

Target Client::open(std::string_view address, rpc::ProviderId provider_id,
                    std::string_view name) const {
  rpc::Endpoint endpoint = engine_->lookup(address);
  auto reply = procedures_->open.on(endpoint).with(provider_id)(std::string(name));
  check(reply.outcome);
  return Target(std::make_shared<const detail::TargetHandle>(
      detail::TargetHandle{.engine = engine_,
                           .procedures = procedures_,
                           .endpoint = std::move(endpoint),
                           .address = std::string(address),
                           .provider_id = provider_id,
                           .name = std::string(name),
                           .inline_threshold = reply.inline_threshold}));
}

void Client::create_target(std::string_view address, rpc::ProviderId provider_id,
                           const TargetConfig& config) const {
  check(procedures_->create_target.on(engine_->lookup(address))
            .with(provider_id)(config.to_json().dump()));
}

void Client::destroy_target(std::string_view address, rpc::ProviderId provider_id,
                            std::string_view name) const {
  check(procedures_->destroy_target.on(engine_->lookup(address))
            .with(provider_id)(std::string(name)));
}

std::vector<TargetInfo> Client::list_targets(std::string_view address,
                                             rpc::ProviderId provider_id) const {
  auto reply = procedures_->list_targets.on(engine_->lookup(address)).with(provider_id)();
  check(reply.outcome);
  return reply.targets;
}

}  // namespace dango::blob
