// The kv RPC handlers: check the request, call the backend, build the reply. Every failure
// becomes the reply's status (guarded), so one bad request never disturbs the others.

#include <algorithm>
#include <numeric>

#include "dango/thread/runtime.hpp"
#include "dango/thread/ult.hpp"
#include "services/kv/provider_state.hpp"

namespace dango::kv {

namespace p = protocol;

namespace {

size_t sum(const p::Sizes& sizes) {
  size_t total = 0;
  bool overflow = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    overflow |= __builtin_add_overflow(total, sizes[i], &total);
  }
  if (overflow) throw Error(ErrorCode::InvalidArgument, "sizes in the request overflow");
  return total;
}

// Splits `bytes` into views of sizes[begin, end) (whose sum is bytes.size()).
void split(std::span<const std::byte> bytes, const p::Sizes& sizes, size_t begin, size_t end,
           std::vector<std::string_view>& out) {
  out.resize(end - begin);
  const char* at = reinterpret_cast<const char*>(bytes.data());
  for (size_t i = begin; i < end; ++i) {
    const size_t size = sizes[i];
    out[i - begin] = std::string_view(at, size);
    at += size;
  }
}

void split(std::span<const std::byte> bytes, const p::Sizes& sizes,
           std::vector<std::string_view>& out) {
  split(bytes, sizes, 0, sizes.size(), out);
}

std::string quoted(std::string_view key) {
  constexpr size_t kShown = 64;
  std::string out = "\"";
  out.append(key.substr(0, kShown));
  if (key.size() > kShown) out += "...";
  return out + "\"";
}

void throw_if_failed(const Status& status) {
  if (!status.ok()) throw Error(status.code, status.message);
}

void check_bulk_holds(const rpc::Bulk& bulk, size_t size) {
  if (bulk.size() < size) {
    throw Error(ErrorCode::InvalidArgument, "the request's bulk holds " +
                                                std::to_string(bulk.size()) + " bytes, not " +
                                                std::to_string(size));
  }
}

// Items [begin, end) of a put, whose values take `bytes` bytes from `offset` in the values.
struct PutPart {
  size_t begin = 0;
  size_t end = 0;
  size_t offset = 0;
  size_t bytes = 0;
};

// Cuts a put's values into parts of at most kPutPartBytes (a larger value is a part alone).
std::vector<PutPart> plan_parts(const p::Sizes& value_sizes) {
  std::vector<PutPart> parts;
  PutPart part;
  for (size_t i = 0; i < value_sizes.size(); ++i) {
    if (part.end > part.begin && part.bytes + value_sizes[i] > kPutPartBytes) {
      parts.push_back(part);
      part = {.begin = i, .end = i, .offset = part.offset + part.bytes, .bytes = 0};
    }
    part.end = i + 1;
    part.bytes += value_sizes[i];
  }
  if (part.end > part.begin) parts.push_back(part);
  return parts;
}

// Joins a ULT when the scope ends, also on an exception: the ULT writes into buffers of that
// scope. Its own failure is reported by the explicit join() of the normal path.
struct JoinOnExit {
  thread::Ult ult;
  ~JoinOnExit() {
    if (!ult.joinable()) return;
    try {
      ult.join();
    } catch (...) {
    }
  }
};

}  // namespace

size_t ProviderState::key_limit(const Backend& backend) const {
  return std::min(options_.max_key_size, backend.max_key_size());
}

void ProviderState::check_keys(std::span<const std::string_view> keys,
                               const Backend& backend) const {
  const size_t limit = key_limit(backend);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty() || keys[i].size() > limit) check_key(keys[i], i, backend);
  }
}

void ProviderState::check_key(std::string_view key, size_t index, const Backend& backend) const {
  if (key.empty()) {
    throw Error(ErrorCode::InvalidArgument, "empty key (at index " + std::to_string(index) + ")");
  }
  const size_t limit = key_limit(backend);
  if (key.size() > limit) {
    throw Error(ErrorCode::SizeLimit,
                "key " + quoted(key) + " has " + std::to_string(key.size()) +
                    " bytes, over the limit of " + std::to_string(limit) +
                    (limit == options_.max_key_size
                         ? " (provider max_key_size)"
                         : " (the " + std::string(backend.type()) + " backend's maximum)"));
  }
}

BufferPool::Lease ProviderState::pull(const rpc::Request& request, const rpc::Bulk& bulk,
                                      size_t offset, size_t size) const {
  check_bulk_holds(bulk, offset + size);
  BufferPool::Lease buffer = buffers_.take(size);
  if (size == 0) return buffer;
  engine_.pull(request.source(), bulk, offset, buffer.bulk(), 0, size);
  return buffer;
}

