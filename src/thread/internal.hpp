#pragma once
// Internal structures of the thread runtime, shared by its source files.
//
// Model: a ULT is a UltControl plus a Boost.Context fiber created lazily on first run (a queued
// ULT owns no stack). Execution streams (OS threads) run a scheduler loop over their pools;
// every OS thread taking part (stream threads, and the primary thread while it waits) has a
// ThreadContext with a Parker to sleep on and the list of streams whose pools it runs.
//
// Switching protocol: a scheduler resumes a ULT's fiber; the ULT saves the scheduler's
// continuation in `caller` and switches back to it to suspend. What must happen only once the
// ULT is fully off its stack (re-queue after a yield, park after a block, clean-up after the
// end) is done by the scheduler after resume() returns, based on the ULT's state.

#include <atomic>
#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dango/thread/options.hpp"
#include "dango/thread/runtime.hpp"
#include "dango/thread/ult.hpp"
#include "dango/thread/wait.hpp"

namespace dango::thread::detail {

class RuntimeImpl;
class PoolImpl;
class XstreamImpl;

using Clock = std::chrono::steady_clock;

// Sleeping and waking one OS thread (futex). A thread that blocks elsewhere (the progress loop
// in epoll_wait) installs an external wake function for the duration.
class Parker {
 public:
  // Sleeps until unpark() or `deadline`; returns at once if unpark() came since the last park
  // or if `recheck(ctx)` — called once the sleeping state is visible to wakers — finds work.
  void park(std::optional<Clock::time_point> deadline, bool (*recheck)(void*) = nullptr,
            void* ctx = nullptr);
  // Runs `block` in place of the futex sleep; an unpark() meanwhile calls `wake(ctx)`.
  template <typename Block>
  void park_external(void (*wake)(void*), void* ctx, Block&& block, bool (*recheck)(void*),
                     void* recheck_ctx) {
    external_ctx_.store(ctx, std::memory_order_relaxed);
    external_wake_.store(wake, std::memory_order_release);
    if (state_.exchange(kSleeping, std::memory_order_seq_cst) != kNotified && !(recheck && recheck(recheck_ctx))) {
      const int64_t start = begin_sleep();
      block();
      end_sleep(start);
    }
    state_.store(kAwake, std::memory_order_seq_cst);
    external_wake_.store(nullptr, std::memory_order_release);
  }
  void unpark();
  bool sleeping() const { return state_.load(std::memory_order_relaxed) == kSleeping; }
  // Time this thread has spent asleep in park()/park_external(), for utilisation figures; the
  // clock is read only around real sleeps.
  std::chrono::nanoseconds slept() const {
    const int64_t since = sleep_started_ns_.load(std::memory_order_relaxed);
    const int64_t ongoing = since == 0 ? 0 : std::max<int64_t>(0, now_ns() - since);
    return std::chrono::nanoseconds(slept_ns_.load(std::memory_order_relaxed) + ongoing);
  }

 private:
  static constexpr uint32_t kAwake = 0, kSleeping = 1, kNotified = 2;
  std::atomic<uint32_t> state_{kAwake};
  std::atomic<void (*)(void*)> external_wake_{nullptr};
  std::atomic<void*> external_ctx_{nullptr};
  std::atomic<int64_t> slept_ns_{0};          // completed sleeps
  std::atomic<int64_t> sleep_started_ns_{0};  // the ongoing sleep's start; 0 when awake
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }
  int64_t begin_sleep() {
    const int64_t start = now_ns();
    sleep_started_ns_.store(start, std::memory_order_relaxed);
    return start;
  }
  void end_sleep(int64_t start) {
    slept_ns_.fetch_add(now_ns() - start, std::memory_order_relaxed);
    sleep_started_ns_.store(0, std::memory_order_relaxed);
  }
};

// True when a stream served by the thread of `context` (a ThreadContext*) has a ready ULT.
bool thread_has_work(void* context);

