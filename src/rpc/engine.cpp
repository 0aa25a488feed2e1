#include "dango/rpc/engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "dango/common/config.hpp"
#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "rpc/engine_impl.hpp"
#include "spdlog/spdlog.h"

namespace dango::rpc {

using detail::CallState;
using detail::MessageHeader;
using detail::MessageKind;
using detail::monotonic_ns;

namespace detail {

[[gnu::noinline]] std::vector<std::byte>& encode_buffer() {
  thread_local std::vector<std::byte> buffer;
  return buffer;
}

Call::Call(Call&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
Call& Call::operator=(Call&& other) noexcept {
  if (this != &other) {
    if (state_) state_->engine->release(state_);
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}
Call::~Call() {
  if (state_) state_->engine->release(state_);
}
std::span<const std::byte> Call::wait() {
  if (!state_) throw Error("wait on an empty call (one-way, or already moved)");
  return state_->engine->wait(*state_);
}
bool Call::ready() const { return state_ && state_->done.ready(); }

}  // namespace detail

// A request received from a peer, handed to a handler ULT. Pooled: the payload buffer keeps its
// capacity, so steady-state serving allocates nothing here.
struct EngineImpl::IncomingRequest {
  const EngineImpl* engine = nullptr;
  net::PeerRef peer;
  net::Transport* transport = nullptr;
  MessageHeader header;
  std::shared_ptr<const detail::HandlerEntry> entry;
  std::vector<std::byte> payload;
  std::vector<std::byte> reply;
  // For the monitor: arrival time (0 when none was installed), and the bulk transfers the
  // handler made (found through the handler ULT's local slot).
  int64_t received_ns = 0;
  int64_t bulk_ns = 0;
  size_t bulk_bytes = 0;
};

namespace {

// A handler running longer than this sends its reply at once instead of batching it with the
// next progress pass (see run_handler): a write costs a few microseconds, while handlers queued
// behind a long one (a batch of 1,024 puts takes hundreds) would hold its reply and leave the
// caller with nothing in flight. Measured with dango-bench kv over tcp (1,024-item puts of 64 B,
// three outstanding; medians of 4 runs alternating with the flush off): unordered_map 3.35M ->
// 4.00M items/s, rocksdb 1.68M -> 1.80M, map unchanged (3.81M, 3.76M).
constexpr int64_t kLongHandlerNs = 20'000;

std::shared_ptr<spdlog::logger> logger() {
  static auto log = log::get("rpc");
  return log;
}

// What a caller is told of the handler exception in flight, on either path: a DecodeError means
// the arguments did not decode; anything else is the handler's own message.
std::string handler_failure(std::string_view name) {
  try {
    throw;
  } catch (const DecodeError& e) {
    return "malformed arguments for RPC \"" + std::string(name) + "\": " + e.what();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "RPC \"" + std::string(name) + "\": the handler threw a non-standard exception";
  }
}

std::span<const std::byte> as_bytes(const MessageHeader& header) {
  return {reinterpret_cast<const std::byte*>(&header), sizeof header};
}

}  // namespace

EngineImpl::EngineImpl(Engine& engine, EngineOptions options, thread::Runtime* runtime)
    : engine_(engine), options_(std::move(options)) {
  if (runtime) {
    runtime_ = runtime;
  } else {
    own_runtime_ = std::make_unique<thread::Runtime>(options_.threads);
    runtime_ = own_runtime_.get();
  }
  rpc_pool_ = runtime_->pool(runtime_->options().rpc_pool);
  progress_pool_ = runtime_->pool(runtime_->options().progress_pool);

  add_transport(options_.address, true);
  for (const std::string& address : options_.extra_addresses) {
    if (net::split_address(address).second.empty() && address.find("://") == std::string::npos) {
      throw ConfigError("extra address \"" + address + "\" names no location to listen on");
    }
    add_transport(address, true);
  }
  address_ = addresses_.empty() ? std::string(net::split_address(options_.address).first)
                                : addresses_.front();

  progress_ult_ = progress_pool_.spawn([this] { progress_loop(); });
}

EngineImpl::~EngineImpl() {
  finalize();
  if (wait_epoll_ >= 0) ::close(wait_epoll_);
  // Calls released after finalize (a Pending that outlived it) came back to the pool since.
  for (CallState* state : free_calls_) delete state;
  for (IncomingRequest* request : free_requests_) delete request;
}

// Creates a transport for `address`: listening when it has a location ("tcp://host:0",
// "sm://", "sm://name"), client-only for a bare scheme. Callers hold transports_mutex_ or run in
// the constructor.
net::Transport* EngineImpl::add_transport(std::string_view address, bool listen) {
  const size_t count = transport_count_.load(std::memory_order_acquire);
  auto scheme = net::split_address(address).first;
  for (size_t i = 0; i < count; ++i) {
    if (transports_[i]->scheme() == scheme) {
      throw ConfigError("two addresses for transport \"" + std::string(scheme) +
                        "\" in one engine (" + std::string(address) + ")");
    }
  }
  if (count == kMaxTransports) throw NetworkError("too many transports in one engine");
  net::TransportOptions transport_options = options_.transport;
  transport_options.listen = listen && address.find("://") != std::string_view::npos;
  auto transport = net::make_transport(address, transport_options);
  transport->set_handler(this);
  if (transport_options.listen) addresses_.push_back(transport->address());
  transports_[count] = std::move(transport);
  transport_count_.store(count + 1, std::memory_order_release);
  return transports_[count].get();
}

net::Transport* EngineImpl::transport_for(std::string_view scheme) {
  size_t count = transport_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < count; ++i) {
    if (transports_[i]->scheme() == scheme) return transports_[i].get();
  }
  std::lock_guard lock(transports_mutex_);
  count = transport_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < count; ++i) {
    if (transports_[i]->scheme() == scheme) return transports_[i].get();
  }
  net::Transport* transport = add_transport(scheme, false);
  transports_[0]->interrupt();  // the progress loop may be asleep without the new transport
  return transport;
}

Endpoint EngineImpl::lookup(std::string_view address) {
  if (address == "self" || address == address_ ||
      std::find(addresses_.begin(), addresses_.end(), address) != addresses_.end()) {
    return Endpoint(address_);
  }
  auto [scheme, location] = net::split_address(address);
  if (location.empty()) throw NetworkError("lookup: \"" + std::string(address) + "\" has no location (expected scheme://host:port)");
  net::Transport* transport = transport_for(scheme);
  return Endpoint(transport->lookup(address), transport);
}

// --- handlers ------------------------------------------------------------------------------

void EngineImpl::register_handler(detail::HandlerEntry entry) {
  std::unique_lock lock(handlers_mutex_);
  auto [name_it, inserted] = names_.emplace(entry.rpc_id, entry.name);
  if (!inserted && name_it->second != entry.name) {
    throw Error("define \"" + entry.name + "\": its id collides with RPC \"" + name_it->second +
                "\"; rename one of them");
  }
  uint64_t key = handler_key(entry.rpc_id, entry.provider_id);
  if (handlers_.count(key)) {
    throw Error("define \"" + entry.name + "\": already defined for provider " +
                std::to_string(entry.provider_id));
  }
  handlers_.emplace(key, std::make_shared<const detail::HandlerEntry>(std::move(entry)));
}

void EngineImpl::deregister(std::string_view name, ProviderId provider_id) {
  std::unique_lock lock(handlers_mutex_);
  handlers_.erase(handler_key(detail::rpc_id(name), provider_id));
}

std::shared_ptr<const detail::HandlerEntry> EngineImpl::find_handler(uint32_t rpc_id,
                                                                     ProviderId provider_id) const {
  std::shared_lock lock(handlers_mutex_);
  auto it = handlers_.find(handler_key(rpc_id, provider_id));
  return it == handlers_.end() ? nullptr : it->second;
}

std::string EngineImpl::no_handler_reason(uint32_t rpc_id, ProviderId provider_id) const {
  std::string known;
  {
    std::shared_lock lock(handlers_mutex_);
    if (auto it = names_.find(rpc_id); it != names_.end()) known = it->second;
  }
  return known.empty() ? "no RPC with this name is defined at " + address_
                       : "RPC \"" + known + "\" has no provider " + std::to_string(provider_id) +
                             " at " + address_;
}

void EngineImpl::throw_no_handler(std::string_view name, ProviderId provider_id) const {
  throw RemoteError("RPC \"" + std::string(name) + "\" at " + address_ + ": " +
                    no_handler_reason(detail::rpc_id(name), provider_id));
}

// --- calls -----------------------------------------------------------------------------------

detail::Call EngineImpl::start_call(const Endpoint& to, std::string_view name, uint32_t rpc_id,
                                    std::span<const std::byte> args, const CallOptions& options,
                                    bool one_way) {
  if (finalizing_.load(std::memory_order_acquire)) {
    throw ShutdownError("RPC \"" + std::string(name) + "\": the engine at " + address_ + " is finalized");
  }
  if (!to.valid()) throw NetworkError("RPC \"" + std::string(name) + "\": invalid endpoint");
  MessageHeader header;
  header.kind = MessageKind::kRequest;
  header.rpc_id = rpc_id;
  header.provider_id = options.provider_id;
  header.payload_size = static_cast<uint32_t>(args.size());
  if (args.size() > UINT32_MAX) throw Error("RPC \"" + std::string(name) + "\": arguments over 4 GiB");

  CallState* state = nullptr;
  if (one_way) {
    header.flags = detail::kFlagOneWay;
  } else {
    {
      std::lock_guard lock(free_calls_guard_);
      if (!free_calls_.empty()) {
        state = free_calls_.back();
        free_calls_.pop_back();
      }
    }
    if (!state) {
      state = new CallState;
      state->engine = this;
    }
    state->request_id = next_request_id_.fetch_add(1, std::memory_order_relaxed);
    state->name.assign(name);
    state->provider_id = options.provider_id;
    state->started_ns = monitor_.load(std::memory_order_relaxed) ? monotonic_ns() : 0;
    state->request_bytes = args.size();
    state->peer = to.peer_;
    state->status = CallState::Status::kPending;
    state->timeout = options.timeout;
    state->deadline.reset();
    if (options.timeout) state->deadline = std::chrono::steady_clock::now() + *options.timeout;
    header.request_id = state->request_id;
    std::lock_guard lock(calls_mutex_);
    calls_.emplace(state->request_id, state);
  }
  detail::Call call(state);
  std::span<const std::byte> parts[2] = {as_bytes(header), args};
  net::Status status =
      send_message(*to.transport_, to.peer_, parts, sizeof header + args.size());
  if (!status.ok()) {
    if (state) {
      std::lock_guard lock(calls_mutex_);
      calls_.erase(state->request_id);
      // Not pending any more: releasing the call (as the exception unwinds) must not wait for
      // a response that will never come.
      state->status = CallState::Status::kDisconnected;
      report_call(*state, CallOutcome::kNetworkError);
    }
    throw NetworkError("RPC \"" + std::string(name) + "\" to " + to.address() + ": " + status.message);
  }
  if (one_way) {
    if (Monitor* monitor = monitor_.load(std::memory_order_acquire)) {
      monitor->on_call({.rpc = name,
                        .provider_id = options.provider_id,
                        .peer = to.address(),
                        .outcome = CallOutcome::kOk,
                        .request_bytes = args.size(),
                        .response_bytes = 0,
                        .latency = std::chrono::nanoseconds(0)});
    }
  }
  return call;
}

std::span<const std::byte> EngineImpl::wait(CallState& state) {
  bool arrived = state.deadline ? state.done.wait_until(*state.deadline) : (state.done.wait(), true);
  if (!arrived) {
    bool removed;
    {
      std::lock_guard lock(calls_mutex_);
      removed = calls_.erase(state.request_id) == 1;
    }
    if (removed) {
      // No response will be delivered now: release() must not wait for one.
      state.status = CallState::Status::kTimedOut;
      report_call(state, CallOutcome::kTimeout);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*state.timeout).count();
      throw TimeoutError("RPC \"" + state.name + "\" to " + state.peer->address() +
                         ": no response within " + std::to_string(ms) + " ms");
    }
    state.done.wait();  // the response is being delivered right now
  }
  auto message = [&] { return std::string(reinterpret_cast<const char*>(state.response.data()), state.response.size()); };
  switch (state.status) {
    case CallState::Status::kOk:
      return state.response;
    case CallState::Status::kRemoteError:
      throw RemoteError("RPC \"" + state.name + "\" at " + state.peer->address() + ": " + message());
    case CallState::Status::kDisconnected:
      throw NetworkError("RPC \"" + state.name + "\" to " + state.peer->address() +
                         ": connection lost before the response");
    default:
      throw ShutdownError("RPC \"" + state.name + "\" to " + state.peer->address() +
                          ": the engine was finalized before the response");
  }
}

