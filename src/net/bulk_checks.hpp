#pragma once
// The checks every transport makes on a get/put before it starts (shared by tcp, sm and ofi, so
// that they refuse the same things with the same messages): the local range inside the local
// region, the remote range inside what the descriptor claims, and the rights it grants. The owner
// of the remote memory (or its provider) checks again: a descriptor may be stale or forged.

#include <cstdint>
#include <string>

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

}  // namespace dango::net
