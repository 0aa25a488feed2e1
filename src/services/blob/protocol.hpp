#pragma once
// The blob RPCs as both sides see them: names, signatures and reply types. Client and provider
// use the same signatures, so that a call to a provider in the same process is a plain function
// call (no encoding).

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dango/rpc/bulk.hpp"
#include "dango/rpc/types.hpp"
#include "dango/services/blob/errors.hpp"
#include "dango/services/blob/options.hpp"
#include "dango/services/blob/region_id.hpp"

namespace dango::blob::protocol {

// Every reply starts with how the call went.
struct Outcome {
  ErrorCode code = ErrorCode::kOk;
  std::string message{};
  bool ok() const { return code == ErrorCode::kOk; }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(code, message);
  }
};

// The data of a write: inline (small) or a bulk handle on the caller's memory.
struct Payload {
  std::span<const std::byte> inline_data{};  // used when `bulk` is empty
  rpc::Bulk bulk{};
  uint64_t bulk_offset = 0;
  uint64_t size = 0;  // bytes to take from `bulk`
  template <class Archive>
  void serialize(Archive& ar) {
    ar(inline_data, bulk, bulk_offset, size);
  }
};

// Where the data of a read goes: a bulk handle, or (when it is empty) the reply itself.
struct Destination {
  rpc::Bulk bulk{};
  uint64_t bulk_offset = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(bulk, bulk_offset);
  }
};

// A target of some provider, for migrate.
struct TargetRef {
  std::string address{};
  rpc::ProviderId provider_id = 0;
  std::string name{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(address, provider_id, name);
  }
};

struct OpenReply {
  Outcome outcome{};
  uint64_t inline_threshold = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, inline_threshold);
  }
};
struct CreateReply {
  Outcome outcome{};
  RegionId id{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, id);
  }
};
struct SizeReply {
  Outcome outcome{};
  uint64_t size = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, size);
  }
};
struct ReadReply {
  Outcome outcome{};
  std::vector<std::byte> data{};  // inline reads only
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, data);
  }
};
struct ListReply {
  Outcome outcome{};
  std::vector<TargetInfo> targets{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, targets);
  }
};
struct MigrateReply {
  Outcome outcome{};
  std::vector<std::pair<RegionId, RegionId>> moved{};  // (id here, id at the destination)
  template <class Archive>
  void serialize(Archive& ar) {
    ar(outcome, moved);
  }
};

// Names and signatures (the first argument of region calls is the target's name).
inline constexpr const char* kOpen = "blob_open";
using OpenRpc = OpenReply(std::string);
inline constexpr const char* kCreate = "blob_create";
using CreateRpc = CreateReply(std::string, uint64_t);
inline constexpr const char* kWrite = "blob_write";
using WriteRpc = Outcome(std::string, RegionId, uint64_t, Payload);
inline constexpr const char* kPersist = "blob_persist";
using PersistRpc = Outcome(std::string, RegionId, uint64_t, uint64_t);
inline constexpr const char* kCreateWritePersist = "blob_create_write_persist";
using CreateWritePersistRpc = CreateReply(std::string, Payload);
inline constexpr const char* kRead = "blob_read";
using ReadRpc = ReadReply(std::string, RegionId, uint64_t, uint64_t, Destination);
inline constexpr const char* kGetSize = "blob_get_size";
using GetSizeRpc = SizeReply(std::string, RegionId);
inline constexpr const char* kErase = "blob_erase";
using EraseRpc = Outcome(std::string, RegionId);
// Regions to move (empty: all of them), and where.
inline constexpr const char* kMigrate = "blob_migrate";
using MigrateRpc = MigrateReply(std::string, std::vector<RegionId>, TargetRef);
// The target's config as JSON text (TargetConfig::to_json()).
inline constexpr const char* kCreateTarget = "blob_create_target";
using CreateTargetRpc = Outcome(std::string);
inline constexpr const char* kDestroyTarget = "blob_destroy_target";
using DestroyTargetRpc = Outcome(std::string);
inline constexpr const char* kListTargets = "blob_list_targets";
using ListTargetsRpc = ListReply();

}  // namespace dango::blob::protocol
