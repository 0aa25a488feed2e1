#pragma once
// Bulk handles: memory a process exposes for one-sided transfers. A Bulk made by
// Engine::expose travels inside RPC arguments; the receiver pulls from or pushes into it with
// Engine::pull / Engine::push, without the owner's code running.

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dango/net/transport.hpp"

namespace dango::rpc {

using Access = net::Access;

class Bulk {
 public:
  Bulk() = default;
  // Total bytes over all segments.
  size_t size() const { return size_; }
  Access access() const { return access_; }
  // True when this process exposed the memory (as opposed to a handle received from a peer).
  bool is_local() const { return region_ != nullptr; }
  // Address of the engine that exposed the memory (empty when it does not listen).
  const std::string& owner() const { return owner_; }
  // The exposed segments (local handles only).
  std::span<const std::span<std::byte>> segments() const;

  template <class Archive>
  void save(Archive& ar) const {
    ar(descriptor_, static_cast<uint64_t>(size_), static_cast<uint8_t>(access_), owner_);
  }
  template <class Archive>
  void load(Archive& ar) {
    uint64_t size = 0;
    uint8_t access = 0;
    ar(descriptor_, size, access, owner_);
    size_ = size;
    access_ = static_cast<Access>(access);
    region_.reset();
  }

 private:
  friend class Engine;
  friend class EngineImpl;
  std::shared_ptr<net::MemoryRegion> region_;  // local registration
  std::vector<std::byte> descriptor_;          // how a peer's transport reaches the memory
  size_t size_ = 0;
  Access access_ = Access::kReadOnly;
  std::string owner_;
};

}  // namespace dango::rpc
