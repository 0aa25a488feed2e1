#pragma once
// One TCP connection of the tcp transport: socket, state, output queue and input buffer. The
// transport's files share it as a plain struct; the locking rules are written on each field.

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

#include "dango/net/transport.hpp"
#include "net/tcp/buffers.hpp"
#include "net/tcp/frame.hpp"

namespace dango::net::tcp {

struct Connection {
  enum class State : uint8_t {
    kConnecting,  // non-blocking connect in flight; frames wait in the output queue
    kConnected,
    kBroken,  // a sender saw a write error; progress() will close it, senders make a new one
    kClosed,  // fd closed; nothing may touch it
  };

  // What the reader expects next: frame headers, or the payload of a bulk frame that goes
  // straight into registered memory (or is dropped when `segments` is empty).
  struct Receive {
    enum class Kind : uint8_t { kFrames, kPayload } kind = Kind::kFrames;
    std::span<const std::span<std::byte>> segments;
    size_t offset = 0;     // next destination byte, over the concatenated segments
    size_t remaining = 0;  // payload bytes still to read
    FrameType frame = FrameType::kMessage;
    uint64_t op_id = 0;
    Status error;  // a PUT_REQ being dropped: the answer to send once it is drained
  };

  Connection(int fd, State state, bool outgoing, PeerRef peer, std::string description);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends a frame made of `iov`: written at once when nothing is queued and the socket is
  // connected, the rest queued (the first `copied` entries copied, the others borrowed) and
  // EPOLLOUT armed. Caller holds out_mutex. Returns false on a socket error (errno set).
  bool submit(int epoll_fd, std::span<const iovec> iov, size_t copied);
  // Arms or disarms EPOLLOUT. Caller holds out_mutex.
  void want_write(int epoll_fd, bool on);

  const int fd;
  const bool outgoing;       // we connected (to peer's listening address); else accepted
  std::atomic<State> state;  // written under out_mutex; read anywhere as a hint

  std::mutex out_mutex;
  OutputQueue out;           // guarded by out_mutex
  bool write_armed = false;  // guarded by out_mutex
  bool batched = false;      // in the transport's list of connections to flush; out_mutex

  // Progress thread only:
  PeerRef peer;             // set at creation (outgoing) or on HELLO (incoming)
  std::string description;  // for logs: the peer address or "tcp://ip:port (client)"
  InputBuffer in;
  Receive receive;
  std::chrono::steady_clock::time_point connect_deadline;
};

}  // namespace dango::net::tcp
