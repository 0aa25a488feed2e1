#pragma once
// The RPC message header, in front of every request and response the engine sends.

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace dango::rpc::detail {

inline constexpr uint32_t kMessageMagic = 0x52474e44;  // "DNGR" little-endian
inline constexpr uint8_t kMessageVersion = 1;

enum class MessageKind : uint8_t { kRequest = 1, kResponse = 2, kError = 3 };

enum MessageFlags : uint8_t { kFlagOneWay = 1 };

struct MessageHeader {
  uint32_t magic = kMessageMagic;
  uint8_t version = kMessageVersion;
  MessageKind kind = MessageKind::kRequest;
  uint8_t flags = 0;
  uint8_t reserved = 0;
  uint32_t rpc_id = 0;
  uint16_t provider_id = 0;
  uint16_t reserved2 = 0;
  uint64_t request_id = 0;
  uint32_t credential = 0;  // reserved for authentication between jobs; 0 today
  uint32_t payload_size = 0;
};
static_assert(sizeof(MessageHeader) == 32);

// Why a header was rejected, for the error reply and the log.
enum class HeaderError { kNone, kTooShort, kBadMagic, kBadVersion, kBadKind, kBadSize };

inline HeaderError parse_header(std::span<const std::byte> message, MessageHeader& header) {
  if (message.size() < sizeof(MessageHeader)) return HeaderError::kTooShort;
  std::memcpy(&header, message.data(), sizeof header);
  if (header.magic != kMessageMagic) return HeaderError::kBadMagic;
  if (header.version != kMessageVersion) return HeaderError::kBadVersion;
  if (header.kind < MessageKind::kRequest || header.kind > MessageKind::kError) {
    return HeaderError::kBadKind;
  }
  if (header.payload_size != message.size() - sizeof(MessageHeader)) return HeaderError::kBadSize;
  return HeaderError::kNone;
}

inline const char* describe(HeaderError error) {
  switch (error) {
    case HeaderError::kTooShort: return "message shorter than the RPC header";
    case HeaderError::kBadMagic: return "bad magic number (not a Dango RPC message)";
    case HeaderError::kBadVersion: return "unsupported RPC protocol version";
    case HeaderError::kBadKind: return "unknown message kind";
    case HeaderError::kBadSize: return "payload size does not match the message";
    default: return "ok";
  }
}

}  // namespace dango::rpc::detail
