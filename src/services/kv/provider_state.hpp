#pragma once
// What a kv::Provider owns: its databases (by name and by the id handed to clients), its limits,
// and the RPC handlers (provider_handlers.cpp). The table is read on every request under a
// shared lock; admin operations change it under an exclusive one.

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/services/kv/options.hpp"
#include "dango/thread/worker_thread.hpp"
#include "services/kv/backend.hpp"
#include "services/kv/buffer_pool.hpp"
#include "services/kv/protocol.hpp"

namespace dango::kv {

// A put whose values exceed twice this size and travel by bulk is pulled and written in parts of
// about this size, each part pulled while the one before is written: the transfer overlaps the
// store's work, the bytes pulled are still in cache when the store copies them (a 64 MiB batch
// pulled whole is back in memory by then), and no request needs a buffer of its whole size.
// Such a batch reaches the store as several backend writes, unless the store prefers one
// (Backend::accepts_puts_in_parts); every key and value size is checked before the first.
// Measured with batches of 1,024 x 64 KiB (dango-bench kv, medians of 3 runs, ratio to direct):
// map 0.49x whole -> 0.81x in parts over tcp, 0.40x -> 0.75x over sm; rocksdb 0.53x -> 0.85x
// over tcp, 0.49x -> 0.98x over sm. Over tcp each part costs a round trip that the client must
// serve: on a loaded machine 1 MiB parts fell to 0.17x where 4 MiB parts kept 0.34x (0.39x whole).
inline constexpr size_t kPutPartBytes = size_t{4} << 20;
// Parts being pulled while one is written. Keeping 3 or 4 in flight measured no better than 1.
inline constexpr size_t kPutPartsAhead = 1;
// A store that accepts short writes (Backend::accepts_short_writes) gets a large put as writes
// of about this many bytes of keys and values, and the handler yields between them: the
// provider's stream then keeps reading what its clients send meanwhile (the next requests and
// the bytes of pulls in flight) instead of leaving them in the socket, whose buffer fills in
// well under a millisecond at loopback speed and then stalls the sender until the store is done.
// Measured with dango-bench kv over tcp (batches of 1,024, medians of 5 runs alternating with
// slices off): map 4 KiB values 361K -> 436K items/s, 64 KiB 25K -> 28K; unordered_map 4 KiB
// 303K -> 344K. Slices of 64 KiB and of 1 MiB measured the same as 256 KiB.
inline constexpr size_t kPutSliceBytes = size_t{256} << 10;
// A put of at least this many bytes into a store that takes no short writes runs on the
// provider's writer thread (thread::WorkerThread), so that the stream keeps receiving meanwhile.
inline constexpr size_t kOffloadedPutBytes = size_t{512} << 10;

// A request's keys, checked and ready for the backend; owns pulled bytes when they came by bulk.
struct KeyBatch {
  BufferPool::Lease pulled;
  std::vector<std::string_view> keys;
};

class ProviderState {
 public:
  ProviderState(rpc::Engine& engine, ProviderOptions options);

  // Admin (throw kv::Error / ConfigError).
  void add_database(const DatabaseConfig& config, bool must_create, const std::string& config_path);
  void close_database(const std::string& name, bool destroy);
  std::vector<DatabaseInfo> databases() const;
  nlohmann::json config() const;
  void close_all();

  // RPC handlers: never throw (every failure becomes the reply's status).
  protocol::OpenReply open(const std::string& name);
  protocol::PutReply put(const rpc::Request& request, const protocol::PutArgs& args);
  protocol::GetReply get(const rpc::Request& request, const protocol::GetArgs& args);
  protocol::LengthReply length(const rpc::Request& request, const protocol::KeysArgs& args);
  protocol::WireStatus erase(const rpc::Request& request, const protocol::KeysArgs& args);
  protocol::ListReply list(const protocol::ListArgs& args);
  protocol::CountReply count(protocol::DatabaseId db);
  protocol::OpenReply admin_add(const protocol::DatabaseSpecWire& spec, bool must_create);
  protocol::WireStatus admin_close(const std::string& name, bool destroy);
  protocol::ListDatabasesReply admin_list();

