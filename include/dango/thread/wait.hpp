#pragma once
// The one waiting mechanism under every ULT-aware primitive (Mutex, ConditionVariable, RwLock,
// Barrier, Eventual, join, sleep). A Waiter is published in a primitive's WaitList under the
// primitive's SpinLock; whoever fires it first (a notifier, a timer, the runtime's shutdown)
// decides the outcome and makes the waiting ULT or thread runnable again. Not for direct use.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

namespace dango::thread::detail {

struct UltControl;
struct ThreadContext;

// A test-and-test-and-set lock for the short critical sections of the primitives (a few list
// operations, never a wait).
class SpinLock {
 public:
  void lock() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      // The holder may have been preempted (more threads than cores): stop burning its core.
      for (int spins = 0; flag_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 128) {
          __builtin_ia32_pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept { return !flag_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> flag_{false};
};

enum class WaitOutcome : uint8_t { kPending, kSignaled, kTimeout, kInterrupted };

// One ULT (or OS thread) waiting for one event. Lives on the waiter's stack.
class Waiter {
 public:
  Waiter();  // binds to the calling ULT, or to the calling thread outside ULTs
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Decides the outcome if still pending and makes the waiter runnable; returns false when
  // the waiter was already fired (so a notifier should pass its notification on).
  bool fire(WaitOutcome outcome = WaitOutcome::kSignaled);
  WaitOutcome outcome() const { return outcome_.load(std::memory_order_acquire); }

  uintptr_t tag = 0;  // for the primitive's own use (e.g. reader or writer)
  Waiter* prev = nullptr;  // WaitList links, guarded by the primitive's lock
  Waiter* next = nullptr;
  bool linked = false;
  // The runtime's list of blocked waiters (for shutdown) and its timer; guarded by the runtime.
  Waiter* blocked_prev = nullptr;
  Waiter* blocked_next = nullptr;
  bool timer_armed = false;

 private:
  friend WaitOutcome block(Waiter&, std::optional<std::chrono::steady_clock::time_point>);
  UltControl* ult_;
  ThreadContext* thread_;
  std::atomic<WaitOutcome> outcome_{WaitOutcome::kPending};
  // Set once fire() no longer touches the waiter's ULT or thread, so the waiter may return.
  std::atomic<bool> fired_{false};
};

// Intrusive FIFO of waiters; not synchronised (the owner's SpinLock guards it).
class WaitList {
 public:
  bool empty() const { return head_ == nullptr; }
  void push_back(Waiter& w);
  Waiter* pop_front();
  void remove(Waiter& w);  // no-op when not linked
  Waiter* front() const { return head_; }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Suspends the caller until `w` is fired or `deadline` passes (kTimeout), or the runtime shuts
// down (kInterrupted). Call after publishing `w` and releasing the primitive's lock. After a
// timeout or an interrupt the caller must unlink `w` (under its lock) before returning.
WaitOutcome block(Waiter& w, std::optional<std::chrono::steady_clock::time_point> deadline = {});

// Throws dango::ShutdownError for an interrupted wait.
[[noreturn]] void throw_interrupted();

// Lets a waiting set of ULTs be released when it is ready: ready/reset and wait, with timeouts.
class EventualCore {
 public:
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  // Marks ready and wakes every waiter.
  void set_ready();
  // Waits until ready; false when `deadline` passed first. Throws ShutdownError on shutdown.
  bool wait_until(std::optional<std::chrono::steady_clock::time_point> deadline = {});
  void reset() { ready_.store(false, std::memory_order_release); }

 private:
  SpinLock guard_;
  std::atomic<bool> ready_{false};
  WaitList waiters_;
};

}  // namespace dango::thread::detail
