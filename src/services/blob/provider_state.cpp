// The provider's targets and the bodies of the region RPCs (see provider_state.hpp).

#include "services/blob/provider_state.hpp"

#include <spdlog/spdlog.h>

#include "dango/common/log.hpp"

namespace dango::blob {

ProviderState::ProviderState(rpc::Engine& engine, ProviderOptions options, thread::Pool pool)
    : engine_(engine), options_(std::move(options)), pool_(pool) {}

void ProviderState::create_target(const TargetConfig& config, std::string_view config_path) {
  const BackendType* type = find_backend(config.type);
  if (type == nullptr) {
    std::string known;
    for (const auto& name : registered_target_types()) known += (known.empty() ? "" : ", ") + name;
    throw Error(ErrorCode::kUnknownTargetType, std::string(config_path) +
                                                   ".type: no target type \"" + config.type +
                                                   "\" (registered: " + known + ")");
  }
  {
    std::shared_lock lock(targets_mutex_);
    if (targets_.contains(config.name)) {
      throw Error(ErrorCode::kTargetExists, "a target named \"" + config.name + "\" exists");
    }
  }
  auto target = std::make_shared<HostedTarget>();
  target->config = config;
  target->backend = type->make(
      config.config, {.target_name = config.name, .config_path = std::string(config_path)});
  target->config.config = target->backend->config();
  std::unique_lock lock(targets_mutex_);
  if (!targets_.emplace(config.name, std::move(target)).second) {
    throw Error(ErrorCode::kTargetExists, "a target named \"" + config.name + "\" exists");
  }
  log::get("blob")->debug("target \"{}\" ({}) ready", config.name, config.type);
}

void ProviderState::destroy_target(std::string_view name) {
  std::shared_ptr<HostedTarget> target;
  {
    std::unique_lock lock(targets_mutex_);
    auto it = targets_.find(name);
    if (it == targets_.end()) {
      throw Error(ErrorCode::kUnknownTarget, "no target named \"" + std::string(name) + "\"");
    }
    target = std::move(it->second);
    targets_.erase(it);
  }
  target->backend->destroy_when_closed();
}

std::vector<TargetInfo> ProviderState::targets() const {
  std::vector<std::shared_ptr<HostedTarget>> hosted;
  {
    std::shared_lock lock(targets_mutex_);
    for (const auto& [name, target] : targets_) hosted.push_back(target);
  }
  std::vector<TargetInfo> infos;
  for (const auto& target : hosted) {
    const Usage usage = target->backend->usage();
    infos.push_back({.name = target->config.name,
                     .type = target->config.type,
                     .regions = usage.regions,
                     .capacity = usage.capacity,
                     .used_bytes = usage.used_bytes,
                     .free_bytes = usage.free_bytes,
                     .free_extents = usage.free_extents,
                     .config = target->config.to_json().dump()});
  }
  return infos;
}

nlohmann::json ProviderState::config() const {
  ProviderOptions effective = options_;
  std::shared_lock lock(targets_mutex_);
  for (const auto& [name, target] : targets_) effective.targets.push_back(target->config);
  return effective.to_json();
}

std::shared_ptr<HostedTarget> ProviderState::find(std::string_view name,
                                                  protocol::Outcome& outcome) const {
  std::shared_lock lock(targets_mutex_);
  auto it = targets_.find(name);
  if (it != targets_.end()) return it->second;
  outcome = {.code = ErrorCode::kUnknownTarget,
             .message = "no target named \"" + std::string(name) + "\""};
  return nullptr;
}

StagingPool& ProviderState::staging() {
  std::lock_guard lock(staging_mutex_);  // held only while the pool is first made
  if (!staging_) {
    staging_ = std::make_unique<StagingPool>(engine_, options_.staging.buffer_size,
                                             options_.staging.buffers);
  }
  return *staging_;
}

TransferContext ProviderState::transfer_context(const rpc::Endpoint& peer, Backend& backend) {
  return {.engine = engine_,
          .peer = peer,
          .pool = pool_,
          .staging = backend.supports_direct_access() ? nullptr : &staging(),
          .depth = options_.staging.pipeline_depth};
}

// ---- region RPCs --------------------------------------------------------------------------------

protocol::OpenReply ProviderState::open(const std::string& target) {
  protocol::OpenReply reply;
  if (find(target, reply.outcome)) reply.inline_threshold = options_.inline_threshold;
  return reply;
}

protocol::CreateReply ProviderState::create(const std::string& target, uint64_t size) {
  protocol::CreateReply reply;
  auto hosted = find(target, reply.outcome);
  if (!hosted) return reply;
  if (size == 0) {
    reply.outcome = {.code = ErrorCode::kInvalidArgument,
                     .message = "a region needs at least one byte"};
    return reply;
  }
  reply.outcome = to_outcome(hosted->backend->create(size, reply.id));
  return reply;
}

Status ProviderState::write_payload(const rpc::Endpoint& peer, Backend& backend, RegionId id,
                                    uint64_t offset, const protocol::Payload& payload) {
  if (payload.bulk.size() == 0) return backend.write(id, offset, payload.inline_data);
  return pull_into_region(transfer_context(peer, backend), backend, id, offset, payload.bulk,
                          payload.bulk_offset, payload.size);
}

protocol::Outcome ProviderState::write(const rpc::Request& request, const std::string& target,
                                       RegionId id, uint64_t offset,
                                       const protocol::Payload& payload) {
  protocol::Outcome outcome;
  auto hosted = find(target, outcome);
  if (!hosted) return outcome;
  return to_outcome(write_payload(request.source(), *hosted->backend, id, offset, payload));
}

protocol::Outcome ProviderState::persist(const std::string& target, RegionId id, uint64_t offset,
                                         uint64_t size) {
  protocol::Outcome outcome;
  auto hosted = find(target, outcome);
  if (!hosted) return outcome;
  return to_outcome(hosted->backend->persist(id, offset, size));
}

protocol::CreateReply ProviderState::create_write_persist(const rpc::Request& request,
                                                          const std::string& target,
                                                          const protocol::Payload& payload) {
  protocol::CreateReply reply;
  auto hosted = find(target, reply.outcome);
  if (!hosted) return reply;
  Backend& backend = *hosted->backend;
  const uint64_t size = payload.bulk.size() == 0 ? payload.inline_data.size() : payload.size;
  if (size == 0) {
    reply.outcome = {.code = ErrorCode::kInvalidArgument,
                     .message = "a region needs at least one byte"};
    return reply;
  }
  RegionId id;
  Status status = backend.create(size, id);
  if (status.ok() && payload.bulk.size() != 0 && !backend.supports_direct_access()) {
    // A target with storage of its own: the region's creation becomes durable (its journal
    // sync) while the data crosses the network, so that persist then only syncs the data.
    Status created;
    thread::Ult durable = pool_.spawn([&] { created = backend.persist(id, 0, 0); });
    try {
      status = write_payload(request.source(), backend, id, 0, payload);
    } catch (...) {
      durable.join();  // it uses `backend` and `id`
      throw;
    }
    durable.join();
    if (status.ok()) status = std::move(created);
  } else if (status.ok()) {
    status = write_payload(request.source(), backend, id, 0, payload);
  }
  if (status.ok()) status = backend.persist(id, 0, size);
  if (!status.ok()) {
    if (id.valid()) backend.erase(id);  // no half-made region is left behind
    reply.outcome = to_outcome(std::move(status));
    return reply;
  }
  reply.id = id;
  return reply;
}

protocol::ReadReply ProviderState::read(const rpc::Request& request, const std::string& target,
                                        RegionId id, uint64_t offset, uint64_t size,
                                        const protocol::Destination& dest) {
  protocol::ReadReply reply;
  auto hosted = find(target, reply.outcome);
  if (!hosted) return reply;
  Backend& backend = *hosted->backend;
  if (dest.bulk.size() == 0) {
    if (size > options_.inline_threshold) {
      reply.outcome = {.code = ErrorCode::kInvalidArgument,
                       .message = "an inline read of " + std::to_string(size) +
                                  " bytes exceeds the inline threshold (" +
                                  std::to_string(options_.inline_threshold) + ")"};
      return reply;
    }
    if (Status status = check_region_range(backend, id, offset, size); !status.ok()) {
      reply.outcome = to_outcome(std::move(status));
      return reply;
    }
    reply.data.resize(size);
    reply.outcome = to_outcome(backend.read(id, offset, reply.data));
    if (!reply.outcome.ok()) reply.data.clear();
    return reply;
  }
  reply.outcome = to_outcome(push_from_region(transfer_context(request.source(), backend), backend,
                                              id, offset, dest.bulk, dest.bulk_offset, size));
  return reply;
}

protocol::SizeReply ProviderState::get_size(const std::string& target, RegionId id) {
  protocol::SizeReply reply;
  auto hosted = find(target, reply.outcome);
  if (!hosted) return reply;
  reply.outcome = to_outcome(hosted->backend->get_size(id, reply.size));
  return reply;
}

protocol::Outcome ProviderState::erase(const std::string& target, RegionId id) {
  protocol::Outcome outcome;
  auto hosted = find(target, outcome);
  if (!hosted) return outcome;
  return to_outcome(hosted->backend->erase(id));
}

}  // namespace dango::blob
