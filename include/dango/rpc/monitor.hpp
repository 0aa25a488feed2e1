#pragma once
// Observing an engine: what every RPC and bulk transfer cost, on both sides, reported to a
// Monitor installed with Engine::set_monitor (the statistics collector of
// dango/services/monitor is one). Without a monitor the engine pays one predictable branch per
// event; with one, a few clock reads per RPC plus what the monitor itself does.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dango/rpc/types.hpp"

namespace dango::rpc {

// How a call ended, as its caller saw it.
enum class CallOutcome : uint8_t {
  kOk,
  kRemoteError,   // the handler threw, or the server refused the request
  kTimeout,       // no answer within the call's timeout
  kNetworkError,  // the request could not be sent, or the connection was lost
  kShutdown,      // the engine was finalized before the answer
};

// Client side: one call that got its answer (or failed). One-way calls report when sent.
struct CallEvent {
  std::string_view rpc;   // the RPC's name
  ProviderId provider_id;
  std::string_view peer;  // the server's address
  CallOutcome outcome;
  size_t request_bytes;   // the encoded arguments
  size_t response_bytes;  // the encoded result (0 for errors and one-way calls)
  std::chrono::nanoseconds latency;  // from the call to the answer's arrival
};

// Server side: one request served, split into its stages.
struct RequestEvent {
  std::string_view rpc;
  ProviderId provider_id;
  std::string_view peer;  // the caller's address
  bool failed;            // the handler threw (the caller got a RemoteError)
  size_t request_bytes;
  size_t response_bytes;
  std::chrono::nanoseconds queued;   // from arrival to the handler starting in its pool
  std::chrono::nanoseconds handler;  // the handler's run, bulk transfers included
  std::chrono::nanoseconds bulk;     // of which in pull/push
  size_t bulk_bytes;                 // moved by those pull/push
};

// One pull or push issued by this engine (inside a handler or not).
struct BulkEvent {
  bool pull;  // false: push
  std::string_view peer;
  size_t bytes;
  bool failed;
  std::chrono::nanoseconds elapsed;
};

// Receives the events of an engine. Called on the engine's hot path from any of its threads, at
// once and concurrently: implementations are thread-safe, quick, never block and never call the
// engine. The strings are valid only during the call.
class Monitor {
 public:
  virtual ~Monitor() = default;
  virtual void on_call(const CallEvent& event) = 0;
  virtual void on_request(const RequestEvent& event) = 0;
  virtual void on_bulk(const BulkEvent& event) = 0;
};

}  // namespace dango::rpc