KeyBatch ProviderState::read_keys(const rpc::Request& request, const p::Keys& keys,
                                  const Backend& backend) const {
  KeyBatch batch;
  const size_t total = sum(keys.sizes);
  std::span<const std::byte> bytes = keys.bytes;
  if (keys.bulk) {
    batch.pulled = pull(request, *keys.bulk, 0, total);
    bytes = batch.pulled.bytes();
  }
  if (bytes.size() != total) {
    throw Error(ErrorCode::InvalidArgument, "key sizes add up to " + std::to_string(total) +
                                                " bytes but the request carries " +
                                                std::to_string(bytes.size()));
  }
  split(bytes, keys.sizes, batch.keys);
  check_keys(batch.keys, backend);
  return batch;
}

p::OpenReply ProviderState::open(const std::string& name) {
  return guarded<p::OpenReply>([&](p::OpenReply& reply) {
    std::shared_lock lock(table_mutex_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      throw Error(ErrorCode::UnknownDatabase, "no database \"" + name + "\" at this provider");
    }
    reply.id = it->second.id;
    reply.type = it->second.config.type;
  });
}

void ProviderState::check_items(std::span<const std::string_view> keys,
                                const p::Sizes& value_sizes, const Backend& backend) const {
  const size_t limit = key_limit(backend);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty() || keys[i].size() > limit) check_key(keys[i], i, backend);
    if (value_sizes[i] > options_.max_value_size) {
      throw Error(ErrorCode::SizeLimit, "value of key " + quoted(keys[i]) + " has " +
                                            std::to_string(value_sizes[i]) +
                                            " bytes, over the provider's max_value_size of " +
                                            std::to_string(options_.max_value_size));
    }
  }
}

p::PutReply ProviderState::put(const rpc::Request& request, const p::PutArgs& args) {
  return guarded<p::PutReply>([&](p::PutReply& reply) {
    std::shared_ptr<Backend> backend = find(args.db);
    if (args.key_sizes.size() != args.value_sizes.size()) {
      throw Error(ErrorCode::InvalidArgument,
                  "put of " + std::to_string(args.key_sizes.size()) + " keys with " +
                      std::to_string(args.value_sizes.size()) + " values");
    }
    const size_t key_bytes = sum(args.key_sizes);
    const size_t value_bytes = sum(args.value_sizes);
    if (key_bytes > std::numeric_limits<size_t>::max() - value_bytes) {
      throw Error(ErrorCode::InvalidArgument, "put sizes overflow");
    }
    std::vector<bool> applied;
    if (args.bulk) check_bulk_holds(*args.bulk, key_bytes + value_bytes);
    if (args.bulk && value_bytes > 2 * kPutPartBytes && backend->accepts_puts_in_parts()) {
      put_in_parts(request, args, key_bytes, *backend, applied);
    } else {
      BufferPool::Lease pulled;
      std::span<const std::byte> key_span = args.keys, value_span = args.values;
      if (args.bulk) {
        pulled = pull(request, *args.bulk, 0, key_bytes + value_bytes);
        key_span = pulled.bytes().first(key_bytes);
        value_span = pulled.bytes().subspan(key_bytes);
      }
      if (key_span.size() != key_bytes || value_span.size() != value_bytes) {
        throw Error(ErrorCode::InvalidArgument, "put sizes add up to " + std::to_string(key_bytes) +
                                                    " + " + std::to_string(value_bytes) +
                                                    " bytes but the request carries " +
                                                    std::to_string(key_span.size()) + " + " +
                                                    std::to_string(value_span.size()));
      }
      std::vector<std::string_view> keys, values;
      split(key_span, args.key_sizes, keys);
      split(value_span, args.value_sizes, values);
      check_items(keys, args.value_sizes, *backend);
      write(*backend, keys, values, args.mode, applied);
    }
    const bool conditional = args.mode == PutMode::NewOnly || args.mode == PutMode::ExistOnly;
    if (conditional) reply.applied = std::move(applied);
  });
}

