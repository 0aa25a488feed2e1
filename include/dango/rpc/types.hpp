#pragma once
// Small vocabulary types of the RPC layer.

#include <chrono>
#include <cstdint>
#include <optional>

namespace dango::rpc {

// Identifies one provider among those serving the same RPC names in a process (0 = the
// engine's own RPCs defined with Engine::define).
using ProviderId = uint16_t;

// Per-call options: `rpc.on(ep).with(provider).timeout(100ms)(args...)` sets them.
struct CallOptions {
  ProviderId provider_id = 0;
  // No answer by then: the call fails with dango::TimeoutError (default: wait forever).
  std::optional<std::chrono::nanoseconds> timeout{};
};

}  // namespace dango::rpc
