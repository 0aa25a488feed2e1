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

// What a get (`read`) or put asks, as the requester sees it.
struct TransferRequest {
  bool read = true;
  uint64_t local_size = 0;  // of the local region
  uint64_t local_offset = 0;
  uint64_t remote_size = 0;  // as the descriptor claims
  Access remote_access = Access::kReadOnly;
  uint64_t remote_offset = 0;
  uint64_t size = 0;
  const std::string* peer_address = nullptr;  // named in messages
};

// Ok, or kInvalidArgument with a message starting "get: " / "put: " that names the range or the
// right at fault.
inline Status check_transfer(const TransferRequest& r) {
  const std::string what = r.read ? "get: " : "put: ";
  const std::string& at = *r.peer_address;
  if (!in_bounds(r.local_offset, r.size, r.local_size)) {
    return {Status::Code::kInvalidArgument, what + "local range " +
                                                range_text(r.local_offset, r.size) +
                                                " outside a region of " +
                                                std::to_string(r.local_size) + " bytes"};
  }
  if (!in_bounds(r.remote_offset, r.size, r.remote_size)) {
    return {Status::Code::kInvalidArgument,
            what + "remote range " + range_text(r.remote_offset, r.size) +
                " outside a region of " + std::to_string(r.remote_size) + " bytes at " + at};
  }
  if (r.read ? !allows_read(r.remote_access) : !allows_write(r.remote_access)) {
    return {Status::Code::kInvalidArgument, what + "remote region at " + at + " is not " +
                                                (r.read ? "readable" : "writable")};
  }
  return Status::Ok();
}

}  // namespace dango::net
