#pragma once
// The control channel of an sm connection: a Unix SOCK_SEQPACKET socket, one packet per control
// message, some carrying a descriptor (SCM_RIGHTS). Messages themselves never travel here; the
// socket exists for what shared memory cannot do: pass descriptors, wake a sleeping receiver,
// and tell that the other process died (the kernel closes its end).
//
// Packets: a 16-byte header (magic, version, type, body length) then the body. A packet that
// is truncated, of an unknown type or of the wrong length for its type is garbage: the
// connection is closed.

#include <cstddef>
#include <cstdint>
#include <span>

#include "net/sm/shared_memory.hpp"

namespace dango::net::sm {

inline constexpr uint32_t kControlMagic = 0x434d5344;  // "DSMC" in memory order
inline constexpr uint8_t kControlVersion = 1;
inline constexpr size_t kMaxControlBody = 1024;

enum class ControlType : uint8_t {
  kHello = 1,         // connector -> acceptor, first packet, carries the connection segment
  kWelcome = 2,       // acceptor -> connector, answer to kHello
  kWake = 3,          // a record waits for a sleeping reader, or room for a sleeping writer
  kArenaRequest = 4,  // "send me the descriptor of your arena <id>"
  kArena = 5,         // an arena's memfd, for the peer to map once
  kArenaGone = 6,     // the arena was freed (or is unknown): unmap it
};
inline constexpr uint8_t kLastControlType = static_cast<uint8_t>(ControlType::kArenaGone);

struct ControlHeader {
  uint32_t magic = kControlMagic;
  uint8_t version = kControlVersion;
  uint8_t type = 0;
  uint16_t reserved = 0;
  uint32_t length = 0;  // body bytes
  uint32_t reserved2 = 0;
};
static_assert(sizeof(ControlHeader) == 16);

// Body of kHello and kWelcome: who the sender is, and where to probe it for cross-memory attach.
struct HelloBody {
  uint64_t instance = 0;        // random id of the sending transport (memory descriptors carry it)
  uint64_t probe_address = 0;   // address of an 8-byte word in the sender ...
  uint64_t probe_value = 0;     // ... holding this value
  uint64_t ring_capacity = 0;   // kHello: bytes of each ring of the segment
  uint64_t ring_key = 0;        // kHello: the commit key of both rings
  uint32_t address_length = 0;  // then the sender's listening address (may be empty)
  uint32_t reserved = 0;
};
static_assert(sizeof(HelloBody) == 48);

struct ArenaBody {
  uint64_t arena_id = 0;
  uint64_t size = 0;
  uint64_t access = 0;  // the owner's Access for the region: checked before each transfer
};

// One packet read from the socket.
struct ControlPacket {
  ControlType type = ControlType::kWake;
  std::span<const std::byte> body;  // valid until the next receive_control on the same buffer
  Fd fd;                            // the descriptor passed along, if any
};

enum class ControlResult : uint8_t { kPacket, kEmpty, kClosed, kGarbage };

// Sends one packet without blocking; false when the socket is full or broken.
bool send_control(int socket, ControlType type, std::span<const std::byte> body, int pass_fd = -1);
// Receives one packet into `buffer` (>= sizeof(ControlHeader) + kMaxControlBody bytes).
ControlResult receive_control(int socket, std::span<std::byte> buffer, ControlPacket& out);

}  // namespace dango::net::sm
