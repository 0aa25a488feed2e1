#pragma once
// Provider: the base of every service component's server side. It owns a provider id and a
// pool, and defines its RPCs from member functions; they are deregistered when it is destroyed.
//
//   class Counter : public dango::rpc::Provider {
//    public:
//     Counter(Engine& e, ProviderId id) : Provider(e, id) { define("add", &Counter::add); }
//     int64_t add(int64_t n) { return total_ += n; }
//   };

#include <string>
#include <vector>

#include "dango/rpc/engine.hpp"

namespace dango::rpc {

class Provider {
 public:
  // `pool`: where the provider's handlers run (default: the engine's rpc pool).
  Provider(Engine& engine, ProviderId provider_id, thread::Pool pool = {})
      : engine_(engine), provider_id_(provider_id), pool_(pool.valid() ? pool : engine.rpc_pool()) {}
  virtual ~Provider() { stop_serving(); }
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  ProviderId provider_id() const { return provider_id_; }
  Engine& engine() const { return engine_; }
  thread::Pool pool() const { return pool_; }

 protected:
  // Deregisters every RPC of this provider: new requests are answered "no provider". A derived
  // class whose handlers use its own members calls it first thing in its destructor, since the
  // base destructor runs only after those members are gone. Idempotent.
  void stop_serving() {
    for (const auto& name : names_) engine_.deregister(name, provider_id_);
    names_.clear();
  }

  // Serves RPC `name` for this provider with member function `method` of the derived class
  // (which may take `const Request&` first), or with any callable.
  template <class Method>
  void define(std::string_view name, Method method) {
    if constexpr (std::is_member_function_pointer_v<Method>) {
      define_member(name, method);
    } else {
      engine_.define(name, std::move(method), {.provider_id = provider_id_, .pool = pool_});
      names_.emplace_back(name);
    }
  }

 private:
  template <class C, class R, class... A>
  void define_member(std::string_view name, R (C::*method)(A...)) {
    auto* self = static_cast<C*>(this);
    define(name, [self, method](A... args) -> R { return (self->*method)(std::forward<A>(args)...); });
  }
  template <class C, class R, class... A>
  void define_member(std::string_view name, R (C::*method)(A...) const) {
    auto* self = static_cast<const C*>(this);
    define(name, [self, method](A... args) -> R { return (self->*method)(std::forward<A>(args)...); });
  }

  Engine& engine_;
  ProviderId provider_id_;
  thread::Pool pool_;
  std::vector<std::string> names_;
};

}  // namespace dango::rpc
