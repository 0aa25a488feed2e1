#pragma once
// What the ofi transport puts on the fabric: the header of every packet (one libfabric message)
// and the memory descriptor that lets a peer address a registered region. Both are validated
// field by field on receipt: a peer's bytes are never trusted.
//
// A packet is [PacketHeader][sender name][payload]. A user message that does not fit in one
// packet (the transport's packet size, at most the provider's max_msg_size) travels as
// consecutive packets of the same message, each carrying its offset. Small messages batched to
// one peer (SendMode::kBatched) share a packet: its payload is a sequence of [uint32 length]
// [message], so that N outstanding RPCs cost one provider send instead of N. Every packet to a peer
// carries the next number of that sender's stream to it: the receiver handles a sender's packets
// in that order whatever order the provider completes them in (rxm completes a message moved by
// rendezvous after the smaller ones behind it), and one sender's unfinished packet (a process that
// died mid-message) never holds up another sender's.

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "dango/net/transport.hpp"

namespace dango::net::ofi {

constexpr uint32_t kPacketMagic = 0x49464f44;  // "DOFI"
constexpr uint8_t kWireVersion = 3;

enum class PacketType : uint8_t {
  kMessage = 1,  // (part of) a user message
  kPing = 2,     // liveness probe; answered with kPong, never shown to the user
  kPong = 3,
  kMessages = 4,  // whole user messages, each preceded by its length (a BatchLength)
};
using BatchLength = uint32_t;

// Sender flags.
constexpr uint8_t kSenderListens = 1;  // the sender's name is a listening address

struct PacketHeader {
  uint32_t magic = kPacketMagic;
  uint8_t version = kWireVersion;
  uint8_t type = 0;
  uint8_t flags = 0;
  uint8_t name_length = 0;
  // Random per transport instance: a peer restarted at the same address has a new one.
  uint64_t incarnation = 0;
  // The receiver's incarnation as last seen by the sender (0: unknown). A packet the provider
  // held back while the receiver restarted carries the old one and is dropped.
  uint64_t destination = 0;
  uint64_t message_length = 0;  // bytes of the whole user message (kMessages: of the payload)
  uint64_t offset = 0;          // where this packet's payload goes in the message
  // Position in the sender's stream of packets to this receiver, from 0. A sender that gave the
  // receiver up for lost (and dropped what it had not sent) starts a new stream at 0.
  uint64_t sequence = 0;
};
static_assert(sizeof(PacketHeader) == 48);
// A sequence is (stream epoch << kSequenceEpochShift) | position in that stream.
constexpr unsigned kSequenceEpochShift = 48;
// Bytes of one sender's packets held while an earlier one has not completed (rxm moves a large
// packet by rendezvous, and many small ones may overtake it). Beyond this the earlier one is
// taken as lost: a peer skipping positions cannot make the receiver hold memory without bound.
constexpr size_t kMaxEarlyBytes = size_t{64} << 20;

// A registered region as seen by a peer: its size and access, and per segment where it starts
// for RMA (a virtual address, or 0 when the provider addresses regions by offset) and its key.
struct DescriptorHeader {
  uint32_t magic = 0x4d464f44;  // "DOFM"
  uint8_t version = kWireVersion;
  uint8_t access = 0;
  uint16_t segment_count = 0;
  uint64_t size = 0;
};
struct DescriptorSegment {
  uint64_t address = 0;
  uint64_t key = 0;
  uint64_t length = 0;
};
static_assert(sizeof(DescriptorHeader) == 16 && sizeof(DescriptorSegment) == 24);

struct Descriptor {
  Access access = Access::kReadOnly;
  uint64_t size = 0;
  std::vector<DescriptorSegment> segments;  // non-empty segments only
};

inline std::vector<std::byte> encode_descriptor(const Descriptor& d) {
  DescriptorHeader h;
  h.access = static_cast<uint8_t>(d.access);
  h.segment_count = static_cast<uint16_t>(d.segments.size());
  h.size = d.size;
  std::vector<std::byte> out(sizeof h + d.segments.size() * sizeof(DescriptorSegment));
  std::memcpy(out.data(), &h, sizeof h);
  if (!d.segments.empty()) {
    std::memcpy(out.data() + sizeof h, d.segments.data(),
                d.segments.size() * sizeof(DescriptorSegment));
  }
  return out;
}

// Nothing when the bytes are not a well-formed descriptor (lengths that do not add up included).
inline std::optional<Descriptor> decode_descriptor(std::span<const std::byte> bytes) {
  DescriptorHeader h;
  if (bytes.size() < sizeof h) return std::nullopt;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.magic != DescriptorHeader{}.magic || h.version != kWireVersion ||
      h.access < static_cast<uint8_t>(Access::kReadOnly) ||
      h.access > static_cast<uint8_t>(Access::kReadWrite) ||
      bytes.size() != sizeof h + size_t{h.segment_count} * sizeof(DescriptorSegment)) {
    return std::nullopt;
  }
  Descriptor d;
  d.access = static_cast<Access>(h.access);
  d.size = h.size;
  d.segments.resize(h.segment_count);
  if (h.segment_count > 0) {
    std::memcpy(d.segments.data(), bytes.data() + sizeof h,
                d.segments.size() * sizeof(DescriptorSegment));
  }
  uint64_t total = 0;
  for (const auto& s : d.segments) {
    if (s.length == 0 || s.length > d.size - total) return std::nullopt;
    total += s.length;
  }
  if (total != d.size) return std::nullopt;
  return d;
}

}  // namespace dango::net::ofi
