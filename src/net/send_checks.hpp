#pragma once
// The checks every transport makes before it sends a message (shared by tcp, sm and ofi, so that
// they refuse the same things with the same messages): a closed transport, a peer this transport
// did not look up, a message over max_message_size.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "dango/net/transport.hpp"

namespace dango::net {

// Ok with `total` set to the message's size in bytes, or the error to return to the sender.
template <class PeerT>
Status admit_send(std::string_view transport, bool closed, const PeerT* peer,
                  std::span<const std::span<const std::byte>> parts, size_t max_message_size,
                  size_t& total) {
  if (closed) return {Status::Code::kShutdown, std::string(transport) + " transport closed"};
  if (peer == nullptr) {
    return {Status::Code::kInvalidArgument,
            "peer was not looked up by this " + std::string(transport) + " transport"};
  }
  total = 0;
  for (const auto& part : parts) total += part.size();
  if (total > max_message_size) {
    return {Status::Code::kMessageTooLarge, "message of " + std::to_string(total) + " bytes to " +
                                                peer->address() + " exceeds max_message_size " +
                                                std::to_string(max_message_size)};
  }
  return Status::Ok();
}

}  // namespace dango::net
