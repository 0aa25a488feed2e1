#include "thread/internal.hpp"

namespace dango::thread::detail {
namespace {
int64_t to_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

void TimerQueue::add(Clock::time_point deadline, Waiter* waiter) {
  std::lock_guard lock(mutex_);
  timers_.emplace(deadline, waiter);
  waiter->timer_armed = true;
  earliest_ns_.store(to_ns(timers_.begin()->first), std::memory_order_release);
}

void TimerQueue::cancel(Waiter* waiter, Clock::time_point deadline) {
  std::lock_guard lock(mutex_);
  if (!waiter->timer_armed) return;
  auto [first, last] = timers_.equal_range(deadline);
  for (auto it = first; it != last; ++it) {
    if (it->second == waiter) {
      timers_.erase(it);
      break;
    }
  }
  waiter->timer_armed = false;
  earliest_ns_.store(timers_.empty() ? INT64_MAX : to_ns(timers_.begin()->first),
                     std::memory_order_release);
}

void TimerQueue::fire_due(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Waiter* waiter = timers_.begin()->second;
    timers_.erase(timers_.begin());
    waiter->timer_armed = false;
    waiter->fire(WaitOutcome::kTimeout);  // under the lock: the waiter cancels through it
  }
  earliest_ns_.store(timers_.empty() ? INT64_MAX : to_ns(timers_.begin()->first),
                     std::memory_order_release);
}

std::optional<Clock::time_point> TimerQueue::earliest() const {
  int64_t ns = earliest_ns_.load(std::memory_order_acquire);
  if (ns == INT64_MAX) return std::nullopt;
  return Clock::time_point(std::chrono::nanoseconds(ns));
}

void RuntimeImpl::poll_timers() {
  int64_t ns = timers_.earliest_ns_.load(std::memory_order_acquire);
  if (ns == INT64_MAX) return;
  auto now = Clock::now();
  if (to_ns(now) >= ns) timers_.fire_due(now);
}

}  // namespace dango::thread::detail
