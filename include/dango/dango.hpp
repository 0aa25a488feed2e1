#pragma once
// Dango's core API in one include: the RPC engine, providers, bulk handles, user-level threads.
#include "dango/common/error.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/rpc/provider.hpp"
#include "dango/thread/thread.hpp"

namespace dango {
using rpc::Bulk;
using rpc::Endpoint;
using rpc::Engine;
using rpc::EngineOptions;
using rpc::ExposedMemory;
using rpc::Provider;
using rpc::ProviderId;
using rpc::Request;
}  // namespace dango
