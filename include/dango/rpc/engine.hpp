#pragma once
// The RPC engine (Dango's Mercury + Margo + Thallium): named, typed RPCs between processes,
// bulk transfers, providers, and a progress loop running in a ULT.
//
//   dango::rpc::Engine server{"tcp://127.0.0.1:0"};
//   server.define("sum", [](int a, int b) { return a + b; });
//   dango::rpc::Engine client{"tcp"};
//   int r = client.rpc<int(int, int)>("sum").on(client.lookup(server.address()))(1, 2);

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dango/net/transport.hpp"
#include "dango/rpc/bulk.hpp"
#include "dango/rpc/detail/handler.hpp"
#include "dango/rpc/endpoint.hpp"
#include "dango/rpc/monitor.hpp"
#include "dango/rpc/request.hpp"
#include "dango/rpc/types.hpp"
#include "dango/thread/options.hpp"
#include "dango/thread/runtime.hpp"

namespace dango::rpc {

template <class Signature>
class RemoteProcedure;
class EngineImpl;

struct EngineOptions {
  // Where to listen: "tcp://127.0.0.1:0" (port 0 picks a free one; address() tells which),
  // "tcp://[::1]:7000"; or just a scheme ("tcp") for a client that does not listen.
  std::string address = "tcp";
  // Further addresses to listen on, each on a transport of its own (default none): with
  // {"sm://"} next to "tcp://0.0.0.0:7000", one engine serves same-node clients by shared memory
  // and the others over the network. JSON: "transport" given as a list, the first one first.
  std::vector<std::string> extra_addresses{};
  // Pools and execution streams (default: one primary stream running progress and handlers).
  thread::ThreadsOptions threads{};
  // Transport limits (message size, bulk chunking, connect timeout).
  net::TransportOptions transport{};
  // After any network activity the progress loop keeps polling this long before it sleeps in
  // the kernel: a busy service pays no wake-up latency, an idle one burns no CPU (default 10 ms,
  // as Margo; JSON "progress_poll_us").
  std::chrono::microseconds progress_poll{10000};
  // How long finalize() lets running handlers finish (default 5 s; JSON "finalize_timeout_ms").
  std::chrono::milliseconds finalize_timeout{5000};

  // Reads {"transport": "tcp://..." or [...], "threads": {...}, "rpc": {"progress_poll_us", "finalize_timeout_ms",
  // "max_message_size", "bulk_chunk_size", "connect_timeout_ms"}}; errors name the key.
  static EngineOptions from_json(const nlohmann::json& json, std::string_view path = "");
  nlohmann::json to_json() const;
};

// Where a handler defined with Engine::define runs.
struct DefineOptions {
  ProviderId provider_id = 0;
  thread::Pool pool{};  // default: the engine's rpc pool
};

namespace detail {
class CallState;
// An RPC in flight; the response bytes are valid while the Call lives.
class Call {
 public:
  Call() = default;
  Call(Call&&) noexcept;
  Call& operator=(Call&&) noexcept;
  ~Call();
  // Waits for the response and returns its payload. Throws RemoteError (the handler threw or
  // the server rejected the call), TimeoutError, NetworkError (connection lost), ShutdownError.
  std::span<const std::byte> wait();
  bool ready() const;

 private:
  friend class rpc::EngineImpl;
  explicit Call(CallState* state) : state_(state) {}
  CallState* state_ = nullptr;
};
}  // namespace detail

class Engine {
 public:
  // Starts an engine on `address` with default options (its own thread runtime whose primary
  // stream is the calling thread). Throws NetworkError/ConfigError.
  explicit Engine(std::string_view address);
  explicit Engine(EngineOptions options);
  // Uses an existing thread runtime (options.threads is then ignored).
  Engine(EngineOptions options, thread::Runtime& runtime);
  // Finalizes.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The address peers use to reach this engine ("tcp://127.0.0.1:40123"); for a client-only
  // engine, its scheme.
  const std::string& address() const;
  // Every address the engine listens on: address() first, then one per extra address.
  const std::vector<std::string>& addresses() const;
  const EngineOptions& options() const;

  // Resolves an address to an endpoint (no connection is made yet). The engine's own address,
  // or "self", gives the in-process endpoint. Throws NetworkError on a malformed address.
  Endpoint lookup(std::string_view address);
  Endpoint self();

