#pragma once
// ULT-aware synchronisation. A wait inside a ULT switches to other ULTs; it never blocks the
// OS thread. Outside a ULT (a plain thread) a wait blocks that thread; on a runtime's primary
// thread it runs the primary pool's ULTs meanwhile. Every wait throws dango::ShutdownError when
// the runtime of the waiting ULT shuts down.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "dango/thread/wait.hpp"

namespace dango::thread {

// Mutual exclusion; fair (ownership is handed to the longest waiter). Uncontended lock and
// unlock cost a few atomic operations.
class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void lock();
  bool try_lock();
  void unlock();

 private:
  friend class ConditionVariable;
  detail::SpinLock guard_;
  bool locked_ = false;
  detail::WaitList waiters_;
};

// Many readers or one writer; a waiting writer keeps new readers out (no writer starvation).
class RwLock {
 public:
  RwLock() = default;
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;
  void lock();  // exclusive (writer)
  bool try_lock();
  void unlock();
  void lock_shared();  // shared (reader)
  bool try_lock_shared();
  void unlock_shared();

 private:
  void wake_next_locked();
  detail::SpinLock guard_;
  int64_t readers_ = 0;  // active readers
  bool writer_ = false;  // a writer holds the lock
  detail::WaitList writers_waiting_;
  detail::WaitList readers_waiting_;
};

// Condition variable paired with Mutex.
class ConditionVariable {
 public:
  ConditionVariable() = default;
  ConditionVariable(const ConditionVariable&) = delete;
  ConditionVariable& operator=(const ConditionVariable&) = delete;
  // Releases `mutex`, waits for a notification, re-acquires `mutex`. May wake spuriously.
  void wait(Mutex& mutex);
  template <typename Pred>
  void wait(Mutex& mutex, Pred pred) {
    while (!pred()) wait(mutex);
  }
  // Returns false when `deadline` passed without a notification.
  bool wait_until(Mutex& mutex, std::chrono::steady_clock::time_point deadline);
  template <typename Pred>
  bool wait_until(Mutex& mutex, std::chrono::steady_clock::time_point deadline, Pred pred) {
    while (!pred()) {
      if (!wait_until(mutex, deadline)) return pred();
    }
    return true;
  }
  template <typename Pred>
  bool wait_for(Mutex& mutex, std::chrono::nanoseconds timeout, Pred pred) {
    return wait_until(mutex, std::chrono::steady_clock::now() + timeout, pred);
  }
  void notify_one();
  void notify_all();

 private:
  detail::SpinLock guard_;
  detail::WaitList waiters_;
};

// Blocks `count` participants until all have arrived; reusable.
class Barrier {
 public:
  explicit Barrier(size_t count);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  // Returns true in exactly one participant per round (the last to arrive).
  bool arrive_and_wait();

 private:
  detail::SpinLock guard_;
  size_t count_;
  size_t arrived_ = 0;
  uint64_t generation_ = 0;
  detail::WaitList waiters_;
};

}  // namespace dango::thread
