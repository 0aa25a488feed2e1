// The engine's progress loop: drains every transport, keeps polling for a window after any
// activity (options.progress_poll; yielding the CPU between passes while the thread is being
// preempted, see preemption_watch.hpp), then sleeps in the kernel until a message, a ULT to run
// on this stream, or a timer. It sleeps at once while a thread::WorkerThread job waits for its
// thread to pick it up.

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "common/epoll_wait.hpp"
#include "dango/thread/worker_thread.hpp"
#include "dango/common/log.hpp"
#include "rpc/engine_impl.hpp"
#include "rpc/preemption_watch.hpp"
#include "spdlog/spdlog.h"

namespace dango::rpc {

void EngineImpl::progress_loop() {
  using Clock = std::chrono::steady_clock;
  auto last_activity = Clock::now();
  detail::PreemptionWatch preemption_watch;
  int busy_idle = 0;  // idle rounds in a row in which idle_wait found other work ready
  while (!stop_progress_.load(std::memory_order_acquire)) {
    size_t events = 0;
    const size_t count = transport_count_.load(std::memory_order_acquire);
    for (size_t i = 0; i < count; ++i)
      events += transports_[i]->progress(std::chrono::microseconds(0));
    const auto now = Clock::now();
    preemption_watch.note_pass(now);
    if (events > 0) last_activity = now;
    // While a WorkerThread job waits for its thread, the loop does not poll on: that thread may
    // need this CPU to start.
    if (events > 0 || (now - last_activity < options_.progress_poll &&
                       thread::WorkerThread::jobs_waiting() == 0)) {
      if (events == 0) preemption_watch.pause(now, now - last_activity);
      // Busy: let the handlers and callers this loop just woke run, then poll again.
      thread::this_ult::yield();
      continue;
    }
    // Idle past the polling window: sleep in the kernel. One transport sleeps in its own
    // progress(timeout); several in one epoll over their wait_fd()s.
    struct Sleep {
      EngineImpl* engine;
      size_t count;
      size_t events = 0;
      bool slept = true;
    } sleep{this, count};
    const bool can_sleep = count == 1 || wait_epoll_usable_;
    const bool waited =
        can_sleep &&
        thread::this_ult::idle_wait(
            [](void* ctx, std::chrono::nanoseconds timeout) {
              auto* s = static_cast<Sleep*>(ctx);
              if (s->count == 1) {
                s->events = s->engine->transports_[0]->progress(
                    std::chrono::duration_cast<std::chrono::microseconds>(timeout));
              } else {
                s->events = s->engine->wait_on_transports(timeout);
              }
            },
            [](void* ctx) { static_cast<Sleep*>(ctx)->engine->transports_[0]->interrupt(); },
            &sleep, std::chrono::milliseconds(100));
    if (sleep.events > 0) last_activity = Clock::now();
    if (waited || sleep.events > 0) {
      busy_idle = 0;
    } else if (!can_sleep || ++busy_idle >= 128) {
      // Idle but unable to sleep in the kernel: a transport without a wait_fd(), or other ULTs
      // always ready on this thread (another engine's idle progress loop). Nap so the thread
      // can sleep.
      busy_idle = 0;
      thread::this_ult::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    // Another ULT is ready on this thread: let it run.
    thread::this_ult::yield();
  }
}

size_t EngineImpl::wait_on_transports(std::chrono::nanoseconds timeout) {
  const size_t count = transport_count_.load(std::memory_order_acquire);
  if (wait_epoll_ < 0) {
    wait_epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (wait_epoll_ < 0) {
      wait_epoll_usable_ = false;
      return 0;
    }
  }
  for (; wait_epoll_count_ < count; ++wait_epoll_count_) {
    int fd = transports_[wait_epoll_count_]->wait_fd();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wait_epoll_count_;
    if (fd < 0 || ::epoll_ctl(wait_epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      log::get("rpc")->debug("engine at {}: transport {} offers no wait descriptor; idle naps",
                             address_, transports_[wait_epoll_count_]->scheme());
      wait_epoll_usable_ = false;
      return 0;
    }
  }
  // Each armed transport makes its descriptor readable for whatever comes after; what came
  // before makes prepare_wait() refuse.
  for (size_t i = 0; i < count; ++i) {
    if (!transports_[i]->prepare_wait()) return 1;
  }
  epoll_event events[8];
  dango::detail::epoll_wait_for(wait_epoll_, events, 8,
                                std::chrono::ceil<std::chrono::microseconds>(timeout));
  // A readable descriptor is not activity yet: the loop's next pass handles (and counts) what
  // it announced. A transport that wakes its sleeper on a timer (ofi's naps) must not restart
  // the polling window each time.
  return 0;
}

}  // namespace dango::rpc
