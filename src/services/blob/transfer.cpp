// Bulk data movement between callers and targets (see transfer.hpp).

#include "services/blob/transfer.hpp"

#include <algorithm>
#include <deque>
#include <optional>

#include "dango/common/error.hpp"

namespace dango::blob {
namespace {

Status transfer_failed(const char* what, const std::exception& e) {
  return Status::Fail(ErrorCode::kTransferFailed, std::string(what) + ": " + e.what());
}

// One chunk of a staged transfer in flight: its ULT writes `status` when the disk is done.
struct Chunk {
  uint64_t position = 0;  // from the start of the transfer
  uint64_t length = 0;
  std::optional<StagingPool::Lease> lease{};  // reads: held until the chunk is pushed
  Status status{};
  thread::Ult ult{};
};

// Joins every chunk still in flight, even when the transfer ends early: their ULTs use the
// chunks' buffers and the backend.
struct JoinAll {
  std::deque<Chunk>& chunks;
  ~JoinAll() {
    for (Chunk& chunk : chunks) {
      try {
        if (chunk.ult.joinable()) chunk.ult.join();
      } catch (...) {  // shutting down: the ULT still finishes on its own
      }
    }
  }
};

// Waits for the oldest chunk; its status (a ULT that threw is kInternal).
Status finish_front(std::deque<Chunk>& chunks) {
  Chunk& chunk = chunks.front();
  try {
    chunk.ult.join();
  } catch (const std::exception& e) {
    return Status::Fail(ErrorCode::kInternal, std::string("chunk I/O failed: ") + e.what());
  }
  return chunk.status;
}

// Runs `body(position, length)` for each chunk of `size` bytes, each in a ULT of its own, with
// up to `context.depth` in flight at once: several pulls cross the network together (one round
// trip's wait, not one per chunk) while the chunks already arrived go on to the disk. The first
// failure is returned, once every chunk in flight has finished.
template <class Body>
Status run_chunks(const TransferContext& context, uint64_t size, uint64_t chunk_size,
                  const Body& body) {
  std::deque<Chunk> chunks;
  JoinAll guard{chunks};
  for (uint64_t position = 0; position < size; position += chunk_size) {
    while (chunks.size() >= context.depth) {
      if (Status status = finish_front(chunks); !status.ok()) return status;
      chunks.pop_front();
    }
    const uint64_t length = std::min(chunk_size, size - position);
    Chunk& chunk = chunks.emplace_back(Chunk{.position = position, .length = length});
    chunk.ult = context.pool.spawn(
        [&body, &status = chunk.status, position, length] { status = body(position, length); });
  }
  while (!chunks.empty()) {
    if (Status status = finish_front(chunks); !status.ok()) return status;
    chunks.pop_front();
  }
  return Status::Ok();
}

// Through the staging buffers: each chunk is pulled into a buffer, written to the target, and
// its writeback started (so that the device works while later chunks arrive).
Status pull_staged(const TransferContext& context, Backend& backend, RegionId id, uint64_t offset,
                   const rpc::Bulk& source, uint64_t source_offset, uint64_t size) {
  StagingPool& staging = *context.staging;
  const uint64_t chunk_size = staging.buffer_size();
  auto move_chunk = [&](uint64_t position, uint64_t length) -> Status {
    // Chunks hold no other buffer while they wait for this one, so waiting is safe.
    StagingPool::Lease lease = staging.acquire();
    try {
      context.engine.pull(context.peer, source, source_offset + position, lease.bulk(), 0, length);
    } catch (const dango::Error& e) {
      return transfer_failed("pulling the data", e);
    }
    return backend.write(id, offset + position, lease.bytes().first(length));
  };
  if (size <= chunk_size) return move_chunk(0, size);
  return run_chunks(context, size, chunk_size, [&](uint64_t position, uint64_t length) {
    Status status = move_chunk(position, length);
    if (status.ok()) backend.start_persist(id, offset + position, length);
    return status;
  });
}

// Straight into the region's bytes offered by direct_write(): chunk by chunk (staging-buffer
// sized) when the transfer spans several, each chunk's writeback started once it has arrived.
Status pull_direct_write(const TransferContext& context, Backend& backend, RegionId id,
                         uint64_t offset, std::span<std::byte> bytes, const rpc::Bulk& source,
                         uint64_t source_offset) {
  const uint64_t size = bytes.size();
  try {
    const rpc::Bulk local = context.engine.expose(bytes, rpc::Access::kReadWrite);
    const uint64_t chunk_size = context.staging->buffer_size();
    if (size <= chunk_size) {
      context.engine.pull(context.peer, source, source_offset, local, 0, size);
      return Status::Ok();
    }
    return run_chunks(context, size, chunk_size, [&](uint64_t position, uint64_t length) {
      try {
        context.engine.pull(context.peer, source, source_offset + position, local, position,
                            length);
      } catch (const dango::Error& e) {
        return transfer_failed("pulling the data", e);
      }
      backend.start_persist(id, offset + position, length);
      return Status::Ok();
    });
  } catch (const dango::Error& e) {
    return transfer_failed("pulling the data", e);
  }
}

Status push_staged(const TransferContext& context, Backend& backend, RegionId id, uint64_t offset,
                   const rpc::Bulk& dest, uint64_t dest_offset, uint64_t size) {
  StagingPool& staging = *context.staging;
  const uint64_t chunk_size = staging.buffer_size();
  std::deque<Chunk> chunks;
  JoinAll guard{chunks};
  uint64_t scheduled = 0;
  auto schedule = [&](StagingPool::Lease lease) {
    const uint64_t length = std::min(chunk_size, size - scheduled);
    Chunk& chunk = chunks.emplace_back(Chunk{.position = scheduled, .length = length});
    chunk.lease.emplace(std::move(lease));
    chunk.ult = context.pool.spawn([&backend, id, at = offset + scheduled, &chunk] {
      chunk.status = backend.read(id, at, chunk.lease->bytes().first(chunk.length));
    });
    scheduled += length;
  };
  if (size <= chunk_size) {
    StagingPool::Lease lease = staging.acquire();
    if (Status status = backend.read(id, offset, lease.bytes().first(size)); !status.ok())
      return status;
    try {
      context.engine.push(context.peer, dest, dest_offset, lease.bulk(), 0, size);
    } catch (const dango::Error& e) {
      return transfer_failed("pushing the data", e);
    }
    return Status::Ok();
  }
  schedule(staging.acquire());  // holding nothing yet: may wait
  while (!chunks.empty()) {
    // Read ahead with the buffers that are free now; never wait while holding one.
    while (scheduled < size && chunks.size() < context.depth) {
      std::optional<StagingPool::Lease> lease = staging.try_acquire();
      if (!lease) break;
      schedule(std::move(*lease));
    }
    if (Status status = finish_front(chunks); !status.ok()) return status;
    Chunk& chunk = chunks.front();
    try {
      context.engine.push(context.peer, dest, dest_offset + chunk.position, chunk.lease->bulk(), 0,
                          chunk.length);
    } catch (const dango::Error& e) {
      return transfer_failed("pushing the data", e);
    }
    chunks.pop_front();
    if (chunks.empty() && scheduled < size) schedule(staging.acquire());
  }
  return Status::Ok();
}

}  // namespace

Status check_region_range(Backend& backend, RegionId id, uint64_t offset, uint64_t size) {
  uint64_t region_size = 0;
  if (Status status = backend.get_size(id, region_size); !status.ok()) return status;
  return check_range(id, region_size, offset, size);
}

Status pull_into_region(const TransferContext& context, Backend& backend, RegionId id,
                        uint64_t offset, const rpc::Bulk& source, uint64_t source_offset,
                        uint64_t size) {
  if (source_offset > source.size() || size > source.size() - source_offset) {
    return Status::Fail(ErrorCode::kInvalidArgument,
                        "the source bulk holds " + std::to_string(source.size()) +
                            " bytes, fewer than the " + std::to_string(size) + " asked for");
  }
  if (size == 0) return check_region_range(backend, id, offset, 0);
  DirectAccess access;
  if (!backend.supports_direct_access()) {
    if (Status status = check_region_range(backend, id, offset, size); !status.ok()) return status;
    if (backend.direct_write(id, offset, size, access)) {
      return pull_direct_write(context, backend, id, offset, access.bytes, source, source_offset);
    }
    return pull_staged(context, backend, id, offset, source, source_offset, size);
  } else if (Status status = backend.direct(id, offset, size, access); !status.ok()) {
    return status;
  }
  try {
    const rpc::Bulk local = context.engine.expose(access.bytes, rpc::Access::kReadWrite);
    context.engine.pull(context.peer, source, source_offset, local, 0, size);
  } catch (const dango::Error& e) {
    return transfer_failed("pulling the data", e);
  }
  return Status::Ok();
}

Status push_from_region(const TransferContext& context, Backend& backend, RegionId id,
                        uint64_t offset, const rpc::Bulk& dest, uint64_t dest_offset,
                        uint64_t size) {
  if (dest_offset > dest.size() || size > dest.size() - dest_offset) {
    return Status::Fail(ErrorCode::kInvalidArgument,
                        "the destination bulk holds " + std::to_string(dest.size()) +
                            " bytes, fewer than the " + std::to_string(size) + " asked for");
  }
  if (size == 0) return check_region_range(backend, id, offset, 0);
  if (!backend.supports_direct_access()) {
    if (Status status = check_region_range(backend, id, offset, size); !status.ok()) return status;
    return push_staged(context, backend, id, offset, dest, dest_offset, size);
  }
  DirectAccess access;
  if (Status status = backend.direct(id, offset, size, access); !status.ok()) return status;
  try {
    const rpc::Bulk local = context.engine.expose(access.bytes, rpc::Access::kReadOnly);
    context.engine.push(context.peer, dest, dest_offset, local, 0, size);
  } catch (const dango::Error& e) {
    return transfer_failed("pushing the data", e);
  }
  return Status::Ok();
}

}  // namespace dango::blob
