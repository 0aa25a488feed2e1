// The receiving side of the tcp transport: reading sockets, validating and dispatching frames.
// Runs on the progress thread only. Any malformed input closes that one connection.

#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "net/tcp/tcp_transport.hpp"

namespace dango::net::tcp {
namespace {

// Reads per connection per wakeup before giving other connections a turn.
constexpr int kMaxReadsPerWakeup = 16;

std::string error_text(int err) { return std::error_code(err, std::system_category()).message(); }

bool is_closed(const Connection& c) { return c.state.load() == Connection::State::kClosed; }

// Copies bytes already in the input buffer to the payload destination (or drops them).
size_t scatter(const std::byte* from, size_t length, Connection::Receive& r) {
  size_t n = std::min(length, r.remaining);
  if (!r.segments.empty()) {
    size_t offset = r.offset;
    size_t done = 0;
    for (const auto& seg : r.segments) {
      if (done == n) break;
      if (offset >= seg.size()) {
        offset -= seg.size();
        continue;
      }
      size_t k = std::min(seg.size() - offset, n - done);
      std::memcpy(seg.data() + offset, from + done, k);
      done += k;
      offset = 0;
    }
  }
  r.offset += n;
  r.remaining -= n;
  return n;
}

}  // namespace

bool TcpTransport::reject(Connection& c, const std::string& why) {
  dango::log::get("net")->warn("closing connection from {}: {}", c.description, why);
  close_connection(c, {Status::Code::kDisconnected, why}, true);
  return false;
}

size_t TcpTransport::handle_readable(Connection& c) {
  size_t handled = 0;
  for (int round = 0; round < kMaxReadsPerWakeup; ++round) {
    auto result = c.receive.kind == Connection::Receive::Kind::kPayload ? read_payload(c, handled)
                                                                        : read_frames(c, handled);
    if (result != ReadResult::kMore) break;
  }
  return handled;
}

TcpTransport::ReadResult TcpTransport::read_failed(Connection& c, ssize_t n) {
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ReadResult::kDrained;
  if (n < 0 && errno == EINTR) return ReadResult::kMore;
  close_connection(c,
                   {Status::Code::kDisconnected,
                    n == 0 ? std::string("closed by peer") : "read failed: " + error_text(errno)},
                   true);
  return ReadResult::kClosed;
}

TcpTransport::ReadResult TcpTransport::read_frames(Connection& c, size_t& handled) {
  auto space = c.in.free_space();
  if (space.empty()) {
    c.in.ensure_fits(c.in.size() + InputBuffer::kDefaultCapacity);
    space = c.in.free_space();
  }
  ssize_t n = ::read(c.fd, space.data(), space.size());
  if (n <= 0) return read_failed(c, n);
  c.in.commit(static_cast<size_t>(n));
  if (!process_frames(c, handled)) return ReadResult::kClosed;
  // A short read drained the socket: another read would only return EAGAIN.
  return static_cast<size_t>(n) < space.size() ? ReadResult::kDrained : ReadResult::kMore;
}

TcpTransport::ReadResult TcpTransport::read_payload(Connection& c, size_t& handled) {
  // The input buffer is empty here: process_frames consumed what it held into the payload.
  Connection::Receive& r = c.receive;
  auto space = c.in.free_space();
  iov_in_.clear();
  size_t wanted = 0;
  size_t direct = 0;
  if (!r.segments.empty()) {
    direct = gather_range(r.segments, r.offset, r.remaining, iov_in_, kMaxIovPerCall - 1);
    wanted = direct;
  }
  // The bytes after the payload may land in the buffer in the same readv, but only when the
  // whole payload is covered by the iovecs before it.
  if (direct == r.remaining || r.segments.empty()) {
    iov_in_.push_back({space.data(), space.size()});
    wanted += space.size();
  }
  ssize_t n = ::readv(c.fd, iov_in_.data(), static_cast<int>(iov_in_.size()));
  if (n <= 0) return read_failed(c, n);
  size_t got = static_cast<size_t>(n);
  size_t to_memory = std::min(got, direct);
  r.offset += to_memory;
  r.remaining -= to_memory;
  c.in.commit(got - to_memory);
  if (r.segments.empty()) c.in.consume(scatter(c.in.data(), c.in.size(), r));
  if (r.remaining == 0 && !finish_payload(c, handled)) return ReadResult::kClosed;
  if (!process_frames(c, handled)) return ReadResult::kClosed;
  // In the middle of a payload the sender is most likely still writing: read again rather than
  // go back through epoll_wait, until the socket really is empty (EAGAIN).
  if (c.receive.kind == Connection::Receive::Kind::kPayload) return ReadResult::kMore;
  return got < wanted ? ReadResult::kDrained : ReadResult::kMore;
}

bool TcpTransport::finish_payload(Connection& c, size_t& handled) {
  Connection::Receive r = std::move(c.receive);
  c.receive = {};
  if (r.frame == FrameType::kGetReply) {
    handled += complete_chunk(r.op_id, Status::Ok());
  } else {
    ++handled;
    send_reply(c, FrameType::kPutAck, r.op_id, r.error);
  }
  return !closed_.load() && !is_closed(c);
}

bool TcpTransport::process_frames(Connection& c, size_t& handled) {
  while (c.receive.kind == Connection::Receive::Kind::kFrames) {
    size_t avail = c.in.size();
    if (avail < kBaseHeaderSize) return true;
    const std::byte* p = c.in.data();
    BaseHeader h = decode_base(p);
    if (!base_header_valid(h)) return reject(c, "bad frame header (magic, version or type)");
    auto type = static_cast<FrameType>(h.type);
    if (!c.peer && type != FrameType::kHello) return reject(c, "first frame is not a HELLO");
    size_t hsize = header_size(h.type);
    if (avail < hsize) return true;

    if (type == FrameType::kMessage || type == FrameType::kHello) {
      size_t limit = type == FrameType::kMessage ? options_.max_message_size : kMaxHelloLength;
      if (h.length > limit) {
        return reject(c, "frame of " + std::to_string(h.length) + " bytes exceeds the limit of " +
                             std::to_string(limit));
      }
      size_t frame = hsize + h.length;
      if (avail < frame) {
        c.in.ensure_fits(frame);
        return true;
      }
      std::span<const std::byte> payload(p + hsize, h.length);
      if (type == FrameType::kHello) {
        if (c.peer) return reject(c, "second HELLO on one connection");
        if (!handle_hello(c, payload)) return false;
      } else {
        ++handled;
        if (handler_ != nullptr) handler_->on_message(c.peer, payload);
        // The handler may have closed the transport.
        if (closed_.load() || is_closed(c)) return false;
      }
      c.in.consume(frame);
      c.in.shrink_if_idle();
      continue;
    }

    BulkHeader b = decode_bulk(p);
    if (type == FrameType::kGetRequest) {
      if (h.length != 0) return reject(c, "GET request with a payload");
      c.in.consume(hsize);
      ++handled;
      if (!serve_get(c, b)) return false;
      continue;
    }
    if (type == FrameType::kPutRequest) {
      c.in.consume(hsize);
      Status accepted = accept_put(c, b, h.length);
      if (!accepted.ok()) {
        // A refused PUT is answered, not punished; its payload is read and dropped, unless its
        // size shows that the stream is garbage.
        if (h.length > std::max(options_.max_message_size, options_.bulk_chunk_size)) {
          return reject(c, "PUT request announcing " + std::to_string(h.length) + " bytes");
        }
        c.receive = {};
        c.receive.kind = Connection::Receive::Kind::kPayload;
        c.receive.remaining = h.length;
        c.receive.frame = FrameType::kPutRequest;
        c.receive.op_id = b.op_id;
        c.receive.error = std::move(accepted);
      }
    } else {  // kGetReply or kPutAck: answers to our own requests
      auto chunk = find_chunk(c, b.op_id);
      if (!chunk) return reject(c, "reply to an unknown operation " + std::to_string(b.op_id));
      bool data = type == FrameType::kGetReply && h.status == 0;
      if (!data) {
        if (h.length > kMaxErrorTextLength) return reject(c, "oversized error text in a reply");
        size_t frame = hsize + h.length;
        if (avail < frame) return true;
        Status status;
        if (h.status != 0) {
          status.code = static_cast<Status::Code>(h.status);
          status.message = c.description + " refused " +
                           (type == FrameType::kGetReply ? "get: " : "put: ") +
                           std::string(reinterpret_cast<const char*>(p + hsize), h.length);
        }
        c.in.consume(frame);
        handled += complete_chunk(b.op_id, status);
        if (closed_.load() || is_closed(c)) return false;
        continue;
      }
      if (h.length != chunk->size) return reject(c, "GET reply of the wrong size");
      c.in.consume(hsize);
      c.receive = {};
      c.receive.kind = Connection::Receive::Kind::kPayload;
      c.receive.segments = chunk->local_segments;
      c.receive.offset = chunk->local_offset;
      c.receive.remaining = h.length;
      c.receive.frame = FrameType::kGetReply;
      c.receive.op_id = b.op_id;
    }
    // Payload bytes that arrived with the header: the only copy the input buffer adds, bounded
    // by its size; the rest is read straight into place.
    c.in.consume(scatter(c.in.data(), c.in.size(), c.receive));
    if (c.receive.remaining == 0 && !finish_payload(c, handled)) return false;
  }
  return true;
}

bool TcpTransport::handle_hello(Connection& c, std::span<const std::byte> payload) {
  std::string address(reinterpret_cast<const char*>(payload.data()), payload.size());
  std::optional<SocketAddress> target;
  if (!address.empty()) {
    auto [scheme, location] = split_address(address);
    if (scheme != "tcp") return reject(c, "HELLO with a non-tcp address");
    try {
      target = resolve(parse_host_port(location, address), false, address, true);
    } catch (const NetworkError& e) {
      return reject(c, std::string("HELLO with a bad address: ") + e.what());
    }
  }
  std::shared_ptr<TcpPeer> peer;
  std::shared_ptr<Connection> self;
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(&c);
    if (it != connections_.end()) self = it->second;
    if (target) {
      auto& slot = peers_[address];
      peer = slot.lock();
      if (!peer) {
        peer = std::make_shared<TcpPeer>(this, address, target);
        slot = peer;
      }
    }
  }
  if (!peer) {
    // A client-only peer: reachable only through this connection, never reconnected.
    peer = std::make_shared<TcpPeer>(this, c.description, std::nullopt);
  } else {
    c.description = address;
  }
  c.peer = peer;
  std::lock_guard lock(peer->mutex_);
  auto& current = peer->connection_;
  // Replies to this peer reuse its connection (one connection per pair). Our own outgoing
  // connection is kept when both sides connected at once; an older incoming one is stale (the
  // peer reconnected), so the new one replaces it.
  bool replace = !current || current->state.load() == Connection::State::kBroken ||
                 current->state.load() == Connection::State::kClosed || !current->outgoing;
  if (replace && self) current = self;
  return true;
}

}  // namespace dango::net::tcp