void EngineImpl::release(CallState* state) {
  if (state->status == CallState::Status::kPending) {
    // Abandoned before its response (a Pending dropped unwaited): unregister, and wait for a
    // delivery in progress to finish before the state is reused.
    bool removed;
    {
      std::lock_guard lock(calls_mutex_);
      removed = calls_.erase(state->request_id) == 1;
    }
    if (!removed) state->done.wait();
  }
  state->done.reset();
  state->peer.reset();
  std::lock_guard lock(free_calls_guard_);
  free_calls_.push_back(state);
}

void EngineImpl::complete_call(const MessageHeader& header, std::span<const std::byte> payload) {
  CallState* state;
  {
    std::lock_guard lock(calls_mutex_);
    auto it = calls_.find(header.request_id);
    if (it == calls_.end()) return;  // timed out or abandoned: the response is dropped
    state = it->second;
    calls_.erase(it);
  }
  if (header.kind == MessageKind::kResponse) {
    state->response.assign(payload.begin(), payload.end());
    state->status = CallState::Status::kOk;
  } else {
    std::string text;
    try {
      deserialize_into(payload, text);
    } catch (const DecodeError&) {
      text = "malformed error reply";
    }
    state->response.assign(reinterpret_cast<const std::byte*>(text.data()),
                           reinterpret_cast<const std::byte*>(text.data() + text.size()));
    state->status = CallState::Status::kRemoteError;
  }
  report_call(*state, header.kind == MessageKind::kResponse ? CallOutcome::kOk : CallOutcome::kRemoteError);
  state->done.set_value();
}

