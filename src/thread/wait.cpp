// The waiting mechanism shared by every primitive: Waiter, WaitList, block(), EventualCore.

#include "dango/thread/wait.hpp"

#include <thread>

#include "dango/common/error.hpp"
#include "thread/internal.hpp"

namespace dango::thread::detail {

Waiter::Waiter() {
  ThreadContext& context = this_thread_context();
  ult_ = context.current;
  thread_ = ult_ ? nullptr : &context;
}

bool Waiter::fire(WaitOutcome outcome) {
  // Once the outcome is set the waiter may return and its ULT even end: a reference keeps the
  // ULT's control block alive until unpark() is done with it.
  UltControl* ult = ult_;
  ThreadContext* thread = thread_;
  if (ult) ult->refs.fetch_add(1, std::memory_order_relaxed);
  WaitOutcome expected = WaitOutcome::kPending;
  if (!outcome_.compare_exchange_strong(expected, outcome, std::memory_order_acq_rel)) {
    if (ult) ult->release();
    return false;
  }
  if (ult) {
    unpark(ult);
    ult->release();
  } else {
    thread->parker.unpark();
    fired_.store(true, std::memory_order_release);
  }
  return true;
}

void WaitList::push_back(Waiter& w) {
  w.prev = tail_;
  w.next = nullptr;
  if (tail_) {
    tail_->next = &w;
  } else {
    head_ = &w;
  }
  tail_ = &w;
  w.linked = true;
}

Waiter* WaitList::pop_front() {
  Waiter* w = head_;
  if (w) remove(*w);
  return w;
}

void WaitList::remove(Waiter& w) {
  if (!w.linked) return;
  (w.prev ? w.prev->next : head_) = w.next;
  (w.next ? w.next->prev : tail_) = w.prev;
  w.prev = w.next = nullptr;
  w.linked = false;
}

// Waits outside a ULT: the thread runs the ULTs of the streams it serves (a runtime's primary
// thread) and sleeps on its parker when there is nothing to run.
void wait_on_thread(Waiter& w, std::optional<Clock::time_point> deadline);

WaitOutcome block(Waiter& w, std::optional<Clock::time_point> deadline) {
  if (!w.ult_) {
    wait_on_thread(w, deadline);
  } else {
    RuntimeImpl& runtime = w.ult_->pool->runtime();
    runtime.add_blocked(&w);
    if (deadline) runtime.timers().add(*deadline, &w);
    if (runtime.stopping()) w.fire(WaitOutcome::kInterrupted);
    while (w.outcome() == WaitOutcome::kPending) {
      UltState expected = UltState::kRunning;
      if (w.ult_->state.compare_exchange_strong(expected, UltState::kParking,
                                                std::memory_order_acq_rel)) {
        switch_out(w.ult_);
      } else {
        w.ult_->state.store(UltState::kRunning, std::memory_order_relaxed);  // consumed a wake
      }
    }
    if (deadline) runtime.timers().cancel(&w, *deadline);
    runtime.remove_blocked(&w);
  }
  if (!w.ult_) {
    // A plain thread's context dies with the thread: wait until the firer is done with it.
    for (int spins = 0; !w.fired_.load(std::memory_order_acquire); ++spins) {
      if (spins < 64) {
        __builtin_ia32_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }
  return w.outcome();
}

void throw_interrupted() { throw ShutdownError("wait interrupted: the thread runtime is shutting down"); }

void EventualCore::set_ready() {
  std::lock_guard lock(guard_);
  ready_.store(true, std::memory_order_release);
  // Fire under the lock: a waiter that timed out takes the lock to unlink itself, so it cannot
  // leave (and free its Waiter) while we still hold a pointer to it.
  while (Waiter* w = waiters_.pop_front()) w->fire();
}

bool EventualCore::wait_until(std::optional<Clock::time_point> deadline) {
  // Every return passes through guard_ after ready_ was seen: set_ready() has then released
  // the lock, so the caller may destroy (or reset) the eventual right away.
  Waiter w;
  {
    std::lock_guard lock(guard_);
    if (ready_.load(std::memory_order_relaxed)) return true;
    waiters_.push_back(w);
  }
  WaitOutcome outcome = block(w, deadline);
  {
    std::lock_guard lock(guard_);
    waiters_.remove(w);
  }
  if (outcome == WaitOutcome::kSignaled) return true;
  if (outcome == WaitOutcome::kInterrupted && !ready()) throw_interrupted();
  return ready();
}

}  // namespace dango::thread::detail
