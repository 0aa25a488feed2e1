#pragma once
// Typed calls: `engine.rpc<int(int, int)>("sum")` gives a RemoteProcedure; `.on(endpoint)` a
// CallTarget, which calls synchronously, asynchronously (Pending) or one-way.

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <tuple>
#include <typeindex>
#include <variant>
#include <vector>

#include "dango/common/error.hpp"
#include "dango/rpc/engine.hpp"
#include "dango/rpc/serialize.hpp"

namespace dango::rpc {

namespace detail {
// Per-thread buffer for encoding arguments; free again once start_call returns.
std::vector<std::byte>& encode_buffer();

template <class R>
R decode_result(std::span<const std::byte> bytes) {
  if constexpr (std::is_void_v<R>) {
    deserialize_into(bytes);
  } else {
    R result{};
    deserialize_into(bytes, result);
    return result;
  }
}
}  // namespace detail

// The result of an asynchronous call. wait() may be called once.
template <class R>
class Pending {
 public:
  Pending() = default;
  // Waits (yielding inside a ULT) and returns the result; throws as the synchronous call would.
  R wait() {
    if (auto* call = std::get_if<detail::Call>(&state_)) return detail::decode_result<R>(call->wait());
    if (auto* error = std::get_if<std::exception_ptr>(&state_)) std::rethrow_exception(*error);
    if constexpr (!std::is_void_v<R>) return std::move(*std::get<std::optional<R>>(state_));
  }
  bool ready() const {
    if (auto* call = std::get_if<detail::Call>(&state_)) return call->ready();
    return true;
  }

 private:
  template <class S>
  friend class CallTarget;
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, std::optional<R>>;
  std::variant<detail::Call, Value, std::exception_ptr> state_;
};

template <class Signature>
class CallTarget;

template <class R, class... Args>
class CallTarget<R(Args...)> {
 public:
  // Calls the provider `id` instead of provider 0.
  CallTarget with(ProviderId id) const {
    CallTarget copy = *this;
    copy.options_.provider_id = id;
    return copy;
  }
  // Fails the call with TimeoutError when no response came within `timeout`.
  CallTarget timeout(std::chrono::nanoseconds timeout) const {
    CallTarget copy = *this;
    copy.options_.timeout = timeout;
    return copy;
  }

  // Calls and waits for the result. On the engine itself this is a function call on the
  // caller's ULT (no serialization when the handler takes the same argument types); errors are
  // the same as a remote call's: a handler's exception reaches the caller as RemoteError.
  R operator()(const Args&... args) const {
    if (endpoint_.is_self()) return call_in_process(args...);
    auto& buffer = detail::encode_buffer();
    buffer.clear();
    serialize_to(buffer, args...);
    detail::Call call = engine_->start_call(endpoint_, *name_, id_, buffer, options_, false);
    return detail::decode_result<R>(call.wait());
  }
  // Sends the call and returns at once; several may be outstanding from one ULT.
  Pending<R> async(const Args&... args) const {
    Pending<R> pending;
    if (endpoint_.is_self()) {
      try {
        if constexpr (std::is_void_v<R>) {
          call_in_process(args...);
          pending.state_ = std::monostate{};
        } else {
          pending.state_ = std::optional<R>(call_in_process(args...));
        }
      } catch (...) {
        pending.state_ = std::current_exception();
      }
      return pending;
    }
    auto& buffer = detail::encode_buffer();
    buffer.clear();
    serialize_to(buffer, args...);
    pending.state_ = engine_->start_call(endpoint_, *name_, id_, buffer, options_, false);
    return pending;
  }
  // One-way: sends the call, expects no response (errors on the server are only logged there).
  void notify(const Args&... args) const {
    if (endpoint_.is_self()) {
      notify_in_process(args...);
      return;
    }
    auto& buffer = detail::encode_buffer();
    buffer.clear();
    serialize_to(buffer, args...);
    engine_->start_call(endpoint_, *name_, id_, buffer, options_, true);
  }

 private:
  template <class S>
  friend class RemoteProcedure;
  CallTarget(Engine* engine, std::shared_ptr<const std::string> name, uint32_t id,
             Endpoint endpoint)
      : engine_(engine), name_(std::move(name)), id_(id), endpoint_(std::move(endpoint)) {}

  R call_in_process(const Args&... args) const {
    auto entry = engine_->find_handler(id_, options_.provider_id);
    if (!entry) engine_->throw_no_handler(*name_, options_.provider_id);
    try {
      return invoke_in_process(*entry, args...);
    } catch (...) {
      engine_->throw_in_process_failure(entry->name);
    }
  }
  // As a server does for a one-way call, a failure is logged, never reported to the caller.
  void notify_in_process(const Args&... args) const {
    try {
      auto entry = engine_->find_handler(id_, options_.provider_id);
      if (!entry) engine_->throw_no_handler(*name_, options_.provider_id);
      invoke_in_process(*entry, args...);
    } catch (...) {
      engine_->log_in_process_failure(*name_);
    }
  }
  R invoke_in_process(const detail::HandlerEntry& entry, const Args&... args) const {
    Request request(*engine_, endpoint_, options_.provider_id, entry.name);
    using Values = std::tuple<std::decay_t<Args>...>;
    using Refs = std::tuple<const std::decay_t<Args>&...>;
    if (entry.args_type == typeid(Values) &&
        entry.result_type == typeid(std::conditional_t<std::is_void_v<R>, void, std::decay_t<R>>)) {
      Refs refs(args...);
      if constexpr (std::is_void_v<R>) {
        entry.invoke_direct(entry, request, &refs, nullptr);
        return;
      } else {
        std::optional<std::decay_t<R>> result;
        entry.invoke_direct(entry, request, &refs, &result);
        return std::move(*result);
      }
    }
    // Different but wire-compatible types (e.g. std::string sent, std::string_view taken):
    // go through the encoding, still without a socket.
    std::vector<std::byte> in, out;
    serialize_to(in, args...);
    entry.invoke(entry, request, in, out);
    return detail::decode_result<R>(out);
  }

  Engine* engine_;
  std::shared_ptr<const std::string> name_;
  uint32_t id_;
  Endpoint endpoint_;
  CallOptions options_;
};

template <class R, class... Args>
class RemoteProcedure<R(Args...)> {
 public:
  RemoteProcedure(Engine& engine, std::string name)
      : engine_(&engine),
        name_(std::make_shared<const std::string>(std::move(name))),
        id_(detail::rpc_id(*name_)) {}
  // A call target on `endpoint`.
  CallTarget<R(Args...)> on(const Endpoint& endpoint) const {
    return CallTarget<R(Args...)>(engine_, name_, id_, endpoint);
  }
  const std::string& name() const { return *name_; }

 private:
  Engine* engine_;
  std::shared_ptr<const std::string> name_;
  uint32_t id_;
};

template <class Signature>
RemoteProcedure<Signature> Engine::rpc(std::string_view name) {
  return RemoteProcedure<Signature>(*this, std::string(name));
}

}  // namespace dango::rpc