  // Serves RPC `name` with `handler` (a callable `R(Args...)` or `R(const Request&, Args...)`).
  // Arguments and result are serialized implicitly. Throws Error if (name, provider) is taken.
  template <class F>
  void define(std::string_view name, F&& handler, DefineOptions options = {}) {
    auto entry = detail::make_handler_entry(std::forward<F>(handler));
    entry.name = std::string(name);
    entry.rpc_id = detail::rpc_id(name);
    entry.provider_id = options.provider_id;
    entry.pool = options.pool.valid() ? options.pool : rpc_pool();
    register_handler(std::move(entry));
  }
  // Stops serving RPC `name` for `provider_id`; no-op if not defined.
  void deregister(std::string_view name, ProviderId provider_id = 0);

  // A typed handle for calling RPC `name`: `engine.rpc<int(int, int)>("sum").on(ep)(1, 2)`.
  template <class Signature>
  RemoteProcedure<Signature> rpc(std::string_view name);

  // Exposes memory for one-sided transfers by peers; the memory must outlive the Bulk.
  Bulk expose(std::span<std::byte> memory, Access access);
  Bulk expose(std::span<const std::span<std::byte>> segments, Access access);
  // Allocates `size` zeroed bytes owned by the engine and exposes them for the memory's whole
  // life. With sm, the memory is a shared segment that a same-node peer maps once: transfers
  // between it and that peer's memory are a plain memcpy, without a system call. Throws
  // NetworkError when the memory cannot be had.
  ExposedMemory allocate_exposed(size_t size, Access access = Access::kReadWrite);
  // Copies `size` bytes from `remote` (at `remote_offset`, owned by `from`) into `local` (at
  // `local_offset`). Blocks the calling ULT only. Throws NetworkError (peer unreachable, out of
  // bounds, access denied).
  void pull(const Endpoint& from, const Bulk& remote, size_t remote_offset, const Bulk& local,
            size_t local_offset, size_t size);
  // Copies `size` bytes from `local` (at `local_offset`) into `remote` (at `remote_offset`).
  void push(const Endpoint& to, const Bulk& remote, size_t remote_offset, const Bulk& local,
            size_t local_offset, size_t size);

  thread::Runtime& runtime();
  thread::Pool rpc_pool() const;
  thread::Pool progress_pool() const;

  // Stops the engine: refuses new requests, lets running handlers finish (bounded by
  // options.finalize_timeout), fails pending calls with ShutdownError, runs the finalize
  // callbacks (last registered first), stops progress and closes the transport. Called from a
  // handler or while another thread is in wait_for_finalize(), it asks that thread to do it.
  // Idempotent; never hangs.
  void finalize();
  // Blocks until finalize() is called (running this thread's ULTs meanwhile), then finalizes.
  void wait_for_finalize();
  bool finalized() const;
  // Runs `callback` during finalize(), before the transport closes.
  void on_finalize(std::function<void()> callback);
  // Reports every RPC (both sides) and bulk transfer of this engine to `monitor` from now on
  // (nullptr: stop reporting). The engine keeps the monitor alive until it is destroyed.
  void set_monitor(std::shared_ptr<Monitor> monitor);

  // --- used by RemoteProcedure and Provider ---
  void register_handler(detail::HandlerEntry entry);
  std::shared_ptr<const detail::HandlerEntry> find_handler(uint32_t rpc_id,
                                                           ProviderId provider_id) const;
  // Sends a request whose encoded arguments are `args`. With `one_way`, no response is awaited
  // and the returned Call is empty.
  detail::Call start_call(const Endpoint& to, std::string_view name, uint32_t rpc_id,
                          std::span<const std::byte> args, const CallOptions& options,
                          bool one_way);
  // The in-process error for a (name, provider) nobody serves here.
  [[noreturn]] void throw_no_handler(std::string_view name, ProviderId provider_id) const;
  // Called while a handler's exception is in flight on the in-process path: throws the
  // RemoteError a remote caller would get, so that a caller's error handling does not depend on
  // where the provider lives.
  [[noreturn]] void throw_in_process_failure(std::string_view name) const;
  // The same for a one-way call: logs the failure, as the server of a remote one does.
  void log_in_process_failure(std::string_view name) const;

 private:
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace dango::rpc

#include "dango/rpc/remote_procedure.hpp"
