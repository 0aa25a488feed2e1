#pragma once
// The engine's internals: transports, handler table, calls in flight, progress loop.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "dango/rpc/engine.hpp"
#include "dango/rpc/monitor.hpp"
#include "dango/thread/eventual.hpp"
#include "dango/thread/runtime.hpp"
#include "dango/thread/wait.hpp"
#include "rpc/message.hpp"

namespace dango::rpc {

namespace detail {

// One call in flight, pooled and reused: its response buffer keeps its capacity.
class CallState {
 public:
  enum class Status : uint8_t { kPending, kOk, kRemoteError, kDisconnected, kShutdown, kTimedOut };
  EngineImpl* engine = nullptr;
  uint64_t request_id = 0;
  std::string name;
  ProviderId provider_id = 0;
  net::PeerRef peer;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::optional<std::chrono::nanoseconds> timeout;
  thread::Eventual<void> done;
  Status status = Status::kPending;
  std::vector<std::byte> response;  // payload, or the error message
  // For the monitor (set when one is installed at the call's start).
  int64_t started_ns = 0;
  size_t request_bytes = 0;
};

// Nanoseconds on the steady clock, for the monitor's timings.
inline int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace detail

class EngineImpl final : public net::MessageHandler {
 public:
  EngineImpl(Engine& engine, EngineOptions options, thread::Runtime* runtime);
  ~EngineImpl() override;

  // net::MessageHandler, called by the progress loop.
  void on_message(const net::PeerRef& from, std::span<const std::byte> message) override;
  void on_peer_lost(const net::PeerRef& peer) override;

  Endpoint lookup(std::string_view address);
  void register_handler(detail::HandlerEntry entry);
  void deregister(std::string_view name, ProviderId provider_id);
  std::shared_ptr<const detail::HandlerEntry> find_handler(uint32_t rpc_id, ProviderId provider_id) const;
  detail::Call start_call(const Endpoint& to, std::string_view name, uint32_t rpc_id,
                          std::span<const std::byte> args, const CallOptions& options,
                          bool one_way);
  std::span<const std::byte> wait(detail::CallState& state);
  void release(detail::CallState* state);

  Bulk expose(std::span<const std::span<std::byte>> segments, Access access);
  ExposedMemory allocate_exposed(size_t size, Access access);
  void transfer(bool pull, const Endpoint& peer, const Bulk& remote, size_t remote_offset,
                const Bulk& local, size_t local_offset, size_t size);

  void finalize();
  void wait_for_finalize();
  bool finalized() const { return finalized_.load(); }
  void on_finalize(std::function<void()> callback);
  void set_monitor(std::shared_ptr<Monitor> monitor);

  const std::string& address() const { return address_; }
  const std::vector<std::string>& addresses() const { return addresses_; }
  const EngineOptions& options() const { return options_; }
  thread::Runtime& runtime() { return *runtime_; }
  thread::Pool rpc_pool() const { return rpc_pool_; }
  thread::Pool progress_pool() const { return progress_pool_; }
  [[noreturn]] void throw_no_handler(std::string_view name, ProviderId provider_id) const;
  // Why nobody here serves (rpc_id, provider_id): the same words for a remote caller and an
  // in-process one.
  std::string no_handler_reason(uint32_t rpc_id, ProviderId provider_id) const;

