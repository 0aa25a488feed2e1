// Mutex, RwLock, ConditionVariable and Barrier on the shared Waiter mechanism. Locks hand
// ownership straight to the waiter they wake, so a woken ULT never has to compete again.

#include "dango/thread/sync.hpp"

#include <mutex>

#include "thread/internal.hpp"

namespace dango::thread {

using detail::WaitOutcome;
using detail::Waiter;

namespace {

// Waits on `w`, already published in `list` under `guard`. On a timeout or an interrupt the
// waiter unlinks itself. Taking `guard` before returning also waits for the notifier to release
// it, so the caller may destroy the primitive right after.
WaitOutcome wait_in(detail::SpinLock& guard, detail::WaitList& list, Waiter& w,
                    std::optional<detail::Clock::time_point> deadline = {}) {
  WaitOutcome outcome = detail::block(w, deadline);
  std::lock_guard lock(guard);
  list.remove(w);
  return outcome;
}

// Fires the first waiter of `list` that is still waiting; false when none was.
bool fire_first(detail::WaitList& list) {
  while (Waiter* w = list.pop_front()) {
    if (w->fire()) return true;
  }
  return false;
}

}  // namespace

void Mutex::lock() {
  guard_.lock();
  if (!locked_) {
    locked_ = true;
    guard_.unlock();
    return;
  }
  Waiter w;
  waiters_.push_back(w);
  guard_.unlock();
  // Signaled means unlock() handed us the lock.
  if (wait_in(guard_, waiters_, w) != WaitOutcome::kSignaled) detail::throw_interrupted();
}

bool Mutex::try_lock() {
  std::lock_guard lock(guard_);
  if (locked_) return false;
  locked_ = true;
  return true;
}

void Mutex::unlock() {
  std::lock_guard lock(guard_);
  if (!fire_first(waiters_)) locked_ = false;
}

void RwLock::lock() {
  guard_.lock();
  if (!writer_ && readers_ == 0) {
    writer_ = true;
    guard_.unlock();
    return;
  }
  Waiter w;
  writers_waiting_.push_back(w);
  guard_.unlock();
  if (wait_in(guard_, writers_waiting_, w) != WaitOutcome::kSignaled) detail::throw_interrupted();
}

bool RwLock::try_lock() {
  std::lock_guard lock(guard_);
  if (writer_ || readers_ != 0) return false;
  writer_ = true;
  return true;
}

void RwLock::lock_shared() {
  guard_.lock();
  if (!writer_ && writers_waiting_.empty()) {
    ++readers_;
    guard_.unlock();
    return;
  }
  Waiter w;
  readers_waiting_.push_back(w);
  guard_.unlock();
  if (wait_in(guard_, readers_waiting_, w) != WaitOutcome::kSignaled) detail::throw_interrupted();
}

bool RwLock::try_lock_shared() {
  std::lock_guard lock(guard_);
  if (writer_ || !writers_waiting_.empty()) return false;
  ++readers_;
  return true;
}

void RwLock::unlock() {
  std::lock_guard lock(guard_);
  writer_ = false;
  // After a writer, the readers that queued behind it go first, so neither side starves.
  while (Waiter* w = readers_waiting_.pop_front()) {
    if (w->fire()) ++readers_;
  }
  if (readers_ == 0) wake_next_locked();
}

void RwLock::unlock_shared() {
  std::lock_guard lock(guard_);
  if (--readers_ == 0) wake_next_locked();
}

void RwLock::wake_next_locked() {
  if (fire_first(writers_waiting_)) {
    writer_ = true;
    return;
  }
  while (Waiter* w = readers_waiting_.pop_front()) {
    if (w->fire()) ++readers_;
  }
}

void ConditionVariable::wait(Mutex& mutex) {
  Waiter w;
  {
    std::lock_guard lock(guard_);
    waiters_.push_back(w);
  }
  mutex.unlock();
  WaitOutcome outcome = wait_in(guard_, waiters_, w);
  mutex.lock();
  if (outcome == WaitOutcome::kInterrupted) detail::throw_interrupted();
}

bool ConditionVariable::wait_until(Mutex& mutex, std::chrono::steady_clock::time_point deadline) {
  Waiter w;
  {
    std::lock_guard lock(guard_);
    waiters_.push_back(w);
  }
  mutex.unlock();
  WaitOutcome outcome = wait_in(guard_, waiters_, w, deadline);
  mutex.lock();
  if (outcome == WaitOutcome::kInterrupted) detail::throw_interrupted();
  return outcome == WaitOutcome::kSignaled;
}

void ConditionVariable::notify_one() {
  std::lock_guard lock(guard_);
  fire_first(waiters_);
}

void ConditionVariable::notify_all() {
  std::lock_guard lock(guard_);
  while (Waiter* w = waiters_.pop_front()) w->fire();
}

Barrier::Barrier(size_t count) : count_(count == 0 ? 1 : count) {}

bool Barrier::arrive_and_wait() {
  guard_.lock();
  if (++arrived_ == count_) {
    arrived_ = 0;
    ++generation_;
    while (Waiter* w = waiters_.pop_front()) w->fire();
    guard_.unlock();
    return true;
  }
  Waiter w;
  waiters_.push_back(w);
  guard_.unlock();
  if (wait_in(guard_, waiters_, w) != WaitOutcome::kSignaled) detail::throw_interrupted();
  return false;
}

}  // namespace dango::thread
