// The progress loop of the sm transport: reading rings and control sockets, dispatching records,
// and sleeping only after telling every sender so.

#include <sys/epoll.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "common/epoll_wait.hpp"
#include "net/sm/sm_internal.hpp"
#include "net/sm/sm_transport.hpp"

namespace dango::net::sm {
namespace {

// While polling, the control sockets (handshakes, arena descriptors, hang-ups) are checked with
// epoll_wait every this many passes: the rings alone carry messages, so a pass costs no
// system call.
constexpr unsigned kPassesPerEpoll = 64;
constexpr size_t kMaxRecordsPerPass = 256;
constexpr size_t kMaxPacketsPerPass = 64;
constexpr int kMaxEvents = 64;
constexpr std::chrono::microseconds kNoWait{0};
// A reassembly buffer larger than this is freed after its message rather than kept.
constexpr size_t kKeptReassemblyBytes = size_t{4} << 20;

}  // namespace

size_t SmTransport::progress(std::chrono::microseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return 0;
  // After a sleep on wait_fd(), drain the sockets at once: a wake-up packet left there would
  // keep the descriptor readable and the caller from sleeping again.
  const bool after_sleep = armed_;
  if (armed_) disarm_all();
  if (waiting_.load(std::memory_order_relaxed)) waiting_.store(false);
  size_t handled = poll_once();
  if (after_sleep || ++passes_ % kPassesPerEpoll == 0) handled += poll_events(kNoWait);
  if (handled > 0 || timeout.count() <= 0 || closed_.load()) return handled;
  if (sm_.busy_poll.count() > 0) {
    auto deadline = std::chrono::steady_clock::now() + std::min(sm_.busy_poll, timeout);
    while (std::chrono::steady_clock::now() < deadline) {
      if ((handled = poll_once()) > 0) return handled;
      if (interrupt_pending_.exchange(false)) return 0;
    }
  }
  if (!prepare_wait()) return poll_once() + poll_events(kNoWait);  // work is pending
  handled = poll_events(timeout);
  waiting_.store(false);
  disarm_all();
  return handled + poll_once();
}

bool SmTransport::prepare_wait() {
  if (closed_.load()) return true;
  waiting_.store(true);
  // Pairs with interrupt(): either it sees waiting_ and writes the eventfd, or we see its flag.
  if (interrupt_pending_.exchange(false) || has_fresh_.load() || has_submitted_.load() ||
      !active_.empty()) {
    waiting_.store(false);
    return false;
  }
  for (const auto& c : polled_) {
    if (c->state.load(std::memory_order_relaxed) == Connection::State::kClosed ||
        c->segment.data() == nullptr) {
      continue;
    }
    armed_ = true;
    if (c->has_overflow.load() && !sleep_until_room(*c)) {
      disarm_all();
      waiting_.store(false);
      return false;
    }
    if (!c->in.arm_wait()) {
      disarm_all();
      waiting_.store(false);
      return false;
    }
  }
  return true;
}

bool SmTransport::sleep_until_room(Connection& c) {
  // The peer wakes us when it frees room once it sees the announcement; what it freed before
  // is found by this last drain. Sleeping is safe only when that drain wrote nothing whole.
  c.out.want_room();
  return drain_overflow(c) == 0 && c.has_overflow.load();
}

void SmTransport::disarm_all() {
  for (const auto& c : polled_) {
    if (c->segment.data() != nullptr && c->state.load() != Connection::State::kClosed) {
      c->in.disarm_wait();
    }
  }
  armed_ = false;
}

void SmTransport::adopt_new_connections() {
  std::lock_guard lock(mutex_);
  for (auto& c : fresh_) polled_.push_back(std::move(c));
  fresh_.clear();
  has_fresh_.store(false, std::memory_order_release);
}

size_t SmTransport::poll_once() {
  if (has_fresh_.load(std::memory_order_acquire)) adopt_new_connections();
  size_t handled = 0;
  bool any_closed = false;
  for (size_t i = 0; i < polled_.size() && !closed_.load(std::memory_order_relaxed); ++i) {
    Connection& c = *polled_[i];
    if (c.state.load(std::memory_order_relaxed) == Connection::State::kClosed) {
      any_closed = true;
      continue;
    }
    if (c.segment.data() == nullptr) continue;  // accepted, HELLO not read yet
    if (c.has_overflow.load(std::memory_order_relaxed)) drain_overflow(c);
    handled += read_ring(c);
  }
  if (any_closed) {
    std::erase_if(polled_,
                  [](const auto& c) { return c->state.load() == Connection::State::kClosed; });
  }
  if (has_submitted_.load(std::memory_order_relaxed) || !active_.empty()) {
    handled += run_bulk_ops();
  }
  return handled;
}

size_t SmTransport::poll_events(std::chrono::microseconds timeout) {
  graveyard_.clear();  // no event of an earlier epoll_wait refers to these any more
  epoll_event events[kMaxEvents];
  int n = dango::detail::epoll_wait_for(epoll_fd_.get(), events, kMaxEvents, timeout);
  if (n < 0) {
    if (errno != EINTR) sm_logger().error("epoll_wait failed: {}", std::strerror(errno));
    return 0;
  }
  size_t handled = 0;
  for (int i = 0; i < n && !closed_.load(std::memory_order_relaxed); ++i) {
    const epoll_event& ev = events[i];
    if (ev.data.u64 == kWakeTag) {
      uint64_t value;
      [[maybe_unused]] auto r = ::read(wake_fd_.get(), &value, sizeof value);
      interrupt_pending_.store(false);
      continue;
    }
    if (ev.data.u64 == kListenTag) {
      handled += accept_all();
      continue;
    }
    auto* c = static_cast<Connection*>(ev.data.ptr);
    if (c->state.load() != Connection::State::kClosed) handled += handle_socket(*c);
  }
  return handled;
}

size_t SmTransport::handle_socket(Connection& c) {
  size_t handled = 0;
  for (size_t i = 0; i < kMaxPacketsPerPass; ++i) {
    ControlPacket packet;
    switch (receive_control(c.socket.get(), control_buffer_, packet)) {
      case ControlResult::kEmpty:
        return handled;
      case ControlResult::kClosed:
        // What the peer wrote before it closed (a last reply) is still in the ring: deliver it
        // before reporting the loss, as a socket would.
        if (!c.corrupt.load()) drain_ring(c);
        if (c.state.load() == Connection::State::kClosed) return handled + 1;
        close_connection(c,
                         {Status::Code::kDisconnected,
                          c.corrupt.load() ? "the peer corrupted the ring's positions"
                                           : "the process closed the connection"},
                         true);
        return handled + 1;
      case ControlResult::kGarbage:
        close_connection(c, {Status::Code::kDisconnected, "garbage on the control socket"}, true);
        return handled + 1;
      case ControlResult::kPacket:
        if (!handle_control(c, packet)) {
          close_connection(
              c, {Status::Code::kDisconnected, "unexpected or malformed control packet"}, true);
          return handled + 1;
        }
        if (packet.type != ControlType::kWake) ++handled;
        break;
    }
  }
  return handled;
}

bool SmTransport::handle_control(Connection& c, ControlPacket& packet) {
  const auto state = c.state.load();
  const bool open = state == Connection::State::kOpen;
  uint64_t id = 0;
  if (packet.body.size() >= sizeof id) std::memcpy(&id, packet.body.data(), sizeof id);
  switch (packet.type) {
    case ControlType::kHello:
      return !c.connector && state == Connection::State::kHandshake && handle_hello(c, packet);
    case ControlType::kWelcome:
      return c.connector && state == Connection::State::kHandshake && handle_welcome(c, packet);
    case ControlType::kWake:
      return packet.body.empty() && !packet.fd;
    case ControlType::kArenaRequest:
      if (!open || packet.body.size() != sizeof id || packet.fd) return false;
      send_arena(c, id);
      return true;
    case ControlType::kArena:
      if (!open || packet.body.size() != sizeof(ArenaBody) || !packet.fd) return false;
      map_arena(c, packet);
      return true;
    case ControlType::kArenaGone:
      if (!open || packet.body.size() != sizeof id || packet.fd) return false;
      c.arenas.erase(id);
      c.arenas_asked.erase(id);
      return true;
  }
  return false;
}

size_t SmTransport::drain_ring(Connection& c) {
  size_t handled = 0;
  // Bounded: a live peer cannot keep the loop going, a dead one has written all it will.
  for (int pass = 0; pass < 4096 && c.state.load() != Connection::State::kClosed; ++pass) {
    handled += read_ring(c);
    Ring::Record record;
    if (c.state.load() == Connection::State::kClosed || c.in.peek(record) != Ring::Result::kOk) {
      break;
    }
  }
  return handled;
}

size_t SmTransport::read_ring(Connection& c) {
  size_t handled = 0;
  bool released = false;
  for (size_t i = 0; i < kMaxRecordsPerPass; ++i) {
    Ring::Record record;
    auto result = c.in.peek(record);
    if (result == Ring::Result::kFull) break;
    if (result == Ring::Result::kCorrupt) {
      close_connection(c, {Status::Code::kDisconnected, "corrupt record in the ring"}, true);
      break;
    }
    if (!dispatch(c, record, handled)) {
      close_connection(c, {Status::Code::kDisconnected, "malformed record in the ring"}, true);
      break;
    }
    // A handler may have closed the transport, and with it this connection.
    if (c.state.load(std::memory_order_relaxed) == Connection::State::kClosed) break;
    c.in.release();
    released = true;
  }
  // A peer asleep with messages waiting for room in this ring is woken now that there is some.
  if (released && c.in.take_room_request()) wake(c);
  return handled;
}

bool SmTransport::dispatch(Connection& c, const Ring::Record& record, size_t& handled) {
  switch (record.type) {
    case RecordType::kMessage:
      if (handler_ != nullptr) handler_->on_message(c.peer, record.payload);
      ++handled;
      return true;
    case RecordType::kFirstFragment:
    case RecordType::kMiddleFragment:
    case RecordType::kLastFragment:
      return handle_fragment(c, record, handled);
    case RecordType::kGetRequest:
      ++handled;
      return serve_get_request(c, record.payload);
    case RecordType::kPutRequest:
      ++handled;
      return accept_put_request(c, record.payload);
    case RecordType::kBulkData:
      return receive_bulk_data(c, record.payload);
    case RecordType::kBulkDone:
      ++handled;
      return receive_bulk_done(c, record.payload);
    case RecordType::kPad:
      break;
  }
  return false;
}

bool SmTransport::handle_fragment(Connection& c, const Ring::Record& record, size_t& handled) {
  std::span<const std::byte> bytes = record.payload;
  if (record.type == RecordType::kFirstFragment) {
    uint64_t total;
    if (c.reassembly_total != 0 || bytes.size() < sizeof total) return false;
    std::memcpy(&total, bytes.data(), sizeof total);
    bytes = bytes.subspan(sizeof total);
    if (total > options_.max_message_size || total <= bytes.size()) return false;
    c.reassembly.reserve(total);
    c.reassembly.assign(bytes.begin(), bytes.end());
    c.reassembly_total = total;
    return true;
  }
  if (c.reassembly_total == 0 || bytes.size() > c.reassembly_total - c.reassembly.size()) {
    return false;
  }
  c.reassembly.insert(c.reassembly.end(), bytes.begin(), bytes.end());
  const bool complete = c.reassembly.size() == c.reassembly_total;
  if ((record.type == RecordType::kLastFragment) != complete) return false;
  if (!complete) return true;
  if (handler_ != nullptr) handler_->on_message(c.peer, c.reassembly);
  ++handled;
  c.reassembly_total = 0;
  if (c.reassembly.capacity() > kKeptReassemblyBytes) {
    c.reassembly = {};
  } else {
    c.reassembly.clear();
  }
  return true;
}

}  // namespace dango::net::sm
