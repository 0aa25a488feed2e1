#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "thread/internal.hpp"

namespace dango::thread::detail {
namespace {

void futex_wait(std::atomic<uint32_t>& word, uint32_t expected, const timespec* timeout) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, timeout,
          nullptr, 0);
}
void futex_wake(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr,
          0);
}

}  // namespace

void Parker::park(std::optional<Clock::time_point> deadline, bool (*recheck)(void*), void* ctx) {
  if (state_.exchange(kSleeping, std::memory_order_seq_cst) == kNotified ||
      (recheck && recheck(ctx))) {
    state_.store(kAwake, std::memory_order_seq_cst);
    return;
  }
  const int64_t start = begin_sleep();
  while (state_.load(std::memory_order_acquire) == kSleeping) {
    if (deadline) {
      auto left = *deadline - Clock::now();
      if (left <= Clock::duration::zero()) break;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      futex_wait(state_, kSleeping, &ts);
    } else {
      futex_wait(state_, kSleeping, nullptr);
    }
  }
  end_sleep(start);
  // A notification that arrives now merges with the one that woke us: the caller re-checks
  // its conditions after every park, so no wake-up is lost.
  state_.store(kAwake, std::memory_order_seq_cst);
}

void Parker::unpark() {
  if (state_.exchange(kNotified, std::memory_order_seq_cst) != kSleeping) return;
  if (auto wake = external_wake_.load(std::memory_order_acquire)) {
    wake(external_ctx_.load(std::memory_order_relaxed));
  } else {
    futex_wake(state_);
  }
}

[[gnu::noinline]] ThreadContext& this_thread_context() {
  // noinline + the empty asm keep the compiler from caching the TLS address across a context
  // switch, after which the ULT may run on another OS thread.
  thread_local ThreadContext context;
  asm volatile("" ::: "memory");
  return context;
}

}  // namespace dango::thread::detail
