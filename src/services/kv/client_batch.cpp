// The batch operations of kv::Database: vectors of keys, packed buffers, asynchronous variants.

#include <cstring>

#include "dango/services/kv/client.hpp"
#include "services/kv/client_state.hpp"

namespace dango::kv {

p::PutArgs make_put(const DatabaseState& state, std::span<const std::byte> keys,
                    std::span<const size_t> key_sizes, std::span<const std::byte> values,
                    std::span<const size_t> value_sizes, PutMode mode) {
  p::PutArgs args{.db = state.id,
                  .mode = mode,
                  .key_sizes = key_sizes,
                  .value_sizes = value_sizes};
  if (state.put_uses_bulk(keys.size() + values.size(), value_sizes)) {
    const std::span<const std::byte> parts[] = {keys, values};
    args.bulk = expose_readonly(*state.engine, parts);
  } else {
    args.keys = keys;
    args.values = values;
  }
  return args;
}

std::vector<bool> applied_of(p::PutReply& reply, size_t count) {
  if (reply.applied.empty()) return std::vector<bool>(count, true);
  return std::move(reply.applied);
}

namespace {

size_t total_of(const std::vector<size_t>& sizes) {
  size_t total = 0;
  for (size_t s : sizes) total += s == kNotFound ? 0 : s;
  return total;
}

// Asks again, with a buffer of the announced size, while the values need one (a value may grow
// between two calls, hence the loop); returns the last reply and the buffer holding the values.
p::GetReply get_with_buffer(const DatabaseState& state, p::GetArgs& args, p::GetReply reply,
                            std::vector<std::byte>& buffer) {
  constexpr int kAttempts = 8;
  for (int attempt = 0; reply.needs_buffer; ++attempt) {
    if (attempt == kAttempts) {
      throw Error(ErrorCode::Internal,
                  "kv database \"" + state.name + "\": values kept growing while being read");
    }
    buffer.resize(total_of(reply.sizes));
    args.out = state.engine->expose(buffer, rpc::Access::kWriteOnly);
    reply = state.get(args);
    state.check(reply.status);
  }
  args.out.reset();
  return reply;
}

}  // namespace

std::vector<std::optional<std::string>> finish_get_multi(const DatabaseState& state,
                                                         p::GetArgs& args, p::GetReply reply) {
  std::vector<std::byte> buffer;
  reply = get_with_buffer(state, args, std::move(reply), buffer);
  const char* at =
      reply.pushed ? reinterpret_cast<const char*>(buffer.data()) : reply.values.data();
  const size_t available = reply.pushed ? buffer.size() : reply.values.size();
  std::vector<std::optional<std::string>> out(reply.sizes.size());
  size_t used = 0;
  for (size_t i = 0; i < reply.sizes.size(); ++i) {
    if (reply.sizes[i] == kNotFound) continue;
    if (used + reply.sizes[i] > available) throw Error(ErrorCode::Internal, "malformed get reply");
    out[i].emplace(at + used, reply.sizes[i]);
    used += reply.sizes[i];
  }
  return out;
}

// --- vectors of keys ---------------------------------------------------------------------------

namespace {

// What an asynchronous request keeps alive until its reply: the packed bytes the request points
// into, and the request itself, whose Bulk keeps those bytes exposed for the provider's pull.
struct Batch {
  Packed keys;
  Packed values;
  p::PutArgs put{};
  p::KeysArgs keys_args{};
};

template <class T, class Reply, class Finish>
Pending<T> make_pending(rpc::Pending<Reply> call, std::shared_ptr<void> keep, Finish finish) {
  auto shared = std::make_shared<rpc::Pending<Reply>>(std::move(call));
  return Pending<T>([shared, keep, finish]() mutable -> T { return finish(shared->wait()); },
                    [shared] { return shared->ready(); });
}

}  // namespace

std::vector<bool> Database::put_multi(std::span<const std::string> keys,
                                      std::span<const std::string> values, PutOptions options) {
  return put_multi_async(keys, values, options).wait();
}

Pending<std::vector<bool>> Database::put_multi_async(std::span<const std::string> keys,
                                                     std::span<const std::string> values,
                                                     PutOptions options) {
  if (keys.size() != values.size()) {
    state_->check({ErrorCode::InvalidArgument, "put_multi of " + std::to_string(keys.size()) +
                                                   " keys with " + std::to_string(values.size()) +
                                                   " values"});
  }
  auto batch = std::make_shared<Batch>(Batch{pack(keys), pack(values)});
  batch->put = make_put(*state_, batch->keys.bytes, batch->keys.sizes, batch->values.bytes,
                        batch->values.sizes, options.mode);
  auto call = state_->put.async(batch->put);
  return make_pending<std::vector<bool>>(std::move(call), batch,
                                         [state = state_, n = keys.size()](p::PutReply reply) {
                                           state->check(reply.status);
                                           return applied_of(reply, n);
                                         });
}

std::vector<std::optional<std::string>> Database::get_multi(std::span<const std::string> keys,
                                                            GetOptions options) {
  return get_multi_async(keys, options).wait();
}

Pending<std::vector<std::optional<std::string>>> Database::get_multi_async(
    std::span<const std::string> keys, GetOptions options) {
  auto batch = std::make_shared<Batch>(Batch{pack(keys), {}});
  auto args = std::make_shared<p::GetArgs>(
      p::GetArgs{.db = state_->id,
                 .consume = options.consume,
                 .keys = make_keys(*state_, batch->keys.bytes, batch->keys.sizes),
                 .any_size_inline = state_->endpoint.is_self()});
  auto call = state_->get.async(*args);
  return make_pending<std::vector<std::optional<std::string>>>(
      std::move(call), batch, [state = state_, args](p::GetReply reply) {
        state->check(reply.status);
        return finish_get_multi(*state, *args, std::move(reply));
      });
}

std::vector<bool> Database::exists_multi(std::span<const std::string> keys) {
  return exists_multi_async(keys).wait();
}

Pending<std::vector<bool>> Database::exists_multi_async(std::span<const std::string> keys) {
  Pending<std::vector<size_t>> lengths = length_multi_async(keys);
  auto shared = std::make_shared<Pending<std::vector<size_t>>>(std::move(lengths));
  return Pending<std::vector<bool>>(
      [shared] {
        std::vector<size_t> sizes = shared->wait();
        std::vector<bool> out(sizes.size());
        for (size_t i = 0; i < sizes.size(); ++i) out[i] = sizes[i] != kNotFound;
        return out;
      },
      [shared] { return shared->ready(); });
}

std::vector<size_t> Database::length_multi(std::span<const std::string> keys) {
  return length_multi_async(keys).wait();
}

Pending<std::vector<size_t>> Database::length_multi_async(std::span<const std::string> keys) {
  auto batch = std::make_shared<Batch>(Batch{pack(keys), {}});
  batch->keys_args = {.db = state_->id,
                      .keys = make_keys(*state_, batch->keys.bytes, batch->keys.sizes)};
  auto call = state_->length.async(batch->keys_args);
  return make_pending<std::vector<size_t>>(std::move(call), batch,
                                           [state = state_](p::LengthReply reply) {
                                             state->check(reply.status);
                                             return std::move(reply.sizes);
                                           });
}

void Database::erase_multi(std::span<const std::string> keys) { erase_multi_async(keys).wait(); }

Pending<void> Database::erase_multi_async(std::span<const std::string> keys) {
  auto batch = std::make_shared<Batch>(Batch{pack(keys), {}});
  batch->keys_args = {.db = state_->id,
                      .keys = make_keys(*state_, batch->keys.bytes, batch->keys.sizes)};
  auto call = state_->erase.async(batch->keys_args);
  return make_pending<void>(std::move(call), batch,
                            [state = state_](p::WireStatus status) { state->check(status); });
}

// --- packed ------------------------------------------------------------------------------------

std::vector<bool> Database::put_packed(std::span<const std::byte> keys,
                                       std::span<const size_t> key_sizes,
                                       std::span<const std::byte> values,
                                       std::span<const size_t> value_sizes, PutOptions options) {
  p::PutReply reply =
      state_->put(make_put(*state_, keys, key_sizes, values, value_sizes, options.mode));
  state_->check(reply.status);
  return applied_of(reply, key_sizes.size());
}

Pending<std::vector<bool>> Database::put_packed_async(std::span<const std::byte> keys,
                                                      std::span<const size_t> key_sizes,
                                                      std::span<const std::byte> values,
                                                      std::span<const size_t> value_sizes,
                                                      PutOptions options) {
  auto batch = std::make_shared<Batch>();
  batch->put = make_put(*state_, keys, key_sizes, values, value_sizes, options.mode);
  auto call = state_->put.async(batch->put);
  return make_pending<std::vector<bool>>(std::move(call), batch,
                                         [state = state_, n = key_sizes.size()](p::PutReply reply) {
                                           state->check(reply.status);
                                           return applied_of(reply, n);
                                         });
}

size_t Database::get_packed(std::span<const std::byte> keys, std::span<const size_t> key_sizes,
                            std::span<std::byte> values, std::span<size_t> value_sizes,
                            GetOptions options) {
  if (value_sizes.size() != key_sizes.size()) {
    state_->check({ErrorCode::InvalidArgument, "get_packed: " + std::to_string(value_sizes.size()) +
                                                   " value sizes for " +
                                                   std::to_string(key_sizes.size()) + " keys"});
  }
  p::GetArgs args{.db = state_->id,
                  .consume = options.consume,
                  .keys = make_keys(*state_, keys, key_sizes),
                  .capacity = values.size(),
                  .any_size_inline = state_->endpoint.is_self()};
  if (state_->use_bulk(values.size())) {
    args.out = state_->engine->expose(values, rpc::Access::kWriteOnly);
  }
  p::GetReply reply = state_->get(args);
  state_->check(reply.status);
  const size_t needed = total_of(reply.sizes);
  if (reply.needs_buffer) {
    state_->check({ErrorCode::BufferTooSmall,
                   "the values need " + std::to_string(needed) + " bytes, the buffer holds " +
                       std::to_string(values.size()) + " (nothing was consumed)"});
  }
  if (reply.sizes.size() != key_sizes.size() || needed > values.size() ||
      (!reply.pushed && reply.values.size() != needed)) {
    state_->check({ErrorCode::Internal, "malformed get reply"});
  }
  if (!reply.pushed && needed != 0) std::memcpy(values.data(), reply.values.data(), needed);
  std::copy(reply.sizes.begin(), reply.sizes.end(), value_sizes.begin());
  return needed;
}

}  // namespace dango::kv