 private:
  struct Entry {
    protocol::DatabaseId id = 0;
    DatabaseConfig config;
    std::shared_ptr<Backend> backend;
  };
  // The backend behind `id`, or throws kv::Error(UnknownDatabase).
  std::shared_ptr<Backend> find(protocol::DatabaseId id) const;
  // Checks a request's keys (non-empty, within limits, sizes adding up) and pulls them when they
  // came by bulk. Throws kv::Error.
  KeyBatch read_keys(const rpc::Request& request, const protocol::Keys& keys,
                     const Backend& backend) const;
  // The longest key accepted into `backend`.
  size_t key_limit(const Backend& backend) const;
  // Checks that the keys are non-empty and within key_limit (throws kv::Error naming the first
  // that is not, through check_key).
  void check_keys(std::span<const std::string_view> keys, const Backend& backend) const;
  void check_key(std::string_view key, size_t index, const Backend& backend) const;
  // Checks the keys and value sizes of a put (throws kv::Error).
  void check_items(std::span<const std::string_view> keys, const protocol::Sizes& value_sizes,
                   const Backend& backend) const;
  // Writes values[i] under keys[i] (checked): in slices of kPutSliceBytes with a yield between
  // them when the store accepts short writes, else in one put, made on writer_ from
  // kOffloadedPutBytes on. Throws kv::Error.
  void write(Backend& backend, std::span<const std::string_view> keys,
             std::span<const std::string_view> values, PutMode mode,
             std::vector<bool>& applied) const;
  // Writes a put whose bytes are in the caller's bulk part by part (kPutPartBytes).
  void put_in_parts(const rpc::Request& request, const protocol::PutArgs& args, size_t key_bytes,
                    Backend& backend, std::vector<bool>& applied) const;
  // Pulls `size` bytes at `offset` of the caller's `bulk` into a pooled buffer.
  BufferPool::Lease pull(const rpc::Request& request, const rpc::Bulk& bulk, size_t offset,
                         size_t size) const;
  // Delivers gathered values: inline, or pushed into the caller's bulk `out`.
  void deliver(const rpc::Request& request, const protocol::GetArgs& args,
               protocol::GetReply& reply) const;

  rpc::Engine& engine_;
  ProviderOptions options_;
  mutable BufferPool buffers_;
  // The OS thread of the large puts into stores that take no short writes: the handler waits
  // as a ULT, so the provider's stream keeps receiving the next pulls and requests meanwhile.
  mutable thread::WorkerThread writer_;
  std::mutex admin_mutex_;  // one admin operation at a time (opening a store may be slow)
  mutable std::shared_mutex table_mutex_;
  std::map<std::string, Entry, std::less<>> by_name_;
  std::unordered_map<protocol::DatabaseId, std::shared_ptr<Backend>> by_id_;
  protocol::DatabaseId next_id_ = 1;
};

// Logs a failed request: store trouble (IoError, Corruption, Internal) as a warning, the
// caller's mistakes (bad keys, modes refused) at debug level.
void log_failure(const protocol::WireStatus& status);

// Runs `body`, turning any exception into `reply.status` (or the WireStatus itself).
template <class Reply, class Body>
Reply guarded(Body&& body) {
  Reply reply{};
  auto status_of = [](Reply& r) -> protocol::WireStatus& {
    if constexpr (std::is_same_v<Reply, protocol::WireStatus>) {
      return r;
    } else {
      return r.status;
    }
  };
  try {
    body(reply);
  } catch (const Error& e) {
    reply = Reply{};
    status_of(reply) = {e.code(), e.what()};
  } catch (const ConfigError& e) {
    reply = Reply{};
    status_of(reply) = {ErrorCode::InvalidArgument, e.what()};
  } catch (const std::exception& e) {
    reply = Reply{};
    status_of(reply) = {ErrorCode::Internal, e.what()};
  }
  if (status_of(reply).code != ErrorCode::Ok) log_failure(status_of(reply));
  return reply;
}

}  // namespace dango::kv
