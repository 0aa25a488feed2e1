#pragma once
// The interface every key/value store implements, and the registry that makes one by type name.
// A backend is one file in backends/ plus one line:
//
//   DANGO_REGISTER_KV_BACKEND(rocksdb, RocksDbBackend);
//
// where RocksDbBackend derives from Backend, is constructible as
// RocksDbBackend(const nlohmann::json& config, const BackendContext& context), and declares
// `static constexpr bool kPersistent` and `kOrdered`. Backends report failures as Status values
// (the provider turns them into replies once); they never throw except from their constructor
// (a bad config is a ConfigError, a store that cannot be opened a kv::Error).
//
// Threading: every method may be called concurrently from several execution streams. Each call
// must apply its modes atomically per key (NewOnly, ExistOnly, Append, consume) and must not
// block on anything but the store itself (no RPC, no ULT yield).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dango/services/kv/errors.hpp"
#include "dango/services/kv/types.hpp"

namespace dango::kv {

// The outcome of a backend call: cheap when ok.
struct Status {
  ErrorCode code = ErrorCode::Ok;
  std::string message;

  bool ok() const { return code == ErrorCode::Ok; }
  static Status Ok() { return {}; }
  static Status Fail(ErrorCode code, std::string message) { return {code, std::move(message)}; }
};

// A non-owning reference to a callable, for visitors called in backend loops (no allocation,
// unlike std::function). The callable must outlive the FunctionRef.
template <class Signature>
class FunctionRef;
template <class R, class... A>
class FunctionRef<R(A...)> {
 public:
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, A...>)
      FunctionRef(F& f)  // NOLINT: implicit on purpose, like std::function
      : object_(static_cast<void*>(std::addressof(f))),
        call_([](void* o, A... a) -> R { return (*static_cast<F*>(o))(std::forward<A>(a)...); }) {}
  R operator()(A... a) const { return call_(object_, std::forward<A>(a)...); }

 private:
  void* object_;
  R (*call_)(void*, A...);
};

// Called for each key found by get: (index of the key in the batch, its value). The value is
// valid only during the call.
using ValueVisitor = FunctionRef<void(size_t, std::string_view)>;
// Called for each listed entry in key order (value empty unless asked for); returns false to stop.
using EntryVisitor = FunctionRef<bool(std::string_view key, std::string_view value)>;

// A listing request as the backend sees it (see ListOptions).
struct ListQuery {
  std::string_view start;
  bool inclusive = true;
  std::string_view prefix;
  bool with_values = false;
};

// Where a backend is being made.
struct BackendContext {
  std::string name;          // the database's name (for messages)
  std::string config_path;   // JSON path of its config, for ConfigError messages
  bool must_create = false;  // fail with DatabaseExists when the store already holds data
};

class Backend {
 public:
  virtual ~Backend() = default;

  // The registered type name ("rocksdb").
  virtual std::string_view type() const = 0;
  // The effective configuration (every option, defaults filled in).
  virtual nlohmann::json config() const = 0;
  // Longest key the store accepts (LMDB: 511 bytes by default); the provider checks it.
  virtual size_t max_key_size() const { return std::numeric_limits<size_t>::max(); }
  // Whether the provider may hand a large batch pulled in parts to the store as one put per
  // part (default true). False for a store where each write costs in proportion to the writes
  // rather than the bytes (LevelDB: a write that fills the memtable makes a level-0 file, and
  // many such files stall writes), so that it gets the batch in one put.
  virtual bool accepts_puts_in_parts() const { return true; }
  // Whether the provider may also hand a large put to the store as several short writes of a
  // few hundred KiB (default false), yielding its execution stream between them so that the
  // network keeps flowing while the store works. True only for a store whose writes cost in
  // proportion to their bytes, with no fixed cost per write worth counting (no commit to disk).
  // (RocksDB, even without sync, measured slower so: 4 MiB batches of 4 KiB values went from
  // 156K to 144-151K items/s over tcp written in 16 writes instead of one.)
  virtual bool accepts_short_writes() const { return false; }

  // Writes values[i] under keys[i] as `mode` says; applied[i] tells whether it was written
  // (always true for Overwrite and Append). Keys and values are already validated.
  virtual Status put(std::span<const std::string_view> keys,
                     std::span<const std::string_view> values, PutMode mode,
                     std::vector<bool>& applied) = 0;
  // Calls `visit(i, value)` for each present key; with `consume` also erases it, atomically.
  virtual Status get(std::span<const std::string_view> keys, bool consume, ValueVisitor visit) = 0;
  // sizes[i] = the value size of keys[i], or kNotFound.
  virtual Status length(std::span<const std::string_view> keys, std::span<size_t> sizes) = 0;
  // Erases the keys (absent keys are no error).
  virtual Status erase(std::span<const std::string_view> keys) = 0;
  // Visits entries in key order from query.start; Unsupported for unordered stores.
  virtual Status list(const ListQuery& query, EntryVisitor visit) = 0;
  // Number of keys; its cost is the backend's (O(n) for rocksdb and leveldb).
  virtual Status count(uint64_t& count) = 0;

  // Asks the backend to delete its data (files) when it is destroyed, i.e. once the last
  // request using it has finished.
  void destroy_when_closed() { destroy_when_closed_ = true; }

 protected:
  bool destroy_when_closed_ = false;
};

using BackendFactory =
    std::function<std::unique_ptr<Backend>(const nlohmann::json& config, const BackendContext&)>;

// Registers a backend type; called at static-initialisation time by the macro below. Aborts on
// a duplicate name (two files registering the same type is a build mistake).
bool register_backend(BackendDescription description, BackendFactory factory);

// The registry entry of backend class `Type` under `name`.
template <class Type>
BackendDescription describe_backend(const char* name) {
  BackendDescription description;
  description.name = name;
  description.persistent = Type::kPersistent;
  description.ordered = Type::kOrdered;
  return description;
}

// Makes a backend of `type` from its JSON config. Throws kv::Error(UnknownBackend) naming the
// type and the registered ones, ConfigError for a bad config, kv::Error for a store that cannot
// be opened.
std::unique_ptr<Backend> make_backend(std::string_view type, const nlohmann::json& config,
                                      const BackendContext& context);

// Whether a store of this type keeps its keys in order (false when the type is unknown).
bool backend_is_ordered(std::string_view type);

}  // namespace dango::kv

#define DANGO_REGISTER_KV_BACKEND(name, Type)                                          \
  [[maybe_unused]] static const bool dango_kv_backend_##name##_registered =            \
      ::dango::kv::register_backend(                                                   \
          ::dango::kv::describe_backend<Type>(#name),                                  \
          [](const nlohmann::json& config, const ::dango::kv::BackendContext& context) \
              -> std::unique_ptr<::dango::kv::Backend> {                               \
            return std::make_unique<Type>(config, context);                            \
          })
