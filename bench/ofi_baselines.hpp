#pragma once
// The raw libfabric baseline of the ofi+<provider> transports: what libfabric itself does on this
// machine with no Dango in the way, so that the ofi rows of a suite can be read against it as
// well as against raw TCP (rxm over the tcp provider is slower than a bare socket by itself).

#include <cstddef>
#include <string>

#include "baselines.hpp"

namespace dango::bench {

// The libfabric provider behind transport `scheme` ("ofi+tcp" -> "tcp;ofi_rxm", as the transport
// chooses it), or "" for a scheme that is not ofi+<provider>.
std::string ofi_provider_of(const std::string& scheme);

// Ping-pong of `msg_size` bytes (>= 1) with fi_send/fi_recv on reliable-datagram endpoints of
// libfabric provider `provider` ("tcp;ofi_rxm"), between this process and a helper, both
// busy-polling fi_cq_read on a completion queue without a wait object; `iterations` timed round
// trips after iterations/10 of warm-up. Throws std::runtime_error when the provider is missing
// or a libfabric call fails.
PingPongResult ofi_pingpong(const std::string& provider, std::size_t msg_size,
                            std::size_t iterations);

}  // namespace dango::bench
