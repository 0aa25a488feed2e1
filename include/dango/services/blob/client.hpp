#pragma once
// The client side of the blob service (Dango's BAKE / Warabi): a Client made from an Engine, and
// Target, the handle on one target of a provider that creates, writes, persists, reads and erases
// regions.
//
//   dango::blob::Client blobs{engine};
//   dango::blob::Target data = blobs.open(address, /*provider*/ 2, "data");
//   dango::blob::RegionId id = data.create_write_persist(bytes);   // one RPC
//   data.read(id, 0, out);                                         // pushed into `out`
//
// Data at most the target's inline threshold travels inside the RPC; larger data moves by bulk
// transfer: the provider pulls it from (or pushes it to) the caller's memory, which the client
// exposes for the call, or which the caller exposed once (the Bulk overloads, cheaper when the
// same buffer is used again). Every call blocks the calling ULT only.
// Errors: blob::Error (with an ErrorCode) for what the provider refused; dango::NetworkError,
// TimeoutError for transport failures.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dango/rpc/bulk.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/rpc/types.hpp"
#include "dango/services/blob/errors.hpp"
#include "dango/services/blob/options.hpp"
#include "dango/services/blob/region_id.hpp"

namespace dango::blob {

namespace detail {
struct TargetHandle;
struct ClientProcedures;
}  // namespace detail

// A handle on one target of one provider; cheap to copy, valid while its Client's engine lives.
class Target {
 public:
  Target() = default;

  // Creates a region of `size` bytes (> 0) and returns its id. Bytes never written read as
  // unspecified. Throws Error (kNoSpace, kInvalidArgument, kUnknownTarget).
  RegionId create(uint64_t size) const;
  // Writes `data` at `offset` of the region. Throws Error (kOutOfRange past the region's end,
  // kUnknownRegion). Not durable until persist().
  void write(RegionId region, uint64_t offset, std::span<const std::byte> data) const;
  // The same from memory the caller exposed: `size` bytes at `source_offset` of `source`.
  void write(RegionId region, uint64_t offset, const rpc::Bulk& source, uint64_t source_offset,
             uint64_t size) const;
  // Durability point: once it returns, the range and the region's existence survive a crash
  // (fdatasync of the range for file targets; nothing to do in memory).
  void persist(RegionId region, uint64_t offset, uint64_t size) const;
  // create + write + persist in one RPC; returns the new region's id.
  RegionId create_write_persist(std::span<const std::byte> data) const;
  RegionId create_write_persist(const rpc::Bulk& source, uint64_t source_offset,
                                uint64_t size) const;
  // Reads out.size() bytes at `offset` of the region into `out`. Throws Error (kOutOfRange,
  // kUnknownRegion).
  void read(RegionId region, uint64_t offset, std::span<std::byte> out) const;
  // The same into memory the caller exposed (write access): `size` bytes at `dest_offset`.
  void read(RegionId region, uint64_t offset, const rpc::Bulk& dest, uint64_t dest_offset,
            uint64_t size) const;
  // The region's size in bytes. Throws Error(kUnknownRegion).
  uint64_t get_size(RegionId region) const;
  // Removes the region; its space is reused by later regions. Throws Error(kUnknownRegion).
  void erase(RegionId region) const;

  // Moves one region to `destination` (a target of any provider, local or remote): the provider
  // copies it there, persists it, and only then erases it here. Returns its id at the
  // destination. Throws Error (from either side).
  RegionId migrate(RegionId region, const Target& destination) const;
  // Moves every region of this target to `destination` as migrate() does, one by one; returns
  // (id here, id there) pairs. On an error the regions already moved stay moved.
  std::vector<std::pair<RegionId, RegionId>> migrate_all(const Target& destination) const;

  // Where the target lives.
  const std::string& address() const;
  rpc::ProviderId provider_id() const;
  const std::string& name() const;
  // Largest data that travels inside the RPC instead of as a bulk transfer (set by the provider).
  uint64_t inline_threshold() const;
  bool valid() const { return handle_ != nullptr; }

 private:
  friend class Client;
  explicit Target(std::shared_ptr<const detail::TargetHandle> handle)
      : handle_(std::move(handle)) {}
  std::shared_ptr<const detail::TargetHandle> handle_;
};

// Makes Target handles and manages the targets of a provider. Holds a reference to `engine`,
// which must outlive it and every Target it made.
class Client {
 public:
  explicit Client(rpc::Engine& engine);
  ~Client();
  Client(const Client&);
  Client& operator=(const Client&);

  // A handle on target `name` of provider `provider_id` at `address` (one RPC: checks that the
  // target exists and learns its inline threshold). Throws Error(kUnknownTarget).
  Target open(std::string_view address, rpc::ProviderId provider_id, std::string_view name) const;

  // Creates a target at run time (a file target whose files already exist is reopened with its
  // regions). Throws Error (kTargetExists, kUnknownTargetType, kIoError) or, for bad options,
  // Error(kInvalidArgument) with the key path in the message.
  void create_target(std::string_view address, rpc::ProviderId provider_id,
                     const TargetConfig& config) const;
  // Stops serving target `name` and deletes its data once in-flight requests are done.
  // Throws Error(kUnknownTarget).
  void destroy_target(std::string_view address, rpc::ProviderId provider_id,
                      std::string_view name) const;
  // The provider's targets, sorted by name, with their usage.
  std::vector<TargetInfo> list_targets(std::string_view address, rpc::ProviderId provider_id) const;

  rpc::Engine& engine() const { return *engine_; }

 private:
  rpc::Engine* engine_;
  std::shared_ptr<const detail::ClientProcedures> procedures_;
};

}  // namespace dango::blob
