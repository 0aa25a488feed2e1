#pragma once
// The client side of the key/value service: kv::Client opens databases served by a kv::Provider,
// kv::Database issues the operations.
//
//   dango::kv::Database db = dango::kv::Client{engine}.open(address, /*provider*/ 1, "meta");
//   db.put("run/42", "payload");
//   std::optional<std::string> v = db.get("run/42");     // absent is a value, not an exception
//   db.put_multi(keys, values, {.mode = dango::kv::PutMode::NewOnly});
//
// Every operation is one RPC (two when a value turns out larger than a reply carries and the
// client must offer a buffer), blocks the calling ULT only, and throws kv::Error (with its
// ErrorCode) for what the provider refused, dango::NetworkError / TimeoutError when the provider
// cannot be reached. Batches whose bytes exceed ClientOptions::inline_limit travel by bulk
// transfer from and into the caller's memory. On the engine's own address the calls are function
// calls without serialization.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/kv/errors.hpp"
#include "dango/services/kv/options.hpp"
#include "dango/services/kv/types.hpp"

namespace dango::kv {

struct DatabaseState;

// The result of an asynchronous batch operation; wait() may be called once. Destroying it without
// waiting is allowed (the reply is then dropped), but the caller's buffers must stay valid until
// then.
template <class T>
class Pending {
 public:
  Pending() = default;
  explicit Pending(std::function<T()> wait, std::function<bool()> ready)
      : wait_(std::move(wait)), ready_(std::move(ready)) {}
  // Waits (yielding inside a ULT) and returns the result; throws as the synchronous call would.
  T wait() { return wait_(); }
  // True once wait() would not block.
  bool ready() const { return ready_(); }

 private:
  std::function<T()> wait_;
  std::function<bool()> ready_;
};

// A handle on one database at one provider. Cheap to copy; all copies share one connection.
class Database {
 public:
  // An empty handle; Client::open makes usable ones.
  Database() = default;
  const std::string& name() const;
  // The backend type ("rocksdb").
  const std::string& type() const;

  // --- single keys ---
  // Writes `value` under `key`. NewOnly on an existing key throws KeyExists; ExistOnly on a
  // missing key throws KeyNotFound. Empty or oversized keys and values throw.
  void put(std::string_view key, std::span<const std::byte> value, PutOptions options = {});
  void put(std::string_view key, std::string_view value, PutOptions options = {});
  // The value, or nothing when the key is absent. With `consume`, the key is erased too.
  std::optional<std::string> get(std::string_view key, GetOptions options = {});
  // Reads the value into `buffer` (no copy beyond the transfer for values above the inline
  // limit, which are pushed straight into it); returns its size, or nothing when absent. Throws
  // BufferTooSmall (and consumes nothing) when the value does not fit.
  std::optional<size_t> get(std::string_view key, std::span<std::byte> buffer,
                            GetOptions options = {});
  bool exists(std::string_view key);
  // The value's size in bytes, or nothing when absent.
  std::optional<size_t> length(std::string_view key);
  // Erases `key`; erasing an absent key is no error.
  void erase(std::string_view key);

  // --- batches (one RPC each; keys and values in the caller's vectors) ---
  // Writes values[i] under keys[i]; result[i] tells whether it was written (false only for
  // NewOnly on an existing key / ExistOnly on a missing one). Throws InvalidArgument when the
  // sizes differ, and on any invalid key (then nothing is written).
  std::vector<bool> put_multi(std::span<const std::string> keys,
                              std::span<const std::string> values, PutOptions options = {});
  std::vector<std::optional<std::string>> get_multi(std::span<const std::string> keys,
                                                    GetOptions options = {});
  std::vector<bool> exists_multi(std::span<const std::string> keys);
  // result[i] = size of the value of keys[i], or kNotFound.
  std::vector<size_t> length_multi(std::span<const std::string> keys);
  void erase_multi(std::span<const std::string> keys);

  // --- packed batches: one contiguous buffer plus sizes, for millions of small items ---
  // keys = the keys back to back, key_sizes their lengths; likewise values.
  std::vector<bool> put_packed(std::span<const std::byte> keys, std::span<const size_t> key_sizes,
                               std::span<const std::byte> values,
                               std::span<const size_t> value_sizes, PutOptions options = {});
  // Writes the values back to back into `values` and their sizes (kNotFound when absent) into
  // `value_sizes` (one per key); returns the bytes used. Throws BufferTooSmall (consuming
  // nothing) when they do not fit.
  size_t get_packed(std::span<const std::byte> keys, std::span<const size_t> key_sizes,
                    std::span<std::byte> values, std::span<size_t> value_sizes,
                    GetOptions options = {});

  // --- asynchronous batches: several may be outstanding from one ULT. The spans must stay
  // valid until wait() returns. ---
  Pending<std::vector<bool>> put_multi_async(std::span<const std::string> keys,
                                             std::span<const std::string> values,
                                             PutOptions options = {});
  Pending<std::vector<std::optional<std::string>>> get_multi_async(
      std::span<const std::string> keys, GetOptions options = {});
  Pending<std::vector<bool>> exists_multi_async(std::span<const std::string> keys);
  Pending<std::vector<size_t>> length_multi_async(std::span<const std::string> keys);
  Pending<void> erase_multi_async(std::span<const std::string> keys);
  // put_packed without waiting: the bytes are neither copied nor packed again (large batches are
  // pulled by the provider straight from `keys` and `values`). Keeping a few batches outstanding
  // lets the provider write one while the next travels.
  Pending<std::vector<bool>> put_packed_async(std::span<const std::byte> keys,
                                              std::span<const size_t> key_sizes,
                                              std::span<const std::byte> values,
                                              std::span<const size_t> value_sizes,
                                              PutOptions options = {});

  // --- listing, in key order (Unsupported on unordered backends) ---
  // Up to options.max keys from options.start with options.prefix. Page through with the last
  // key and `inclusive = false`; an empty page means the end.
  std::vector<std::string> list_keys(const ListOptions& options = {});
  std::vector<KeyValue> list_keyvals(const ListOptions& options = {});
  // The number of keys (O(n) on rocksdb and leveldb, which keep no count).
  uint64_t count();

 private:
  friend class Client;
  explicit Database(std::shared_ptr<const DatabaseState> state) : state_(std::move(state)) {}
  std::shared_ptr<const DatabaseState> state_;
};

// Opens databases at providers; cheap, holds only the engine reference and options.
class Client {
 public:
  explicit Client(rpc::Engine& engine, ClientOptions options = {})
      : engine_(engine), options_(options) {}
  // A handle on database `name` of provider `provider_id` at `address` (one RPC). Throws
  // UnknownDatabase when the provider has none by that name, RemoteError when there is no such
  // provider, NetworkError when the address cannot be reached.
  Database open(std::string_view address, rpc::ProviderId provider_id, std::string_view name);
  Database open(const rpc::Endpoint& endpoint, rpc::ProviderId provider_id, std::string_view name);
  rpc::Engine& engine() const { return engine_; }

 private:
  rpc::Engine& engine_;
  ClientOptions options_;
};

}  // namespace dango::kv
