#include "net/tcp/connection.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

namespace dango::net::tcp {

Connection::Connection(int fd_in, State state_in, bool outgoing_in, PeerRef peer_in,
                       std::string description_in)
    : fd(fd_in),
      outgoing(outgoing_in),
      state(state_in),
      peer(std::move(peer_in)),
      description(std::move(description_in)) {}

Connection::~Connection() {
  if (state.load() != State::kClosed) ::close(fd);
}

bool Connection::submit(int epoll_fd, std::span<const iovec> iov, size_t copied) {
  size_t written = 0;
  // Past kMaxIovPerCall entries the queue writes in batches (sendmsg refuses > IOV_MAX).
  if (state.load(std::memory_order_relaxed) == State::kConnected && out.empty() &&
      iov.size() <= kMaxIovPerCall) {
    ssize_t n = send_iov(fd, iov.data(), iov.size());
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      n = 0;
    }
    written = static_cast<size_t>(n);
    size_t total = 0;
    for (const auto& v : iov) total += v.iov_len;
    if (written == total) return true;
  }
  out.append(iov, copied, written);
  want_write(epoll_fd, true);
  return true;
}

void Connection::want_write(int epoll_fd, bool on) {
  if (write_armed == on) return;
  epoll_event ev{};
  ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.ptr = this;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev);
  write_armed = on;
}

}  // namespace dango::net::tcp