// Per OS thread: what it sleeps on and which streams it runs.
struct ThreadContext {
  Parker parker;
  std::vector<XstreamImpl*> streams;  // an execution stream thread: its stream; the primary
                                      // thread: the primary stream of each runtime it created
  UltControl* current = nullptr;      // the ULT running on this thread, if any
};
// The calling thread's context. Never inlined, so that a ULT that moved to another thread
// reads the right one after a switch.
[[gnu::noinline]] ThreadContext& this_thread_context();

enum class UltState : uint8_t {
  kReady,        // queued in its pool (or not started)
  kRunning,
  kYielding,     // switching out to be re-queued
  kParking,      // switching out to wait
  kParked,       // waiting, off its stack
  kWakePending,  // woken before it finished parking: must not sleep
  kDone,
};

struct UltControl {
  UltFunction fn;
  PoolImpl* pool = nullptr;
  int priority = 0;
  uint64_t sequence = 0;  // FIFO order among equal priorities
  std::atomic<UltState> state{UltState::kReady};
  std::atomic<int> refs{2};  // the handle and the runtime (dropped when the ULT ends)
  boost::context::fiber fiber;   // the suspended ULT
  boost::context::fiber caller;  // the scheduler that resumed it (valid while running)
  std::exception_ptr error;
  EventualCore done;
  const void* stack_bottom = nullptr;   // this ULT's stack
  size_t stack_size = 0;
  const void* caller_bottom = nullptr;  // the stack of the scheduler that resumed it
  size_t caller_size = 0;
  std::atomic<bool> detached{false};
  UltControl* next = nullptr;  // pool queue link
  void* local = nullptr;       // this_ult::local_slot()

  void release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

// Makes a parked ULT runnable (or marks a running/parking one so it won't sleep).
void unpark(UltControl* ult);
// From inside a ULT whose state says why (kYielding, kParking): switch back to the scheduler,
// which acts on that state once the ULT is off its stack.
void switch_out(UltControl* self);

// Stacks are cached per runtime-independent process-wide pool of a given size: creating a ULT
// then costs no mmap once warm.
class StackAllocator {
 public:
  // `owner` records the bounds of the stack it gets (for the sanitizer annotations).
  StackAllocator(size_t size, UltControl* owner) : size_(size), owner_(owner) {}
  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& sctx) noexcept;

 private:
  size_t size_;
  UltControl* owner_;
};

// AddressSanitizer must be told when execution moves to another stack, or it mistakes the
// frames a ULT leaves on its stack (an exception, a switch) for overflows. No-ops otherwise.
struct StackSwitch {
  void* fake_stack = nullptr;
  // Before switching to the stack [bottom, bottom + size); `dying`: the current one ends.
  void start(const void* bottom, size_t size, bool dying = false);
  // First thing on the new stack; returns where we came from.
  void finish(const void** from_bottom = nullptr, size_t* from_size = nullptr);
};

class PoolImpl {
 public:
  PoolImpl(RuntimeImpl& runtime, PoolOptions options)
      : runtime_(runtime), options_(std::move(options)) {}
  void push(UltControl* ult);  // wakes one sleeping stream that serves this pool
  UltControl* pop();
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  const PoolOptions& options() const { return options_; }
  RuntimeImpl& runtime() { return runtime_; }
  void add_stream(XstreamImpl* stream) { streams_.push_back(stream); }
  uint64_t next_sequence() { return sequence_.fetch_add(1, std::memory_order_relaxed); }

 private:
  RuntimeImpl& runtime_;
  PoolOptions options_;
  SpinLock guard_;
  UltControl* head_ = nullptr;  // fifo kinds
  UltControl* tail_ = nullptr;
  std::multimap<std::pair<int, uint64_t>, UltControl*> by_priority_;  // prio_wait
  std::atomic<size_t> size_{0};
  std::atomic<uint64_t> sequence_{0};
  std::vector<XstreamImpl*> streams_;
};

