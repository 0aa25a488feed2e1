#pragma once
// What a kv::Database handle shares between its copies, and the request-building steps the
// single, batch and asynchronous operations have in common (client.cpp, client_batch.cpp).

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/kv/client.hpp"
#include "services/kv/protocol.hpp"

namespace dango::kv {

namespace p = protocol;

template <class Signature>
rpc::CallTarget<Signature> make_target(rpc::Engine& engine, const char* name,
                                       const rpc::Endpoint& endpoint, rpc::ProviderId provider,
                                       const ClientOptions& options) {
  auto target = engine.rpc<Signature>(name).on(endpoint).with(provider);
  return options.timeout ? target.timeout(*options.timeout) : target;
}

struct DatabaseState {
  DatabaseState(rpc::Engine& e, const rpc::Endpoint& ep, rpc::ProviderId provider,
                const ClientOptions& o, std::string database_name)
      : engine(&e),
        endpoint(ep),
        options(o),
        name(std::move(database_name)),
        put(make_target<p::PutReply(p::PutArgs)>(e, p::kPut, ep, provider, o)),
        get(make_target<p::GetReply(p::GetArgs)>(e, p::kGet, ep, provider, o)),
        length(make_target<p::LengthReply(p::KeysArgs)>(e, p::kLength, ep, provider, o)),
        erase(make_target<p::WireStatus(p::KeysArgs)>(e, p::kErase, ep, provider, o)),
        list(make_target<p::ListReply(p::ListArgs)>(e, p::kList, ep, provider, o)),
        count(make_target<p::CountReply(p::DatabaseId)>(e, p::kCount, ep, provider, o)) {}

  rpc::Engine* engine;
  rpc::Endpoint endpoint;
  ClientOptions options;
  std::string name;
  std::string type;
  p::DatabaseId id = 0;
  rpc::CallTarget<p::PutReply(p::PutArgs)> put;
  rpc::CallTarget<p::GetReply(p::GetArgs)> get;
  rpc::CallTarget<p::LengthReply(p::KeysArgs)> length;
  rpc::CallTarget<p::WireStatus(p::KeysArgs)> erase;
  rpc::CallTarget<p::ListReply(p::ListArgs)> list;
  rpc::CallTarget<p::CountReply(p::DatabaseId)> count;

  // Bytes travel by bulk when over the inline limit, except in-process (no message at all).
  bool use_bulk(size_t bytes) const { return !endpoint.is_self() && bytes > options.inline_limit; }
  // A put's keys and values (`bytes` in all) travel by bulk transfer (ClientOptions).
  bool put_uses_bulk(size_t bytes, std::span<const size_t> value_sizes) const {
    if (endpoint.is_self()) return false;
    if (bytes > options.put_inline_limit) return true;
    return std::any_of(value_sizes.begin(), value_sizes.end(),
                       [this](size_t size) { return size > options.inline_limit; });
  }
  // Throws kv::Error for a failed reply, naming the database and provider.
  void check(const p::WireStatus& status) const;
};

// Keys (or values) of a batch packed into one buffer, when the caller gave separate strings.
struct Packed {
  std::vector<std::byte> bytes;
  std::vector<size_t> sizes;
};
Packed pack(std::span<const std::string> items);

// The caller's bytes exposed read-only for the provider to pull; const_cast is safe since the
// access mode forbids writes.
rpc::Bulk expose_readonly(rpc::Engine& engine, std::span<const std::span<const std::byte>> parts);

// A Keys argument for `bytes`/`sizes`: inline, or exposed as a bulk when large.
p::Keys make_keys(const DatabaseState& state, std::span<const std::byte> bytes,
                  std::span<const size_t> sizes);

// A put request for packed keys and values (inline, or one bulk of both when large).
p::PutArgs make_put(const DatabaseState& state, std::span<const std::byte> keys,
                    std::span<const size_t> key_sizes, std::span<const std::byte> values,
                    std::span<const size_t> value_sizes, PutMode mode);
// The per-key outcome of a put reply (after check()).
std::vector<bool> applied_of(p::PutReply& reply, size_t count);

// Finishes a get of several keys whose first reply is `reply`: asks again with a buffer of the
// announced size while the provider says the values need one, then splits them.
std::vector<std::optional<std::string>> finish_get_multi(const DatabaseState& state,
                                                         p::GetArgs& args, p::GetReply reply);

}  // namespace dango::kv
