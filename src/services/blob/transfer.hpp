#pragma once
// Moving region data between a caller's exposed memory and a target, as bulk transfers:
//   targets with direct access (memory): one pull or push straight between the caller's memory
//     and the region's bytes;
//   other targets (file): chunk by chunk (staging-buffer sized), up to `depth` chunks in flight
//     per transfer, each in a ULT of its own: a write's chunk is pulled into a staging buffer,
//     written, and its writeback started (Backend::start_persist), so that the network and the
//     device work at once; or pulled straight into the region's bytes when the backend offers
//     them (Backend::direct_write). A read's chunk is read ahead into a buffer, then pushed.
// Ranges are checked before any byte moves; a failed pull or push is kTransferFailed.

#include <cstdint>

#include "dango/rpc/bulk.hpp"
#include "dango/rpc/endpoint.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/thread/runtime.hpp"
#include "services/blob/backend.hpp"
#include "services/blob/staging_pool.hpp"

namespace dango::blob {

struct TransferContext {
  rpc::Engine& engine;
  const rpc::Endpoint& peer;  // owner of the caller's memory
  thread::Pool pool;          // where chunk ULTs run
  StagingPool* staging;       // needed only by targets without direct access
  size_t depth;               // chunks in flight per transfer (>= 1)
};

// Copies `size` bytes at `source_offset` of `source` into the region at `offset`.
Status pull_into_region(const TransferContext& context, Backend& backend, RegionId id,
                        uint64_t offset, const rpc::Bulk& source, uint64_t source_offset,
                        uint64_t size);
// Copies `size` bytes of the region at `offset` into `dest` at `dest_offset`.
Status push_from_region(const TransferContext& context, Backend& backend, RegionId id,
                        uint64_t offset, const rpc::Bulk& dest, uint64_t dest_offset,
                        uint64_t size);
// Checks [offset, offset + size) against the region (kUnknownRegion, kOutOfRange).
Status check_region_range(Backend& backend, RegionId id, uint64_t offset, uint64_t size);

}  // namespace dango::blob
