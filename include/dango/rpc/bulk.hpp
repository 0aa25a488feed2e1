#pragma once
// Bulk handles: memory a process exposes for one-sided transfers. A Bulk made by
// Engine::expose travels inside RPC arguments; the receiver pulls from or pushes into it with
// Engine::pull / Engine::push, without the owner's code running.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dango/net/transport.hpp"

namespace dango::rpc {

using Access = net::Access;

namespace detail {
class Exposure;
// The (transport scheme, descriptor) pairs by which peers reach an exposure: one per transport
// the memory is registered with.
using BulkDescriptors = std::vector<std::pair<std::string, std::vector<std::byte>>>;
BulkDescriptors descriptors_of(const Exposure& exposure);
std::span<const std::span<std::byte>> segments_of(const Exposure& exposure);
}  // namespace detail

// A local Bulk keeps its registration alive: keep it (or a copy) until every transfer that uses
// it is over — for a handle passed to `.async(...)`, until that call's wait() returned.
class Bulk {
 public:
  Bulk() = default;
  // Total bytes over all segments.
  size_t size() const { return size_; }
  Access access() const { return access_; }
  // True when this process exposed the memory (as opposed to a handle received from a peer).
  bool is_local() const { return exposure_ != nullptr; }
  // Address of the engine that exposed the memory (empty when it does not listen).
  const std::string& owner() const { return owner_; }
  // The exposed segments (local handles only).
  std::span<const std::span<std::byte>> segments() const {
    return exposure_ ? detail::segments_of(*exposure_) : std::span<const std::span<std::byte>>{};
  }

  // On the wire: how each of the owner's transports reaches the memory, its size and access.
  template <class Archive>
  void save(Archive& ar) const {
    ar(exposure_ ? detail::descriptors_of(*exposure_) : descriptors_, static_cast<uint64_t>(size_),
       static_cast<uint8_t>(access_), owner_);
  }
  template <class Archive>
  void load(Archive& ar) {
    uint64_t size = 0;
    uint8_t access = 0;
    ar(descriptors_, size, access, owner_);
    size_ = size;
    access_ = static_cast<Access>(access);
    exposure_.reset();
  }

 private:
  friend class Engine;
  friend class EngineImpl;
  std::shared_ptr<detail::Exposure> exposure_;  // local handles: the memory and its registrations
  detail::BulkDescriptors descriptors_;         // remote handles
  size_t size_ = 0;
  Access access_ = Access::kReadOnly;
  std::string owner_;
};

// Memory owned by the engine for bulk transfers (Engine::allocate_exposed), exposed once for its
// whole life. On a same-node peer over sm it is a shared segment that peer maps once, so a pull
// or push between it and such memory is a plain memcpy, without a system call.
class ExposedMemory {
 public:
  ExposedMemory() = default;
  std::span<std::byte> data() const { return data_; }
  size_t size() const { return data_.size(); }
  // The handle to send to peers (or to use as the local side of pull/push).
  const Bulk& bulk() const { return bulk_; }

 private:
  friend class EngineImpl;
  std::span<std::byte> data_;
  Bulk bulk_;  // holds the memory
};

}  // namespace dango::rpc