void ProviderState::put_in_parts(const rpc::Request& request, const p::PutArgs& args,
                                 size_t key_bytes, Backend& backend,
                                 std::vector<bool>& applied) const {
  const std::vector<PutPart> parts = plan_parts(args.value_sizes);
  // The keys come with the first part and are all checked before anything is written.
  BufferPool::Lease first = pull(request, *args.bulk, 0, key_bytes + parts[0].bytes);
  std::vector<std::string_view> keys, values;
  split(first.bytes().first(key_bytes), args.key_sizes, keys);
  check_items(keys, args.value_sizes, backend);
  size_t room = 0;
  for (const PutPart& part : parts) room = std::max(room, part.bytes);
  // Part j >= 1 is pulled into ring[(j - 1) % ring.size()], while part j - ahead.. j - 1 are
  // written: up to `ahead` pulls in flight, so that the sender always has a request to serve.
  const size_t ahead = std::min(kPutPartsAhead, parts.size() - 1);
  std::vector<BufferPool::Lease> ring(ahead + 1);
  std::vector<JoinOnExit> pulls(parts.size());
  size_t started = 1;  // parts [1, started) are being pulled
  applied.assign(keys.size(), true);
  std::vector<bool> part_applied;
  for (size_t k = 0; k < parts.size(); ++k) {
    // Each pull leaves before part k is written, so the sender fills the connection while this
    // stream is busy with the store.
    const bool starting = started <= k + ahead && started < parts.size();
    for (; started <= k + ahead && started < parts.size(); ++started) {
      BufferPool::Lease& into = ring[(started - 1) % ring.size()];
      if (into.bytes().empty()) into = buffers_.take(room);
      const PutPart coming = parts[started];
      pulls[started].ult = thread::current_pool().spawn([&, coming] {
        engine_.pull(request.source(), *args.bulk, key_bytes + coming.offset, into.bulk(), 0,
                     coming.bytes);
      });
    }
    if (starting) thread::this_ult::yield();
    const PutPart& part = parts[k];
    if (k > 0) pulls[k].ult.join();
    std::span<const std::byte> bytes =
        k == 0 ? first.bytes().subspan(key_bytes) : ring[(k - 1) % ring.size()].bytes();
    split(bytes.first(part.bytes), args.value_sizes, part.begin, part.end, values);
    write(backend, std::span(keys).subspan(part.begin, values.size()), values, args.mode,
          part_applied);
    std::copy(part_applied.begin(), part_applied.end(), applied.begin() + part.begin);
  }
}

void ProviderState::write(Backend& backend, std::span<const std::string_view> keys,
                          std::span<const std::string_view> values, PutMode mode,
                          std::vector<bool>& applied) const {
  if (!backend.accepts_short_writes()) {
    size_t bytes = 0;
    for (size_t i = 0; i < keys.size(); ++i) bytes += keys[i].size() + values[i].size();
    if (bytes < kOffloadedPutBytes) {
      throw_if_failed(backend.put(keys, values, mode, applied));
    } else {
      throw_if_failed(writer_.run([&] { return backend.put(keys, values, mode, applied); }));
    }
    return;
  }
  applied.assign(keys.size(), true);
  std::vector<bool> slice_applied;
  size_t begin = 0;
  while (begin < keys.size()) {
    // The slice ends once it holds kPutSliceBytes (it always holds at least one item).
    size_t end = begin, bytes = 0;
    while (end < keys.size() && (end == begin || bytes < kPutSliceBytes)) {
      bytes += keys[end].size() + values[end].size();
      ++end;
    }
    if (begin > 0) thread::this_ult::yield();  // receive what arrived meanwhile
    if (begin == 0 && end == keys.size()) {
      throw_if_failed(backend.put(keys, values, mode, applied));
      return;
    }
    throw_if_failed(backend.put(keys.subspan(begin, end - begin),
                                values.subspan(begin, end - begin), mode, slice_applied));
    std::copy(slice_applied.begin(), slice_applied.end(), applied.begin() + begin);
    begin = end;
  }
}

p::GetReply ProviderState::get(const rpc::Request& request, const p::GetArgs& args) {
  return guarded<p::GetReply>([&](p::GetReply& reply) {
    std::shared_ptr<Backend> backend = find(args.db);
    KeyBatch batch = read_keys(request, args.keys, *backend);
    const size_t n = batch.keys.size();
    const size_t inline_room = args.any_size_inline ? kNotFound : options_.inline_limit;
    auto fits = [&](size_t bytes) {
      return bytes <= args.capacity &&
             (bytes <= inline_room || (args.out && bytes <= args.out->size()));
    };
    if (args.consume) {
      // Nothing may be consumed that cannot be delivered: check the sizes first.
      reply.sizes.assign(n, kNotFound);
      throw_if_failed(backend->length(batch.keys, reply.sizes));
      size_t needed = 0;
      for (size_t s : reply.sizes) needed += s == kNotFound ? 0 : s;
      if (!fits(needed)) {
        reply.needs_buffer = true;
        return;
      }
    }
    reply.sizes.assign(n, kNotFound);
    // Values are gathered in key order; a value of an earlier key always precedes a later one.
    size_t last = 0;
    bool in_order = true;
    auto visit = [&](size_t i, std::string_view value) {
      in_order = in_order && (reply.values.empty() || i > last);
      last = i;
      reply.sizes[i] = value.size();
      reply.values.append(value);
    };
    throw_if_failed(backend->get(batch.keys, args.consume, visit));
    if (!in_order) {
      throw Error(ErrorCode::Internal,
                  "backend " + std::string(backend->type()) + " visited keys out of order");
    }
    if (reply.values.size() <= inline_room && reply.values.size() <= args.capacity) return;
    if (!fits(reply.values.size()) && !args.consume) {
      reply.values.clear();  // the caller asks again with a buffer of the size it now knows
      reply.needs_buffer = true;
      return;
    }
    deliver(request, args, reply);
  });
}

