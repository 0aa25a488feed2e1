#pragma once
// The descriptor of memory registered with an sm transport: what a peer on the same node needs
// to read or write it without the owner's code running. It names the owning transport
// (`instance`, checked against the connection the transfer goes over, so a descriptor from a
// third process is refused rather than applied to the wrong one), the region key (for the
// fallback that asks the owner to copy), the owner's virtual addresses (for
// process_vm_readv/writev), and the arena id when the memory is a shared segment the peer can
// map. Integers are in host order: both ends are on one machine.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "dango/net/transport.hpp"
#include "net/bulk_checks.hpp"

namespace dango::net::sm {

inline constexpr uint32_t kDescriptorMagic = 0x524d5344;  // "DSMR"
inline constexpr size_t kMaxDescriptorSegments = 4096;

struct RemoteSegment {
  uint64_t address = 0;
  uint64_t length = 0;
};

struct RegionDescriptor {
  uint64_t instance = 0;
  uint64_t key = 0;
  uint64_t size = 0;
  uint64_t arena_id = 0;  // 0 when the memory is not an arena
  Access access = Access::kReadOnly;
  std::vector<RemoteSegment> segments;
};

// Fixed part: magic u32, access u8, 3 unused, segment count u32, 4 unused, then instance, key,
// size, arena id (u64 each); then per segment address and length (u64 each).
inline constexpr size_t kDescriptorFixedSize = 48;

inline std::vector<std::byte> encode_descriptor(const RegionDescriptor& d) {
  std::vector<std::byte> out(kDescriptorFixedSize + 16 * d.segments.size());
  auto* p = out.data();
  uint32_t magic = kDescriptorMagic;
  auto count = static_cast<uint32_t>(d.segments.size());
  std::memcpy(p, &magic, 4);
  p[4] = static_cast<std::byte>(d.access);
  std::memcpy(p + 8, &count, 4);
  uint64_t fixed[4] = {d.instance, d.key, d.size, d.arena_id};
  std::memcpy(p + 16, fixed, sizeof fixed);
  if (!d.segments.empty()) {
    std::memcpy(p + kDescriptorFixedSize, d.segments.data(), 16 * d.segments.size());
  }
  return out;
}


// Parses and checks a descriptor: nullopt when malformed or when the segments do not add up to
// the size.
inline std::optional<RegionDescriptor> decode_descriptor(std::span<const std::byte> bytes) {
  if (bytes.size() < kDescriptorFixedSize) return std::nullopt;
  uint32_t magic, count;
  std::memcpy(&magic, bytes.data(), 4);
  std::memcpy(&count, bytes.data() + 8, 4);
  auto access = static_cast<uint8_t>(bytes[4]);
  if (magic != kDescriptorMagic || access < 1 || access > 3 || count > kMaxDescriptorSegments ||
      bytes.size() != kDescriptorFixedSize + 16 * size_t{count}) {
    return std::nullopt;
  }
  RegionDescriptor d;
  d.access = static_cast<Access>(access);
  uint64_t fixed[4];
  std::memcpy(fixed, bytes.data() + 16, sizeof fixed);
  d.instance = fixed[0];
  d.key = fixed[1];
  d.size = fixed[2];
  d.arena_id = fixed[3];
  d.segments.resize(count);
  if (count > 0) std::memcpy(d.segments.data(), bytes.data() + kDescriptorFixedSize, 16 * count);
  uint64_t total = 0;
  for (const auto& s : d.segments) {
    if (s.length > UINT64_MAX - total) return std::nullopt;
    total += s.length;
  }
  if (total != d.size || (d.arena_id != 0 && count != 1)) return std::nullopt;
  return d;
}

}  // namespace dango::net::sm
