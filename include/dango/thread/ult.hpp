#pragma once
// A user-level thread (ULT): a function with its own small stack, run by an execution stream,
// that switches away (instead of blocking its OS thread) whenever it waits.

#include <chrono>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace dango::thread {

namespace detail {
struct UltControl;

// A move-only `void()` callable stored inline when small (no allocation for the usual lambda
// capturing a few pointers), on the heap otherwise.
class UltFunction {
 public:
  static constexpr size_t kInlineSize = 48;

  UltFunction() = default;
  template <typename F>
    requires(!std::is_same_v<std::decay_t<F>, UltFunction> && std::is_invocable_v<std::decay_t<F>&>)
  UltFunction(F&& fn) {  // NOLINT(google-explicit-constructor): a callable is a function
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= kInlineSize && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(fn));
      ops_ = &kInlineOps<Fn>;
    } else {
      *reinterpret_cast<Fn**>(storage_) = new Fn(std::forward<F>(fn));
      ops_ = &kHeapOps<Fn>;
    }
  }
  UltFunction(UltFunction&& other) noexcept : ops_(other.ops_) {
    if (ops_) ops_->move(other.storage_, storage_);
    other.ops_ = nullptr;
  }
  UltFunction& operator=(UltFunction&& other) noexcept {
    if (this != &other) {
      reset();
      ops_ = other.ops_;
      if (ops_) ops_->move(other.storage_, storage_);
      other.ops_ = nullptr;
    }
    return *this;
  }
  ~UltFunction() { reset(); }

  void operator()() { ops_->call(storage_); }
  explicit operator bool() const { return ops_ != nullptr; }
  void reset() {
    if (ops_) ops_->destroy(storage_);
    ops_ = nullptr;
  }

 private:
  struct Ops {
    void (*call)(void*);
    void (*move)(void* from, void* to);
    void (*destroy)(void*);
  };
  template <typename Fn>
  static constexpr Ops kInlineOps = {
      [](void* s) { (*static_cast<Fn*>(s))(); },
      [](void* from, void* to) {
        ::new (to) Fn(std::move(*static_cast<Fn*>(from)));
        static_cast<Fn*>(from)->~Fn();
      },
      [](void* s) { static_cast<Fn*>(s)->~Fn(); }};
  template <typename Fn>
  static constexpr Ops kHeapOps = {
      [](void* s) { (**static_cast<Fn**>(s))(); },
      [](void* from, void* to) { *static_cast<Fn**>(to) = *static_cast<Fn**>(from); },
      [](void* s) { delete *static_cast<Fn**>(s); }};

  alignas(std::max_align_t) unsigned char storage_[kInlineSize];
  const Ops* ops_ = nullptr;
};
}  // namespace detail

// Handle on a spawned ULT. Destroying a handle without join() detaches the ULT: it runs to
// completion on its own. Movable, not copyable.
class Ult {
 public:
  Ult() = default;
  Ult(Ult&& other) noexcept : control_(std::exchange(other.control_, nullptr)) {}
  Ult& operator=(Ult&& other) noexcept;
  ~Ult();

  // Waits for the ULT to finish (yielding, inside a ULT); rethrows what its function threw.
  // Throws ShutdownError if the runtime shuts down while waiting.
  void join();
  bool joinable() const { return control_ != nullptr; }
  // Lets the ULT finish on its own; an exception it throws is logged.
  void detach();

 private:
  friend class Pool;
  explicit Ult(detail::UltControl* control) : control_(control) {}
  detail::UltControl* control_ = nullptr;
};

namespace this_ult {
// True when called from a ULT (as opposed to a plain OS thread).
bool inside();
// One pointer of storage private to the calling ULT (nullptr when it starts), for the layers
// above: the rpc engine keeps the request a handler serves there. Outside ULTs, one per thread.
void*& local_slot();
// Lets other ULTs of the pools run, then continues. Outside a ULT: std::this_thread::yield().
void yield();
// Suspends the calling ULT (not its OS thread) for at least `duration`. Throws ShutdownError
// if the runtime shuts down meanwhile.
void sleep_for(std::chrono::nanoseconds duration);
void sleep_until(std::chrono::steady_clock::time_point deadline);
// For network progress loops. When no ULT is ready on the calling thread's streams, runs
// `wait(ctx, timeout)` — a blocking system call such as epoll_wait — in place of the stream's own
// sleep; a ULT becoming ready, a timer falling due or a waking thread calls `interrupt(ctx)`
// (thread-safe) to cut it short. `timeout` is at most `max_timeout`. Returns at once, false,
// when work is ready; true after it waited.
bool idle_wait(void (*wait)(void* ctx, std::chrono::nanoseconds timeout),
               void (*interrupt)(void* ctx), void* ctx, std::chrono::nanoseconds max_timeout);
}  // namespace this_ult

}  // namespace dango::thread