void ProviderState::deliver(const rpc::Request& request, const p::GetArgs& args,
                            p::GetReply& reply) const {
  // A consumed value that grew since its size was checked travels inline: it is already erased.
  if (!args.out || reply.values.size() > args.out->size()) return;
  std::span<std::byte> bytes(reinterpret_cast<std::byte*>(reply.values.data()),
                             reply.values.size());
  rpc::Bulk local = engine_.expose(bytes, rpc::Access::kReadOnly);
  engine_.push(request.source(), *args.out, 0, local, 0, bytes.size());
  reply.values.clear();
  reply.pushed = true;
}

p::LengthReply ProviderState::length(const rpc::Request& request, const p::KeysArgs& args) {
  return guarded<p::LengthReply>([&](p::LengthReply& reply) {
    std::shared_ptr<Backend> backend = find(args.db);
    KeyBatch batch = read_keys(request, args.keys, *backend);
    reply.sizes.assign(batch.keys.size(), kNotFound);
    throw_if_failed(backend->length(batch.keys, reply.sizes));
  });
}

p::WireStatus ProviderState::erase(const rpc::Request& request, const p::KeysArgs& args) {
  return guarded<p::WireStatus>([&](p::WireStatus&) {
    std::shared_ptr<Backend> backend = find(args.db);
    KeyBatch batch = read_keys(request, args.keys, *backend);
    throw_if_failed(backend->erase(batch.keys));
  });
}

p::ListReply ProviderState::list(const p::ListArgs& args) {
  return guarded<p::ListReply>([&](p::ListReply& reply) {
    std::shared_ptr<Backend> backend = find(args.db);
    const uint64_t max = args.max;
    size_t bytes = 0;
    auto visit = [&](std::string_view key, std::string_view value) {
      if (reply.key_sizes.size() >= max) return false;
      // Always at least one entry per page, so that a caller paging through makes progress.
      if (!reply.key_sizes.empty() && bytes + key.size() + value.size() > options_.max_list_reply)
        return false;
      reply.key_sizes.push_back(key.size());
      reply.keys.append(key);
      if (args.with_values) {
        reply.value_sizes.push_back(value.size());
        reply.values.append(value);
      }
      bytes += key.size() + value.size() + 2 * sizeof(size_t);
      return true;
    };
    if (max == 0) return;
    ListQuery query{.start = args.start,
                    .inclusive = args.inclusive,
                    .prefix = args.prefix,
                    .with_values = args.with_values};
    throw_if_failed(backend->list(query, visit));
  });
}

p::CountReply ProviderState::count(p::DatabaseId db) {
  return guarded<p::CountReply>([&](p::CountReply& reply) {
    std::shared_ptr<Backend> backend = find(db);
    throw_if_failed(backend->count(reply.count));
  });
}

p::OpenReply ProviderState::admin_add(const p::DatabaseSpecWire& spec, bool must_create) {
  return guarded<p::OpenReply>([&](p::OpenReply& reply) {
    DatabaseConfig config{.name = spec.name, .type = spec.type};
    if (!spec.config.empty()) {
      config.config = nlohmann::json::parse(spec.config, nullptr, false);
      if (config.config.is_discarded()) {
        throw Error(ErrorCode::InvalidArgument,
                    "database \"" + spec.name + "\": its config is not valid JSON");
      }
    }
    add_database(config, must_create, "config");
    reply = open(spec.name);
  });
}

p::WireStatus ProviderState::admin_close(const std::string& name, bool destroy) {
  return guarded<p::WireStatus>([&](p::WireStatus&) { close_database(name, destroy); });
}

p::ListDatabasesReply ProviderState::admin_list() {
  return guarded<p::ListDatabasesReply>([&](p::ListDatabasesReply& reply) {
    for (const DatabaseInfo& info : databases()) {
      reply.names.push_back(info.name);
      reply.types.push_back(info.type);
    }
  });
}

}  // namespace dango::kv