 private:
  struct IncomingRequest;
  static uint64_t handler_key(uint32_t rpc_id, ProviderId provider_id) {
    return (uint64_t{rpc_id} << 16) | provider_id;
  }
  net::Transport* add_transport(std::string_view address, bool listen);
  net::Transport* transport_for(std::string_view scheme);
  Bulk make_bulk(std::shared_ptr<detail::Exposure> exposure, Access access);
  // Sleeps until one of several transports has work (their wait_fd()s in one epoll set), or
  // until `timeout`. Returns 1 when a transport refused the sleep (work is pending), else 0;
  // clears wait_epoll_usable_ when a transport has no wait_fd() (the caller naps instead).
  size_t wait_on_transports(std::chrono::nanoseconds timeout);
  net::Transport* transport_of(const net::PeerRef& peer);
  // Sends one message; batched (leaving with the next progress pass, in one write with the
  // others) when the caller is a ULT of the progress pool, which that pass follows shortly.
  // With `flush`, the batched messages (this one and those before it) leave at once.
  net::Status send_message(net::Transport& transport, const net::PeerRef& to,
                           std::span<const std::span<const std::byte>> parts, size_t bytes,
                           bool flush = false);
  void progress_loop();
  void dispatch_request(const net::PeerRef& from, const detail::MessageHeader& header,
                        std::span<const std::byte> payload);
  void run_handler(IncomingRequest* request);
  void complete_call(const detail::MessageHeader& header, std::span<const std::byte> payload);
  void send_error(const net::PeerRef& to, const detail::MessageHeader& request,
                  std::string_view message);
  void fail_calls(const net::PeerRef* peer, detail::CallState::Status status);
  // Reports a finished call to the monitor, if one was installed when it started.
  void report_call(const detail::CallState& state, CallOutcome outcome);
  void report_request(IncomingRequest& request, int64_t started_ns, bool failed);
 public:
  // Reports a pull/push that started at `started_ns` (0: no monitor then) and adds it to the
  // handler's bulk stage when one runs on this ULT.
  void account_bulk(bool pull, const Endpoint& peer, size_t size, bool failed, int64_t started_ns);
 private:
  void do_finalize();
  IncomingRequest* acquire_request();
  void release_request(IncomingRequest* request);

  Engine& engine_;
  EngineOptions options_;
  std::unique_ptr<thread::Runtime> own_runtime_;
  thread::Runtime* runtime_;
  thread::Pool rpc_pool_;
  thread::Pool progress_pool_;
  std::string address_;                 // the first listening address (or the scheme)
  std::vector<std::string> addresses_;  // every listening address, the first one first

  // Transports: the first is the one given by the address; others are added on lookup of
  // another scheme. Append-only while the engine runs.
  static constexpr size_t kMaxTransports = 8;
  std::mutex transports_mutex_;
  std::unique_ptr<net::Transport> transports_[kMaxTransports];
  std::atomic<size_t> transport_count_{0};
  // The progress loop's epoll set over the transports' wait_fd()s, when there are several.
  int wait_epoll_ = -1;
  size_t wait_epoll_count_ = 0;  // transports added to it so far
  bool wait_epoll_usable_ = true;  // false once a transport offers no wait_fd()

  mutable std::shared_mutex handlers_mutex_;
  std::unordered_map<uint64_t, std::shared_ptr<const detail::HandlerEntry>> handlers_;
  std::unordered_map<uint32_t, std::string> names_;  // rpc id -> name, for error messages

  std::mutex calls_mutex_;
  std::unordered_map<uint64_t, detail::CallState*> calls_;
  std::atomic<uint64_t> next_request_id_{1};
  thread::detail::SpinLock free_calls_guard_;
  std::vector<detail::CallState*> free_calls_;
  thread::detail::SpinLock free_requests_guard_;
  std::vector<IncomingRequest*> free_requests_;

  std::atomic<int64_t> handlers_running_{0};
  std::atomic<bool> finalizing_{false};
  std::atomic<bool> finalized_{false};
  std::atomic<bool> stop_progress_{false};
  std::atomic<bool> waiting_for_finalize_{false};
  std::atomic<bool> finalize_asked_{false};  // finalize_requested_ is set once
  thread::Eventual<void> finalize_requested_;
  thread::Eventual<void> finalize_done_;  // set when do_finalize() has returned
  std::mutex callbacks_mutex_;
  std::vector<std::function<void()>> finalize_callbacks_;
  thread::Ult progress_ult_;

  // The installed monitor (nullptr: none); every monitor ever installed stays alive with the
  // engine, since a hot-path reader may still hold the previous one.
  std::atomic<Monitor*> monitor_{nullptr};
  std::mutex monitors_mutex_;
  std::vector<std::shared_ptr<Monitor>> monitors_;
};

}  // namespace dango::rpc
