#pragma once
// Wire format of the tcp transport. Every frame starts with a 16-byte base header; the one-sided
// frames (GET_REQ, GET_REP, PUT_REQ, PUT_ACK) add a 32-byte bulk header. `length` always counts
// the bytes that follow the headers, so a reader knows a frame's extent from its first 48 bytes.
// Integers are in host order (little-endian on every machine we target): a big-endian peer
// fails the magic check and is disconnected rather than misread.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "dango/net/transport.hpp"
#include "net/bulk_checks.hpp"

namespace dango::net::tcp {

inline constexpr uint32_t kFrameMagic = 0x4f474e44;  // "DNGO" in memory order
inline constexpr uint8_t kFrameVersion = 1;
// A HELLO carries an address string; anything longer is garbage.
inline constexpr size_t kMaxHelloLength = 1024;
// Error replies carry a short explanation for the requester's Status message.
inline constexpr size_t kMaxErrorTextLength = 1024;

enum class FrameType : uint8_t {
  kHello = 1,       // first frame of a connection: the sender's listening address (may be empty)
  kMessage = 2,     // a user message
  kGetRequest = 3,  // read `size` bytes at `offset` of region `key`; no payload
  kGetReply = 4,    // payload = the bytes (ok) or an error text
  kPutRequest = 5,  // payload = `size` bytes to write at `offset` of region `key`
  kPutAck = 6,      // payload empty (ok) or an error text
};
inline constexpr uint8_t kLastFrameType = static_cast<uint8_t>(FrameType::kPutAck);

struct BaseHeader {
  uint32_t magic = kFrameMagic;
  uint8_t version = kFrameVersion;
  uint8_t type = 0;
  uint8_t status = 0;  // Status::Code of a reply, 0 otherwise
  uint8_t reserved = 0;
  uint64_t length = 0;  // bytes after the headers
};
static_assert(sizeof(BaseHeader) == 16);

struct BulkHeader {
  uint64_t op_id = 0;   // chosen by the requester, echoed in the reply
  uint64_t key = 0;     // the owner's memory region key
  uint64_t offset = 0;  // byte offset in the region
  uint64_t size = 0;    // bytes to move
};
static_assert(sizeof(BulkHeader) == 32);

inline constexpr size_t kBaseHeaderSize = sizeof(BaseHeader);
inline constexpr size_t kBulkFrameHeaderSize = sizeof(BaseHeader) + sizeof(BulkHeader);

inline bool is_bulk_frame(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::kGetRequest) && type <= kLastFrameType;
}
inline size_t header_size(uint8_t type) {
  return is_bulk_frame(type) ? kBulkFrameHeaderSize : kBaseHeaderSize;
}

// The headers of a bulk frame laid out contiguously, ready for one iovec.
struct BulkFrameHeader {
  BaseHeader base;
  BulkHeader bulk;
};
static_assert(sizeof(BulkFrameHeader) == kBulkFrameHeaderSize);

inline BaseHeader decode_base(const std::byte* p) {
  BaseHeader h;
  std::memcpy(&h, p, sizeof h);
  return h;
}
inline BulkHeader decode_bulk(const std::byte* p) {
  BulkHeader h;
  std::memcpy(&h, p + kBaseHeaderSize, sizeof h);
  return h;
}

// Checks what can be checked from the base header alone (magic, version, type).
inline bool base_header_valid(const BaseHeader& h) {
  return h.magic == kFrameMagic && h.version == kFrameVersion && h.type >= 1 &&
         h.type <= kLastFrameType && h.status <= static_cast<uint8_t>(Status::Code::kShutdown);
}

// A region descriptor: what a peer needs to address a registered region.
struct RegionDescriptor {
  uint64_t key = 0;
  uint64_t size = 0;
  Access access = Access::kReadOnly;
};
inline constexpr size_t kDescriptorSize = 17;

inline std::vector<std::byte> encode_descriptor(const RegionDescriptor& d) {
  std::vector<std::byte> out(kDescriptorSize);
  std::memcpy(out.data(), &d.key, 8);
  std::memcpy(out.data() + 8, &d.size, 8);
  out[16] = static_cast<std::byte>(d.access);
  return out;
}

inline std::optional<RegionDescriptor> decode_descriptor(std::span<const std::byte> bytes) {
  if (bytes.size() != kDescriptorSize) return std::nullopt;
  RegionDescriptor d;
  std::memcpy(&d.key, bytes.data(), 8);
  std::memcpy(&d.size, bytes.data() + 8, 8);
  auto access = static_cast<uint8_t>(bytes[16]);
  if (access < 1 || access > 3) return std::nullopt;
  d.access = static_cast<Access>(access);
  return d;
}


}  // namespace dango::net::tcp
