#include "common/epoll_wait.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

namespace dango::detail {

namespace {
// Cleared the first time the kernel answers ENOSYS (older than 5.11, or a seccomp filter).
std::atomic<bool> have_pwait2{true};
}  // namespace

int epoll_wait_for(int epfd, epoll_event* events, int max_events,
                   std::chrono::microseconds timeout) {
  if (timeout.count() < 0) return ::epoll_wait(epfd, events, max_events, -1);
  if (timeout.count() > 0 && have_pwait2.load(std::memory_order_relaxed)) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000) * 1000;
    int n = ::epoll_pwait2(epfd, events, max_events, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2.store(false, std::memory_order_relaxed);
  }
  const int64_t ms = (timeout.count() + 999) / 1000;
  return ::epoll_wait(epfd, events, max_events, static_cast<int>(ms > INT_MAX ? INT_MAX : ms));
}

}  // namespace dango::detail
