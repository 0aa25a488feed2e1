#pragma once
// An Endpoint is a process an Engine can call: made by Engine::lookup(address), cheap to copy.

#include <memory>
#include <string>

#include "dango/net/transport.hpp"

namespace dango::rpc {

class Engine;

class Endpoint {
 public:
  Endpoint() = default;
  // The peer's address ("tcp://127.0.0.1:4242"), or the engine's own for the self endpoint.
  const std::string& address() const { return peer_ ? peer_->address() : address_; }
  // True for the calling engine itself: calls take the in-process path (no socket, no copy).
  bool is_self() const { return self_; }
  bool valid() const { return self_ || peer_ != nullptr; }

 private:
  friend class Engine;
  friend class EngineImpl;
  Endpoint(net::PeerRef peer, net::Transport* transport)
      : peer_(std::move(peer)), transport_(transport) {}
  explicit Endpoint(std::string self_address) : address_(std::move(self_address)), self_(true) {}
  std::string address_;  // only for the self endpoint
  net::PeerRef peer_;
  net::Transport* transport_ = nullptr;
  bool self_ = false;
};

}  // namespace dango::rpc
