#pragma once
// epoll waits with microsecond timeouts, shared by the transports' and the engine's idle
// sleeps. A plain epoll_wait counts in milliseconds, so a ULT sleeping 200 µs would sleep a
// whole millisecond; epoll_pwait2 (Linux 5.11) takes a timespec.

#include <sys/epoll.h>

#include <chrono>

namespace dango::detail {

// Waits on `epfd` like epoll_wait for at most `timeout` (0 polls, negative waits forever),
// with microsecond precision where the kernel offers epoll_pwait2 and rounded up to the next
// millisecond elsewhere. Returns epoll_wait's result (-1 with errno on failure, EINTR included).
int epoll_wait_for(int epfd, epoll_event* events, int max_events,
                   std::chrono::microseconds timeout);

}  // namespace dango::detail
