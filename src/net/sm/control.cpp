// Sending and receiving control packets (with descriptors) on an sm connection's socket.

#include "net/sm/control.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dango::net::sm {

bool send_control(int socket, ControlType type, std::span<const std::byte> body, int pass_fd) {
  ControlHeader header;
  header.type = static_cast<uint8_t>(type);
  header.length = static_cast<uint32_t>(body.size());
  iovec iov[2] = {{&header, sizeof header}, {const_cast<std::byte*>(body.data()), body.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = body.empty() ? 1 : 2;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (pass_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(socket, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno != EINTR) return false;
  }
}

ControlResult receive_control(int socket, std::span<std::byte> buffer, ControlPacket& out) {
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for a few descriptors: a peer sending more than one is garbage, but every descriptor
  // received must still be closed.
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? ControlResult::kEmpty : ControlResult::kClosed;
  if (n == 0) return ControlResult::kClosed;
  out.fd.reset();
  int fds = 0;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
      if (fds++ == 0) {
        out.fd = Fd(fd);
      } else {
        ::close(fd);
      }
    }
  }
  ControlHeader header;
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || fds > 1 ||
      static_cast<size_t>(n) < sizeof header) {
    return ControlResult::kGarbage;
  }
  std::memcpy(&header, buffer.data(), sizeof header);
  if (header.magic != kControlMagic || header.version != kControlVersion || header.type < 1 ||
      header.type > kLastControlType || header.length != static_cast<size_t>(n) - sizeof header) {
    return ControlResult::kGarbage;
  }
  out.type = static_cast<ControlType>(header.type);
  out.body = buffer.subspan(sizeof header, header.length);
  return ControlResult::kPacket;
}

}  // namespace dango::net::sm