class XstreamImpl {
 public:
  XstreamImpl(RuntimeImpl& runtime, std::string name, std::vector<PoolImpl*> pools);
  // Runs one ready ULT of this stream's pools; false when there was none.
  bool run_one();
  bool has_work() const;
  // True when every pool is a waiting kind, so an idle stream may sleep.
  bool may_sleep() const { return may_sleep_; }
  void wake() {
    if (ThreadContext* context = thread_context_.load(std::memory_order_acquire)) {
      context->parker.unpark();
    }
  }
  bool sleeping() const {
    ThreadContext* context = thread_context_.load(std::memory_order_acquire);
    return context && context->parker.sleeping();
  }
  // Starts an OS thread running this stream (not for the primary stream).
  void start();
  void join();
  const std::string& name() const { return name_; }
  RuntimeImpl& runtime() { return runtime_; }
  void bind_thread(ThreadContext* context) { thread_context_.store(context); }
  ThreadContext* thread_context() const { return thread_context_.load(); }

 private:
  void run_ult(UltControl* ult);
  void loop();
  RuntimeImpl& runtime_;
  std::string name_;
  std::vector<PoolImpl*> pools_;
  bool may_sleep_ = true;
  std::atomic<bool> stop_{false};
  std::atomic<ThreadContext*> thread_context_{nullptr};
  std::thread thread_;
};

// Deadlines of sleeping/timed waiters.
class TimerQueue {
 public:
  // Arms `waiter` to be fired with kTimeout at `deadline`.
  void add(Clock::time_point deadline, Waiter* waiter);
  // Disarms `waiter` (armed with `deadline`); no-op if it already fired.
  void cancel(Waiter* waiter, Clock::time_point deadline);
  // Fires (kTimeout) every waiter whose deadline passed.
  void fire_due(Clock::time_point now);
  std::optional<Clock::time_point> earliest() const;

 private:
  friend class RuntimeImpl;
  mutable std::mutex mutex_;
  std::multimap<Clock::time_point, Waiter*> timers_;
  std::atomic<int64_t> earliest_ns_{INT64_MAX};
};

class RuntimeImpl {
 public:
  explicit RuntimeImpl(ThreadsOptions options);
  ~RuntimeImpl();
  PoolImpl* find_pool(std::string_view name);
  const ThreadsOptions& options() const { return options_; }
  TimerQueue& timers() { return timers_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void shutdown(std::chrono::milliseconds grace);

  // Blocked waiters, so shutdown can interrupt them.
  void add_blocked(Waiter* waiter);
  void remove_blocked(Waiter* waiter);

  // Live ULT count (spawned and not finished).
  void ult_started() { live_.fetch_add(1, std::memory_order_relaxed); }
  void ult_finished() { live_.fetch_sub(1, std::memory_order_release); }

  const std::vector<std::unique_ptr<PoolImpl>>& pools() const { return pools_; }
  const std::vector<std::unique_ptr<XstreamImpl>>& streams() const { return streams_; }
  Clock::time_point started() const { return started_; }

  // Wakes every sleeping stream (a new earliest timer, shutdown).
  void wake_all_streams();
  // Fires due timers when any exist; cheap otherwise.
  void poll_timers();

 private:
  ThreadsOptions options_;
  TimerQueue timers_;
  std::vector<std::unique_ptr<PoolImpl>> pools_;
  std::vector<std::unique_ptr<XstreamImpl>> streams_;  // [0] is the primary stream
  std::atomic<bool> stopping_{false};
  bool shut_down_ = false;
  std::atomic<int64_t> live_{0};
  std::mutex blocked_mutex_;
  Waiter* blocked_ = nullptr;  // intrusive list through Waiter::blocked_next
  ThreadContext* primary_thread_ = nullptr;
  const Clock::time_point started_ = Clock::now();
};

}  // namespace dango::thread::detail