void EngineImpl::report_call(const CallState& state, CallOutcome outcome) {
  if (state.started_ns == 0) return;
  Monitor* monitor = monitor_.load(std::memory_order_acquire);
  if (monitor == nullptr) return;
  monitor->on_call({.rpc = state.name,
                    .provider_id = state.provider_id,
                    .peer = state.peer->address(),
                    .outcome = outcome,
                    .request_bytes = state.request_bytes,
                    .response_bytes = outcome == CallOutcome::kOk ? state.response.size() : 0,
                    .latency = std::chrono::nanoseconds(monotonic_ns() - state.started_ns)});
}

void EngineImpl::set_monitor(std::shared_ptr<Monitor> monitor) {
  std::lock_guard lock(monitors_mutex_);
  if (monitor) monitors_.push_back(monitor);
  monitor_.store(monitor.get(), std::memory_order_release);
}

void EngineImpl::fail_calls(const net::PeerRef* peer, CallState::Status status) {
  std::vector<CallState*> failed;
  {
    std::lock_guard lock(calls_mutex_);
    for (auto it = calls_.begin(); it != calls_.end();) {
      if (!peer || it->second->peer == *peer) {
        failed.push_back(it->second);
        it = calls_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (CallState* state : failed) {
    state->response.clear();
    state->status = status;
    report_call(*state, status == CallState::Status::kShutdown ? CallOutcome::kShutdown
                                                                : CallOutcome::kNetworkError);
    state->done.set_value();
  }
}

// --- serving -------------------------------------------------------------------------------

void EngineImpl::on_message(const net::PeerRef& from, std::span<const std::byte> message) {
  MessageHeader header;
  if (auto error = detail::parse_header(message, header); error != detail::HeaderError::kNone) {
    logger()->warn("dropping a malformed message from {}: {}", from->address(), detail::describe(error));
    if (message.size() >= sizeof(MessageHeader) && header.kind == MessageKind::kRequest &&
        !(header.flags & detail::kFlagOneWay)) {
      send_error(from, header, std::string("malformed request: ") + detail::describe(error));
    }
    return;
  }
  auto payload = message.subspan(sizeof(MessageHeader));
  if (header.kind == MessageKind::kRequest) {
    dispatch_request(from, header, payload);
  } else {
    complete_call(header, payload);
  }
}

void EngineImpl::on_peer_lost(const net::PeerRef& peer) {
  fail_calls(&peer, CallState::Status::kDisconnected);
}

void EngineImpl::send_error(const net::PeerRef& to, const MessageHeader& request,
                            std::string_view text) {
  std::vector<std::byte> reply(sizeof(MessageHeader));
  serialize_to(reply, text);
  MessageHeader header = request;
  header.kind = MessageKind::kError;
  header.flags = 0;
  header.payload_size = static_cast<uint32_t>(reply.size() - sizeof header);
  std::memcpy(reply.data(), &header, sizeof header);
  std::span<const std::byte> parts[1] = {reply};
  transport_of(to)->send(to, parts);
}

net::Status EngineImpl::send_message(net::Transport& transport, const net::PeerRef& to,
                                     std::span<const std::span<const std::byte>> parts,
                                     size_t bytes, bool flush) {
  // Batching copies the message: worth it for the small ones only.
  constexpr size_t kBatchLimit = 64 * 1024;
  if (bytes > kBatchLimit || thread::current_pool() != progress_pool_) {
    return transport.send(to, parts, net::SendMode::kNow);
  }
  net::Status status = transport.send(to, parts, net::SendMode::kBatched);
  if (flush) {
    transport.flush();
  } else {
    transport.interrupt();  // another stream of the pool may be asleep in progress(); cheap if not
  }
  return status;
}

net::Transport* EngineImpl::transport_of(const net::PeerRef& peer) {
  const size_t count = transport_count_.load(std::memory_order_acquire);
  if (count == 1) return transports_[0].get();
  return transport_for(net::split_address(peer->address()).first);
}

void EngineImpl::dispatch_request(const net::PeerRef& from, const MessageHeader& header,
                                  std::span<const std::byte> payload) {
  if (finalizing_.load(std::memory_order_acquire)) {
    if (!(header.flags & detail::kFlagOneWay)) send_error(from, header, "the engine at " + address_ + " is finalizing");
    return;
  }
  auto entry = find_handler(header.rpc_id, header.provider_id);
  if (!entry) {
    const std::string text = no_handler_reason(header.rpc_id, header.provider_id);
    if (!(header.flags & detail::kFlagOneWay)) send_error(from, header, text);
    logger()->debug("rejected a request from {}: {}", from->address(), text);
    return;
  }
  IncomingRequest* request = acquire_request();
  request->received_ns = monitor_.load(std::memory_order_relaxed) ? monotonic_ns() : 0;
  request->peer = from;
  request->transport = transport_of(from);
  request->header = header;
  request->entry = std::move(entry);
  request->payload.assign(payload.begin(), payload.end());
  handlers_running_.fetch_add(1, std::memory_order_acq_rel);
  try {
    request->entry->pool.spawn([this, request] { run_handler(request); });
  } catch (const std::exception& e) {
    handlers_running_.fetch_sub(1, std::memory_order_acq_rel);
    if (!(header.flags & detail::kFlagOneWay)) send_error(from, header, e.what());
    release_request(request);
  }
}

void EngineImpl::run_handler(IncomingRequest* request) {
  const auto& entry = *request->entry;
  const MessageHeader& header = request->header;
  const bool one_way = header.flags & detail::kFlagOneWay;
  auto& reply = request->reply;
  reply.resize(sizeof(MessageHeader));
  std::string error;
  const bool monitored = request->received_ns != 0;
  const int64_t started_ns = monotonic_ns();
  if (monitored) {
    request->bulk_ns = 0;
    request->bulk_bytes = 0;
    thread::this_ult::local_slot() = request;  // for transfer() to account its bulk time
  }
  try {
    const Endpoint source(request->peer, request->transport);
    Request context(engine_, source, header.provider_id, entry.name);
    entry.invoke(entry, context, request->payload, reply);
  } catch (...) {
    error = handler_failure(entry.name);
  }
  // Recorded before the reply leaves: a caller that has its reply finds the call in the
  // server's statistics (a long handler's reply is sent at once, below).
  if (monitored) report_request(*request, started_ns, !error.empty());
  if (one_way) {
    if (!error.empty()) logger()->warn("one-way RPC \"{}\" failed: {}", entry.name, error);
  } else if (!error.empty()) {
    send_error(request->peer, header, error);
  } else {
    MessageHeader response = header;
    response.kind = MessageKind::kResponse;
    response.payload_size = static_cast<uint32_t>(reply.size() - sizeof response);
    std::memcpy(reply.data(), &response, sizeof response);
    std::span<const std::byte> parts[1] = {reply};
    // The reply of a long handler leaves at once: the next progress pass may come only after
    // the other handlers ready on this stream, and one write costs little next to the handler.
    const bool long_handler = monotonic_ns() - started_ns > kLongHandlerNs;
    // A lost connection fails the caller's side; nothing more to do here.
    send_message(*request->transport, request->peer, parts, reply.size(), long_handler);
  }
  release_request(request);
  handlers_running_.fetch_sub(1, std::memory_order_acq_rel);
}

void EngineImpl::report_request(IncomingRequest& request, int64_t started_ns, bool failed) {
  thread::this_ult::local_slot() = nullptr;
  Monitor* monitor = monitor_.load(std::memory_order_acquire);
  if (monitor == nullptr) return;
  const bool one_way = request.header.flags & detail::kFlagOneWay;
  monitor->on_request(
      {.rpc = request.entry->name,
       .provider_id = request.header.provider_id,
       .peer = request.peer->address(),
       .failed = failed,
       .request_bytes = request.payload.size(),
       .response_bytes = failed || one_way ? 0 : request.reply.size() - sizeof(MessageHeader),
       .queued = std::chrono::nanoseconds(started_ns - request.received_ns),
       .handler = std::chrono::nanoseconds(monotonic_ns() - started_ns),
       .bulk = std::chrono::nanoseconds(request.bulk_ns),
       .bulk_bytes = request.bulk_bytes});
}

void EngineImpl::account_bulk(bool pull, const Endpoint& peer, size_t size, bool failed,
                              int64_t started_ns) {
  Monitor* monitor = monitor_.load(std::memory_order_acquire);
  if (monitor == nullptr || started_ns == 0) return;
  const int64_t elapsed = monotonic_ns() - started_ns;
  monitor->on_bulk({.pull = pull,
                    .peer = peer.address(),
                    .bytes = size,
                    .failed = failed,
                    .elapsed = std::chrono::nanoseconds(elapsed)});
  auto* request = static_cast<IncomingRequest*>(thread::this_ult::local_slot());
  if (request != nullptr && request->engine == this) {
    request->bulk_ns += elapsed;
    if (!failed) request->bulk_bytes += size;
  }
}

EngineImpl::IncomingRequest* EngineImpl::acquire_request() {
  {
    std::lock_guard lock(free_requests_guard_);
    if (!free_requests_.empty()) {
      IncomingRequest* request = free_requests_.back();
      free_requests_.pop_back();
      return request;
    }
  }
  auto* request = new IncomingRequest;
  request->engine = this;
  return request;
}

void EngineImpl::release_request(IncomingRequest* request) {
  request->peer.reset();
  request->entry.reset();
  std::lock_guard lock(free_requests_guard_);
  free_requests_.push_back(request);
}

// --- finalize --------------------------------------------------------------------------------

void EngineImpl::on_finalize(std::function<void()> callback) {
  std::lock_guard lock(callbacks_mutex_);
  finalize_callbacks_.push_back(std::move(callback));
}

void EngineImpl::finalize() {
  if (finalized_.load(std::memory_order_acquire)) return;
  // From a handler (which finalize would wait for), or while another thread waits to do it:
  // only ask.
  if (thread::this_ult::inside() || waiting_for_finalize_.load(std::memory_order_acquire)) {
    finalizing_.store(true, std::memory_order_release);
    if (!finalize_asked_.exchange(true)) finalize_requested_.set_value();
    return;
  }
  do_finalize();
}

void EngineImpl::wait_for_finalize() {
  // finalize() already ran (or runs on another thread): nobody would ever ask again.
  if (finalized_.load(std::memory_order_acquire)) {
    finalize_done_.wait();
    return;
  }
  waiting_for_finalize_.store(true, std::memory_order_release);
  finalize_requested_.wait();
  waiting_for_finalize_.store(false, std::memory_order_release);
  do_finalize();
}

void EngineImpl::do_finalize() {
  // Another thread finalizes: return once it is done, so that the caller may destroy the
  // engine.
  if (finalized_.exchange(true)) {
    finalize_done_.wait();
    return;
  }
  finalizing_.store(true, std::memory_order_release);
  // A wait_for_finalize() that began before finalized_ was set must wake up, not wait for a
  // request that will never come.
  if (!finalize_asked_.exchange(true)) finalize_requested_.set_value();
  const auto deadline = std::chrono::steady_clock::now() + options_.finalize_timeout;
  while (handlers_running_.load(std::memory_order_acquire) > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    thread::this_ult::sleep_for(std::chrono::microseconds(500));
  }
  if (auto left = handlers_running_.load(); left > 0) {
    logger()->warn("engine at {} finalized with {} handler(s) still running", address_, left);
  }
  fail_calls(nullptr, CallState::Status::kShutdown);
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(callbacks_mutex_);
    callbacks.swap(finalize_callbacks_);
  }
  for (auto it = callbacks.rbegin(); it != callbacks.rend(); ++it) {
    try {
      (*it)();
    } catch (const std::exception& e) {
      logger()->error("finalize callback of the engine at {} threw: {}", address_, e.what());
    }
  }
  stop_progress_.store(true, std::memory_order_release);
  const size_t count = transport_count_.load(std::memory_order_acquire);
  for (size_t i = 0; i < count; ++i) transports_[i]->interrupt();
  try {
    if (progress_ult_.joinable()) progress_ult_.join();
  } catch (const std::exception& e) {
    logger()->error("progress loop of the engine at {} ended with: {}", address_, e.what());
  }
  // Replies batched by the last handlers (a "shutdown" RPC's own) still leave.
  for (size_t i = 0; i < count; ++i) transports_[i]->flush();
  for (size_t i = 0; i < count; ++i) transports_[i]->close();
  if (own_runtime_) own_runtime_->shutdown();
  for (CallState* state : free_calls_) delete state;
  free_calls_.clear();
  for (IncomingRequest* request : free_requests_) delete request;
  free_requests_.clear();
  finalize_done_.set_value();
}

// --- Engine facade ---------------------------------------------------------------------------

Engine::Engine(std::string_view address) : Engine(EngineOptions{.address = std::string(address)}) {}
Engine::Engine(EngineOptions options)
    : impl_(std::make_unique<EngineImpl>(*this, std::move(options), nullptr)) {}
Engine::Engine(EngineOptions options, thread::Runtime& runtime)
    : impl_(std::make_unique<EngineImpl>(*this, std::move(options), &runtime)) {}
Engine::~Engine() { impl_->finalize(); }

const std::string& Engine::address() const { return impl_->address(); }
const std::vector<std::string>& Engine::addresses() const { return impl_->addresses(); }
const EngineOptions& Engine::options() const { return impl_->options(); }
Endpoint Engine::lookup(std::string_view address) { return impl_->lookup(address); }
Endpoint Engine::self() { return Endpoint(impl_->address()); }
void Engine::deregister(std::string_view name, ProviderId provider_id) { impl_->deregister(name, provider_id); }
void Engine::register_handler(detail::HandlerEntry entry) { impl_->register_handler(std::move(entry)); }
std::shared_ptr<const detail::HandlerEntry> Engine::find_handler(uint32_t rpc_id, ProviderId provider_id) const {
  return impl_->find_handler(rpc_id, provider_id);
}
detail::Call Engine::start_call(const Endpoint& to, std::string_view name, uint32_t rpc_id,
                                std::span<const std::byte> args, const CallOptions& options, bool one_way) {
  return impl_->start_call(to, name, rpc_id, args, options, one_way);
}
void Engine::throw_no_handler(std::string_view name, ProviderId provider_id) const {
  impl_->throw_no_handler(name, provider_id);
}
void Engine::throw_in_process_failure(std::string_view name) const {
  throw RemoteError("RPC \"" + std::string(name) + "\" at " + impl_->address() + ": " +
                    handler_failure(name));
}
void Engine::log_in_process_failure(std::string_view name) const {
  logger()->warn("one-way RPC \"{}\" failed: {}", name, handler_failure(name));
}
Bulk Engine::expose(std::span<std::byte> memory, Access access) {
  std::span<std::byte> segments[1] = {memory};
  return impl_->expose(segments, access);
}
Bulk Engine::expose(std::span<const std::span<std::byte>> segments, Access access) {
  return impl_->expose(segments, access);
}
ExposedMemory Engine::allocate_exposed(size_t size, Access access) {
  return impl_->allocate_exposed(size, access);
}
void Engine::pull(const Endpoint& from, const Bulk& remote, size_t remote_offset, const Bulk& local,
                  size_t local_offset, size_t size) {
  impl_->transfer(true, from, remote, remote_offset, local, local_offset, size);
}
void Engine::push(const Endpoint& to, const Bulk& remote, size_t remote_offset, const Bulk& local,
                  size_t local_offset, size_t size) {
  impl_->transfer(false, to, remote, remote_offset, local, local_offset, size);
}
thread::Runtime& Engine::runtime() { return impl_->runtime(); }
thread::Pool Engine::rpc_pool() const { return impl_->rpc_pool(); }
thread::Pool Engine::progress_pool() const { return impl_->progress_pool(); }
void Engine::finalize() { impl_->finalize(); }
void Engine::wait_for_finalize() { impl_->wait_for_finalize(); }
bool Engine::finalized() const { return impl_->finalized(); }
void Engine::on_finalize(std::function<void()> callback) { impl_->on_finalize(std::move(callback)); }
void Engine::set_monitor(std::shared_ptr<Monitor> monitor) { impl_->set_monitor(std::move(monitor)); }

// --- options ---------------------------------------------------------------------------------

EngineOptions EngineOptions::from_json(const nlohmann::json& json, std::string_view path) {
  EngineOptions options;
  config::ConfigReader reader(json, std::string(path));
  if (json.is_object() && json.contains("transport") && json["transport"].is_array()) {
    std::vector<std::string> list;
    reader.get("transport", list);
    if (list.empty()) config::fail(config::join(path, "transport"), "an empty list of addresses");
    options.address = list.front();
    options.extra_addresses.assign(list.begin() + 1, list.end());
  } else {
    reader.get("transport", options.address);
  }
  reader.get("threads", options.threads);
  nlohmann::json rpc_json = nlohmann::json::object();
  if (reader.get("rpc", rpc_json)) {
    config::ConfigReader rpc(rpc_json, config::join(path, "rpc"));
    rpc.get("progress_poll_us", options.progress_poll);
    rpc.get("finalize_timeout_ms", options.finalize_timeout);
    rpc.get("max_message_size", options.transport.max_message_size);
    rpc.get("bulk_chunk_size", options.transport.bulk_chunk_size);
    rpc.get("connect_timeout_ms", options.transport.connect_timeout);
    rpc.finish();
  }
  reader.finish();
  return options;
}

nlohmann::json EngineOptions::to_json() const {
  nlohmann::json transport_json = address;
  if (!extra_addresses.empty()) {
    transport_json = nlohmann::json::array({address});
    for (const auto& extra : extra_addresses) transport_json.push_back(extra);
  }
  return {{"transport", transport_json},
          {"threads", threads.to_json()},
          {"rpc",
           {{"progress_poll_us", progress_poll.count()},
            {"finalize_timeout_ms", finalize_timeout.count()},
            {"max_message_size", transport.max_message_size},
            {"bulk_chunk_size", transport.bulk_chunk_size},
            {"connect_timeout_ms", transport.connect_timeout.count()}}}};
}

}  // namespace dango::rpc
