#pragma once
// What a handler may learn about the call it serves: take `const dango::rpc::Request&` as the
// handler's first parameter to get it.

#include <string>

#include "dango/rpc/endpoint.hpp"
#include "dango/rpc/types.hpp"

namespace dango::rpc {

class Engine;

class Request {
 public:
  // Borrows `source` and `rpc_name`, which outlive the handler call.
  Request(Engine& engine, const Endpoint& source, ProviderId provider_id,
          const std::string& rpc_name)
      : engine_(engine), source_(source), provider_id_(provider_id), rpc_name_(rpc_name) {}
  // The calling process: pull from / push to the bulk handles it sent.
  const Endpoint& source() const { return source_; }
  ProviderId provider_id() const { return provider_id_; }
  const std::string& rpc_name() const { return rpc_name_; }
  Engine& engine() const { return engine_; }

 private:
  Engine& engine_;
  const Endpoint& source_;
  ProviderId provider_id_;
  const std::string& rpc_name_;
};

}  // namespace dango::rpc
