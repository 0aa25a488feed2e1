#pragma once
// Helpers shared by the sm transport's source files: the logger, epoll tags and the layout of a
// connection segment.
//
// Segment layout: the control block of ring 0 at offset 0 and of ring 1 at kRingControlSize,
// then the data of ring 0 at kRingDataOffset and of ring 1 right after it. Ring 0 carries what
// the connector sends, ring 1 what the acceptor sends.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "dango/common/log.hpp"
#include "net/bulk_checks.hpp"
#include "net/sm/sm_transport.hpp"

namespace dango::net::sm {

inline spdlog::logger& sm_logger() {
  static const auto instance = dango::log::get("net");
  return *instance;
}

// epoll data of the two non-connection descriptors; connection entries hold a Connection*.
inline constexpr uint64_t kWakeTag = 1;
inline constexpr uint64_t kListenTag = 2;

inline constexpr size_t kRingControlSize = 256;
inline constexpr size_t kRingDataOffset = 4096;
static_assert(sizeof(RingControl) <= kRingControlSize);

inline void attach_rings(Connection& c, size_t capacity, uint64_t key) {
  std::byte* base = c.segment.data();
  auto* control0 = reinterpret_cast<RingControl*>(base);
  auto* control1 = reinterpret_cast<RingControl*>(base + kRingControlSize);
  std::byte* data0 = base + kRingDataOffset;
  std::byte* data1 = data0 + capacity;
  if (c.connector) {
    c.out.attach(control0, data0, capacity, key);
    c.in.attach(control1, data1, capacity, key);
  } else {
    c.in.attach(control0, data0, capacity, key);
    c.out.attach(control1, data1, capacity, key);
  }
}

// Calls fn(pointer, length) for each contiguous piece of [offset, offset + length) over the
// concatenation of `segments`; the range must lie inside them.
template <class Fn>
void for_each_piece(std::span<const std::span<std::byte>> segments, size_t offset, size_t length,
                    Fn&& fn) {
  for (const auto& seg : segments) {
    if (length == 0) return;
    if (offset >= seg.size()) {
      offset -= seg.size();
      continue;
    }
    size_t n = std::min(seg.size() - offset, length);
    fn(seg.data() + offset, n);
    length -= n;
    offset = 0;
  }
}

// Payload headers of the fallback records (sm_fallback.cpp).
struct ChunkRequest {
  uint64_t chunk_id;
  uint64_t key;
  uint64_t offset;
  uint64_t size;
};
struct DataHeader {
  uint64_t chunk_id;
  uint64_t position;  // byte offset inside the chunk
};
struct DoneHeader {
  uint64_t chunk_id;
  uint8_t code;
  uint8_t reserved[7];
};
inline constexpr size_t kMaxErrorText = 512;
inline constexpr size_t kMaxIov = 1024;  // IOV_MAX

inline std::span<const std::byte> as_bytes_of(const auto& value) {
  return {reinterpret_cast<const std::byte*>(&value), sizeof value};
}

}  // namespace dango::net::sm
