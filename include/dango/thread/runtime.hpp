#pragma once
// The user-level-thread runtime (Dango's Argobots): pools of ULTs run by execution streams.
//
//   dango::thread::Runtime rt{{.pools = {{.name = "work"}},
//                              .xstreams = {{.name = "w0", .pools = {"work"}}}}};
//   auto ult = rt.pool("work").spawn([] { ... });
//   ult.join();
//
// The thread that creates a Runtime is its primary stream: it runs the "__primary__" pool's
// ULTs whenever it waits (join, Eventual::wait, Mutex::lock, ...) outside a ULT. A Runtime is
// destroyed on the thread that created it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dango/thread/options.hpp"
#include "dango/thread/ult.hpp"

namespace dango::thread {

namespace detail {
class RuntimeImpl;
class PoolImpl;
}  // namespace detail

struct SpawnOptions {
  int priority = 0;  // used by prio_wait pools: higher runs first (default 0)
};

// A handle on a pool owned by a Runtime; valid while the Runtime lives. Cheap to copy.
class Pool {
 public:
  Pool() = default;
  // Creates a ULT running `fn` in this pool and returns its joinable handle. Cost: one small
  // allocation; the stack is taken from a cache when the ULT first runs. Throws ShutdownError
  // once the runtime is shutting down.
  template <typename F>
  Ult spawn(F&& fn, SpawnOptions options = {}) const {
    return spawn_function(detail::UltFunction(std::forward<F>(fn)), options);
  }
  std::string_view name() const;
  PoolKind kind() const;
  // ULTs waiting to run (not counting running or blocked ones).
  size_t size() const;
  bool valid() const { return impl_ != nullptr; }
  bool operator==(const Pool&) const = default;

 private:
  friend class Runtime;
  friend Pool current_pool();
  explicit Pool(detail::PoolImpl* impl) : impl_(impl) {}
  Ult spawn_function(detail::UltFunction fn, SpawnOptions options) const;
  detail::PoolImpl* impl_ = nullptr;
};

// How much an execution stream has slept since its runtime started (see Runtime::activity).
struct StreamActivity {
  std::string name;
  std::chrono::nanoseconds alive;   // since the runtime started
  std::chrono::nanoseconds slept;   // of which its OS thread slept (idle)
};

class Runtime {
 public:
  // Validates `options` (throws ConfigError naming the key) and starts the execution streams.
  explicit Runtime(ThreadsOptions options = {});
  // Shuts down (see shutdown()).
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The pool named `name`; throws ConfigError when there is none.
  Pool pool(std::string_view name) const;
  Pool primary_pool() const { return pool(kPrimary); }
  const ThreadsOptions& options() const;
  // Every pool, in configuration order.
  std::vector<Pool> pools() const;
  // Per execution stream, how long it has lived and slept: utilisation over an interval is
  // 1 - Δslept/Δalive. Streams sharing an OS thread (the primary streams of several runtimes
  // created by one thread) report that thread's sleep.
  std::vector<StreamActivity> activity() const;

  // Stops the runtime: new spawns fail, ULTs blocked in a wait are woken with ShutdownError,
  // ready ULTs run to completion for at most `grace`, then the execution streams are joined.
  // Never hangs: ULTs still running after `grace` are abandoned (and reported). Idempotent.
  void shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));
  bool stopping() const;

 private:
  std::unique_ptr<detail::RuntimeImpl> impl_;
};

// The pool of the calling ULT; an invalid Pool outside ULTs.
Pool current_pool();

}  // namespace dango::thread
