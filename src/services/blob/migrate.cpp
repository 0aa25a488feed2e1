// migrate: moves regions of a hosted target to a target of any provider. Per region: create it
// at the destination, have the destination pull the bytes (straight from a memory region, or
// chunk by chunk from a staging buffer the source filled from disk), persist it there, and only
// then erase it here, so the data is readable at the destination before it leaves the source.

#include <algorithm>

#include "dango/services/blob/client.hpp"
#include "services/blob/provider_state.hpp"

namespace dango::blob {
namespace {

// Copies region `id` of `backend` into region `to` of `destination`.
void copy_region(rpc::Engine& engine, Backend& backend, StagingPool* staging, RegionId id,
                 uint64_t size, const Target& destination, RegionId to) {
  if (backend.supports_direct_access()) {
    DirectAccess access;
    Status status = backend.direct(id, 0, size, access);
    if (!status.ok()) throw Error(status.code, status.message);
    const rpc::Bulk bulk = engine.expose(access.bytes, rpc::Access::kReadOnly);
    destination.write(to, 0, bulk, 0, size);
    return;
  }
  StagingPool::Lease lease = staging->acquire();
  const uint64_t chunk = staging->buffer_size();
  for (uint64_t position = 0; position < size; position += chunk) {
    const uint64_t length = std::min(chunk, size - position);
    Status status = backend.read(id, position, lease.bytes().first(length));
    if (!status.ok()) throw Error(status.code, status.message);
    destination.write(to, position, lease.bulk(), 0, length);
  }
}

}  // namespace

protocol::MigrateReply ProviderState::migrate(const std::string& target,
                                              const std::vector<RegionId>& regions,
                                              const protocol::TargetRef& destination) {
  protocol::MigrateReply reply;
  auto hosted = find(target, reply.outcome);
  if (!hosted) return reply;
  Backend& backend = *hosted->backend;
  std::vector<RegionId> ids = regions;
  if (ids.empty()) {
    if (Status status = backend.list(ids); !status.ok()) {
      reply.outcome = to_outcome(std::move(status));
      return reply;
    }
  }
  try {
    const Target there =
        Client(engine_).open(destination.address, destination.provider_id, destination.name);
    StagingPool* staging = backend.supports_direct_access() ? nullptr : &this->staging();
    for (RegionId id : ids) {
      uint64_t size = 0;
      if (Status status = backend.get_size(id, size); !status.ok()) {
        reply.outcome = to_outcome(std::move(status));
        return reply;
      }
      const RegionId to = there.create(size);
      try {
        copy_region(engine_, backend, staging, id, size, there, to);
        there.persist(to, 0, size);
      } catch (...) {
        try {
          there.erase(to);  // no half-copied region is left at the destination
        } catch (const std::exception&) {
        }
        throw;
      }
      if (Status status = backend.erase(id); !status.ok()) {
        reply.outcome = to_outcome(std::move(status));
        return reply;
      }
      reply.moved.emplace_back(id, to);
    }
  } catch (const Error& e) {
    reply.outcome = {.code = e.code(),
                     .message = "migrate to \"" + destination.name + "\" at " +
                                destination.address + ": " + e.what()};
  } catch (const dango::Error& e) {
    reply.outcome = {.code = ErrorCode::kTransferFailed,
                     .message = "migrate to \"" + destination.name + "\" at " +
                                destination.address + ": " + e.what()};
  }
  return reply;
}

}  // namespace dango::blob
