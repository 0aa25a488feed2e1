#pragma once
// How a typed handler (`int(int, int)`, or with a leading `const Request&`) becomes the two
// type-erased entry points the engine dispatches to: one decoding arguments from a message and
// encoding the result, one taking the caller's arguments by reference (the in-process path).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <vector>

#include "dango/rpc/request.hpp"
#include "dango/rpc/serialize.hpp"
#include "dango/rpc/types.hpp"
#include "dango/thread/runtime.hpp"

namespace dango::rpc::detail {

template <class F>
struct FunctionTraits : FunctionTraits<decltype(&std::decay_t<F>::operator())> {};
template <class R, class... A>
struct FunctionTraits<R (*)(A...)> {
  using Result = R;
  using Args = std::tuple<A...>;
};
template <class R, class... A>
struct FunctionTraits<R (*)(A...) noexcept> : FunctionTraits<R (*)(A...)> {};
template <class C, class R, class... A>
struct FunctionTraits<R (C::*)(A...)> : FunctionTraits<R (*)(A...)> {};
template <class C, class R, class... A>
struct FunctionTraits<R (C::*)(A...) const> : FunctionTraits<R (*)(A...)> {};
template <class C, class R, class... A>
struct FunctionTraits<R (C::*)(A...) noexcept> : FunctionTraits<R (*)(A...)> {};
template <class C, class R, class... A>
struct FunctionTraits<R (C::*)(A...) const noexcept> : FunctionTraits<R (*)(A...)> {};

// The RPC arguments of a handler: its parameters without a leading Request.
template <class Tuple>
struct DropRequest {
  using Args = Tuple;
  static constexpr bool kTakesRequest = false;
};
template <class First, class... Rest>
  requires std::is_same_v<std::decay_t<First>, Request>
struct DropRequest<std::tuple<First, Rest...>> {
  using Args = std::tuple<Rest...>;
  static constexpr bool kTakesRequest = true;
};

template <class Tuple>
struct Decayed;
template <class... A>
struct Decayed<std::tuple<A...>> {
  using Values = std::tuple<std::decay_t<A>...>;      // what the decoder fills
  using Refs = std::tuple<const std::decay_t<A>&...>;  // what the in-process caller passes
};

struct HandlerEntry;
// Decodes arguments from `args`, runs the handler, appends the encoded result to `result`.
using SerializedInvoker = void (*)(const HandlerEntry&, const Request&,
                                   std::span<const std::byte> args,
                                   std::vector<std::byte>& result);
// Runs the handler on the caller's arguments (a Decayed::Refs*) and stores the result in an
// std::optional<Result>* (unused for void).
using DirectInvoker = void (*)(const HandlerEntry&, const Request&, const void* args,
                               void* result);

struct HandlerEntry {
  std::string name;
  uint32_t rpc_id = 0;
  ProviderId provider_id = 0;
  thread::Pool pool;
  std::shared_ptr<void> function;
  SerializedInvoker invoke = nullptr;
  DirectInvoker invoke_direct = nullptr;
  std::type_index args_type = typeid(void);    // typeid(Decayed::Values)
  std::type_index result_type = typeid(void);  // typeid(std::decay_t<Result>)
};

template <class F>
decltype(auto) call_handler(F& fn, const Request& request, auto&&... args) {
  using Params = typename FunctionTraits<F>::Args;
  if constexpr (DropRequest<Params>::kTakesRequest) {
    return fn(request, std::forward<decltype(args)>(args)...);
  } else {
    (void)request;
    return fn(std::forward<decltype(args)>(args)...);
  }
}

// Builds the entry for handler `fn` (a lambda, function pointer or other callable).
template <class F>
HandlerEntry make_handler_entry(F&& fn) {
  using Fn = std::decay_t<F>;
  using Traits = FunctionTraits<Fn>;
  using Result = typename Traits::Result;
  using Args = typename DropRequest<typename Traits::Args>::Args;
  using Values = typename Decayed<Args>::Values;
  using Refs = typename Decayed<Args>::Refs;
  static_assert(std::is_default_constructible_v<Values>,
                "RPC argument types must be default-constructible (they are decoded in place)");

  HandlerEntry entry;
  entry.function = std::make_shared<Fn>(std::forward<F>(fn));
  entry.args_type = typeid(Values);
  entry.result_type = typeid(std::decay_t<Result>);
  entry.invoke = [](const HandlerEntry& e, const Request& request, std::span<const std::byte> in,
                    std::vector<std::byte>& out) {
    Fn& f = *static_cast<Fn*>(e.function.get());
    Values values{};
    std::apply([&](auto&... v) { deserialize_into(in, v...); }, values);
    if constexpr (std::is_void_v<Result>) {
      std::apply([&](auto&... v) { call_handler(f, request, std::move(v)...); }, values);
      (void)out;
    } else {
      serialize_to(out, std::apply(
                            [&](auto&... v) -> Result {
                              return call_handler(f, request, std::move(v)...);
                            },
                            values));
    }
  };
  entry.invoke_direct = [](const HandlerEntry& e, const Request& request, const void* args,
                           void* result) {
    Fn& f = *static_cast<Fn*>(e.function.get());
    const Refs& refs = *static_cast<const Refs*>(args);
    if constexpr (std::is_void_v<Result>) {
      std::apply([&](const auto&... v) { call_handler(f, request, v...); }, refs);
      (void)result;
    } else {
      static_cast<std::optional<std::decay_t<Result>>*>(result)->emplace(std::apply(
          [&](const auto&... v) -> Result { return call_handler(f, request, v...); }, refs));
    }
  };
  return entry;
}

// The 32-bit id of an RPC name (FNV-1a): both sides derive it from the name alone.
constexpr uint32_t rpc_id(std::string_view name) {
  uint32_t hash = 2166136261u;
  for (char c : name) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 16777619u;
  }
  return hash;
}

}  // namespace dango::rpc::detail
