// kv::Client and the single-key, listing and counting operations of kv::Database.

#include "dango/services/kv/client.hpp"

#include <cstring>

#include "services/kv/client_state.hpp"

namespace dango::kv {

void DatabaseState::check(const p::WireStatus& status) const {
  if (status.code == ErrorCode::Ok) return;
  throw Error(status.code,
              "kv database \"" + name + "\" at " + endpoint.address() + ": " + status.message);
}

Packed pack(std::span<const std::string> items) {
  Packed packed;
  size_t total = 0;
  for (const auto& item : items) total += item.size();
  packed.bytes.resize(total);
  packed.sizes.reserve(items.size());
  std::byte* at = packed.bytes.data();
  for (const auto& item : items) {
    if (!item.empty()) std::memcpy(at, item.data(), item.size());
    at += item.size();
    packed.sizes.push_back(item.size());
  }
  return packed;
}

rpc::Bulk expose_readonly(rpc::Engine& engine, std::span<const std::span<const std::byte>> parts) {
  std::vector<std::span<std::byte>> segments;
  for (auto part : parts) {
    if (part.empty()) continue;
    segments.emplace_back(const_cast<std::byte*>(part.data()), part.size());
  }
  return engine.expose(segments, rpc::Access::kReadOnly);
}

p::Keys make_keys(const DatabaseState& state, std::span<const std::byte> bytes,
                  std::span<const size_t> sizes) {
  p::Keys keys{.sizes = sizes};
  if (state.use_bulk(bytes.size())) {
    const std::span<const std::byte> parts[] = {bytes};
    keys.bulk = expose_readonly(*state.engine, parts);
  } else {
    keys.bytes = bytes;
  }
  return keys;
}

namespace {

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string quoted(std::string_view key) {
  return "\"" + std::string(key.substr(0, 64)) + (key.size() > 64 ? "...\"" : "\"");
}

}  // namespace

// --- Client ------------------------------------------------------------------------------------

Database Client::open(std::string_view address, rpc::ProviderId provider_id,
                      std::string_view name) {
  return open(engine_.lookup(address), provider_id, name);
}

Database Client::open(const rpc::Endpoint& endpoint, rpc::ProviderId provider_id,
                      std::string_view name) {
  auto state =
      std::make_shared<DatabaseState>(engine_, endpoint, provider_id, options_, std::string(name));
  auto open =
      make_target<p::OpenReply(std::string)>(engine_, p::kOpen, endpoint, provider_id, options_);
  p::OpenReply reply = open(std::string(name));
  state->check(reply.status);
  state->id = reply.id;
  state->type = std::move(reply.type);
  return Database(std::move(state));
}

// --- single keys -------------------------------------------------------------------------------

const std::string& Database::name() const { return state_->name; }
const std::string& Database::type() const { return state_->type; }

void Database::put(std::string_view key, std::span<const std::byte> value, PutOptions options) {
  const size_t key_size = key.size(), value_size = value.size();
  p::PutReply reply = state_->put(
      make_put(*state_, bytes_of(key), {&key_size, 1}, value, {&value_size, 1}, options.mode));
  state_->check(reply.status);
  if (!applied_of(reply, 1)[0]) {
    const bool exists = options.mode == PutMode::NewOnly;
    state_->check({exists ? ErrorCode::KeyExists : ErrorCode::KeyNotFound,
                   "key " + quoted(key) +
                       (exists ? " already exists (PutMode::NewOnly)"
                               : " does not exist (PutMode::ExistOnly)")});
  }
}

void Database::put(std::string_view key, std::string_view value, PutOptions options) {
  put(key, bytes_of(value), options);
}

std::optional<std::string> Database::get(std::string_view key, GetOptions options) {
  const size_t key_size = key.size();
  p::GetArgs args{.db = state_->id,
                  .consume = options.consume,
                  .keys = make_keys(*state_, bytes_of(key), {&key_size, 1}),
                  .any_size_inline = state_->endpoint.is_self()};
  p::GetReply reply = state_->get(args);
  state_->check(reply.status);
  if (!reply.needs_buffer && !reply.pushed) {
    if (reply.sizes.size() != 1 || reply.sizes[0] == kNotFound) return std::nullopt;
    return std::move(reply.values);  // exactly the one value: no copy
  }
  auto values = finish_get_multi(*state_, args, std::move(reply));
  return std::move(values.at(0));
}

std::optional<size_t> Database::get(std::string_view key, std::span<std::byte> buffer,
                                    GetOptions options) {
  const size_t key_size = key.size();
  size_t value_size = kNotFound;
  get_packed(bytes_of(key), {&key_size, 1}, buffer, {&value_size, 1}, options);
  if (value_size == kNotFound) return std::nullopt;
  return value_size;
}

bool Database::exists(std::string_view key) { return length(key).has_value(); }

std::optional<size_t> Database::length(std::string_view key) {
  const size_t key_size = key.size();
  p::LengthReply reply = state_->length(
      p::KeysArgs{.db = state_->id, .keys = make_keys(*state_, bytes_of(key), {&key_size, 1})});
  state_->check(reply.status);
  if (reply.sizes.size() != 1 || reply.sizes[0] == kNotFound) return std::nullopt;
  return reply.sizes[0];
}

void Database::erase(std::string_view key) {
  const size_t key_size = key.size();
  state_->check(state_->erase(
      p::KeysArgs{.db = state_->id, .keys = make_keys(*state_, bytes_of(key), {&key_size, 1})}));
}

// --- listing -----------------------------------------------------------------------------------

namespace {

p::ListReply list_page(const DatabaseState& state, const ListOptions& options, bool values) {
  p::ListReply reply = state.list(p::ListArgs{.db = state.id,
                                              .start = options.start,
                                              .inclusive = options.inclusive,
                                              .prefix = options.prefix,
                                              .max = options.max,
                                              .with_values = values});
  state.check(reply.status);
  return reply;
}

std::vector<std::string> split(const std::string& bytes, const std::vector<size_t>& sizes) {
  std::vector<std::string> out;
  out.reserve(sizes.size());
  size_t at = 0;
  for (size_t s : sizes) {
    if (at + s > bytes.size()) throw Error(ErrorCode::Internal, "malformed listing reply");
    out.emplace_back(bytes, at, s);
    at += s;
  }
  return out;
}

}  // namespace

std::vector<std::string> Database::list_keys(const ListOptions& options) {
  p::ListReply reply = list_page(*state_, options, false);
  return split(reply.keys, reply.key_sizes);
}

std::vector<KeyValue> Database::list_keyvals(const ListOptions& options) {
  p::ListReply reply = list_page(*state_, options, true);
  std::vector<std::string> keys = split(reply.keys, reply.key_sizes);
  std::vector<std::string> values = split(reply.values, reply.value_sizes);
  if (keys.size() != values.size()) throw Error(ErrorCode::Internal, "malformed listing reply");
  std::vector<KeyValue> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i)
    out.push_back({std::move(keys[i]), std::move(values[i])});
  return out;
}

uint64_t Database::count() {
  p::CountReply reply = state_->count(state_->id);
  state_->check(reply.status);
  return reply.count;
}

}  // namespace dango::kv
