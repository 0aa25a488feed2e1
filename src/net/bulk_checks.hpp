#pragma once
// The checks every transport makes on a get/put before it starts (shared by tcp, sm and ofi, so
// that they refuse the same things with the same messages): the local range inside the local
// region, the remote range inside what the descriptor claims, and the rights it grants. The owner
// of the remote memory (or its provider) checks again: a descriptor may be stale or forged.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dango/net/transport.hpp"

namespace dango::net {

inline bool allows_read(Access a) { return a == Access::kReadOnly || a == Access::kReadWrite; }
inline bool allows_write(Access a) { return a == Access::kWriteOnly || a == Access::kReadWrite; }

inline bool in_bounds(uint64_t offset, uint64_t size, uint64_t total) {
  return offset <= total && size <= total - offset;
}

// "[offset, offset+size)" for error messages.
inline std::string range_text(uint64_t offset, uint64_t size) {
  return "[" + std::to_string(offset) + ", " + std::to_string(offset) + "+" + std::to_string(size) +
         ")";
}

// Ok, or kInvalidArgument with a message starting "get: " (`read`) or "put: " that names the
// range or the right at fault: the local range against the local region's size, the remote range
// and rights against what the descriptor claims (`remote_size`, `remote_access`).
inline Status check_transfer(bool read, uint64_t local_size, uint64_t local_offset,
                             uint64_t remote_size, Access remote_access, uint64_t remote_offset,
                             uint64_t size, const std::string& peer_address) {
  const std::string what = read ? "get: " : "put: ";
  if (!in_bounds(local_offset, size, local_size)) {
    return {Status::Code::kInvalidArgument, what + "local range " + range_text(local_offset, size) +
                                                " outside a region of " +
                                                std::to_string(local_size) + " bytes"};
  }
  if (!in_bounds(remote_offset, size, remote_size)) {
    return {Status::Code::kInvalidArgument,
            what + "remote range " + range_text(remote_offset, size) + " outside a region of " +
                std::to_string(remote_size) + " bytes at " + peer_address};
  }
  if (read ? !allows_read(remote_access) : !allows_write(remote_access)) {
    return {Status::Code::kInvalidArgument, what + "remote region at " + peer_address + " is not " +
                                                (read ? "readable" : "writable")};
  }
  return Status::Ok();
}

// The steps every transport's get/put begins with, in one order and with one set of messages: a
// closed transport, a peer or a local region that is not this transport's (`region` null or from
// another `table`), a malformed remote descriptor, then check_transfer(). Returns false once it
// has completed `done` (with the error, or Ok for an empty transfer); true when the transfer has
// to be started.
template <class PeerT, class RegionT, class Descriptor>
bool admit_bulk(bool read, std::string_view transport, bool closed, const PeerT* peer,
                const std::optional<Descriptor>& remote, const RegionT* region, const void* table,
                uint64_t local_offset, uint64_t remote_offset, uint64_t size, Completion* done) {
  auto fail = [&](Status::Code code, const std::string& why) {
    done->complete({code, why});
    return false;
  };
  const std::string what = read ? "get: " : "put: ";
  const std::string name(transport);
  if (closed) return fail(Status::Code::kShutdown, name + " transport closed");
  if (peer == nullptr) {
    return fail(Status::Code::kInvalidArgument,
                what + "peer was not looked up by this " + name + " transport");
  }
  if (!remote) return fail(Status::Code::kInvalidArgument, what + "malformed remote memory descriptor");
  if (region == nullptr || region->table() != table) {
    return fail(Status::Code::kInvalidArgument,
                what + "local region is not registered with this " + name + " transport");
  }
  if (Status s = check_transfer(read, region->size(), local_offset, remote->size, remote->access,
                                remote_offset, size, peer->address());
      !s.ok()) {
    done->complete(std::move(s));
    return false;
  }
  if (size == 0) {
    done->complete(Status::Ok());
    return false;
  }
  return true;
}

}  // namespace dango::net
