// Setup, peers, connections, send, the progress loop and close of the tcp transport.

#include "net/tcp/tcp_transport.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <random>
#include <system_error>

#include "dango/common/error.hpp"
#include "common/epoll_wait.hpp"
#include "dango/common/log.hpp"
#include "net/send_checks.hpp"

namespace dango::net::tcp {
namespace {

// epoll data of the two non-connection descriptors; connection entries hold a Connection*,
// which is never 1 or 2.
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kListenTag = 2;
constexpr int kMaxEvents = 64;
constexpr int kMaxAcceptsPerWakeup = 64;

spdlog::logger& logger() {
  static const auto instance = dango::log::get("net");
  return *instance;
}

std::string error_text(int err) { return std::error_code(err, std::system_category()).message(); }

void set_nodelay(int fd) {
  // Latency over throughput: small RPC messages must leave at once, not wait for Nagle.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool is_gone(Connection::State s) {
  return s == Connection::State::kBroken || s == Connection::State::kClosed;
}

}  // namespace

DANGO_REGISTER_TRANSPORT(tcp, TcpTransport);

TcpTransport::TcpTransport(std::string_view address, const TransportOptions& options)
    : options_(options), regions_(std::make_shared<RegionTable>()) {
  auto [scheme, location] = split_address(address);
  if (scheme != "tcp") {
    throw NetworkError("tcp transport cannot serve address \"" + std::string(address) + "\"");
  }
  if (options_.max_message_size == 0 || options_.bulk_chunk_size == 0) {
    throw ConfigError("tcp transport: max_message_size and bulk_chunk_size must be > 0");
  }
  // Random high bits so a descriptor kept from a previous run of the process is not mistaken
  // for a region of this one.
  regions_->next_key = (uint64_t{std::random_device{}()} << 32) | 1;
  try {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      throw NetworkError("tcp transport: cannot create epoll/eventfd: " + error_text(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    bool client_only = address == "tcp" || !options_.listen;
    if (!client_only) open_listener(address);
  } catch (...) {
    close();
    throw;
  }
}

TcpTransport::~TcpTransport() { close(); }

void TcpTransport::open_listener(std::string_view address) {
  auto location = split_address(address).second;
  SocketAddress bind_to = resolve(parse_host_port(location, address), true, address);
  listen_fd_ = ::socket(bind_to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    throw NetworkError("cannot create socket for " + std::string(address) + ": " +
                       error_text(errno));
  }
  // A restarted server must be able to bind its port while old connections sit in TIME_WAIT.
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, bind_to.get(), bind_to.length) != 0 ||
      ::listen(listen_fd_, SOMAXCONN) != 0) {
    throw NetworkError("cannot listen on " + std::string(address) + ": " + error_text(errno));
  }
  SocketAddress bound;
  bound.length = sizeof bound.storage;
  ::getsockname(listen_fd_, bound.get(), &bound.length);
  address_ = to_string(bound);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  logger().debug("tcp transport listening on {}", address_);
}

TcpPeer* TcpTransport::as_tcp_peer(const PeerRef& peer) const {
  auto* tcp_peer = dynamic_cast<TcpPeer*>(peer.get());
  return tcp_peer != nullptr && tcp_peer->owner_ == this ? tcp_peer : nullptr;
}

PeerRef TcpTransport::lookup(std::string_view address) {
  std::string key(address);
  {
    std::lock_guard lock(mutex_);
    auto it = peers_.find(key);
    if (it != peers_.end()) {
      if (auto peer = it->second.lock()) return peer;
    }
  }
  auto [scheme, location] = split_address(address);
  if (scheme != "tcp" || location.empty()) {
    throw NetworkError("tcp transport cannot look up \"" + key + "\" (expected tcp://host:port)");
  }
  SocketAddress target = resolve(parse_host_port(location, address), false, address);
  std::string canonical = to_string(target);
  std::lock_guard lock(mutex_);
  // Dead entries are swept now and then; they only cost memory.
  if (peers_.size() > 64 && peers_.size() % 64 == 0) {
    std::erase_if(peers_, [](const auto& entry) { return entry.second.expired(); });
  }
  auto& slot = peers_[canonical];
  auto peer = slot.lock();
  if (!peer) {
    peer = std::make_shared<TcpPeer>(this, canonical, target);
    slot = peer;
  }
  // The name as given is an alias, so the next lookup skips the resolver.
  if (key != canonical) peers_[key] = peer;
  return peer;
}

Status TcpTransport::connection_for(TcpPeer& peer, std::shared_ptr<Connection>& out) {
  std::lock_guard lock(peer.mutex_);
  if (peer.connection_ && !is_gone(peer.connection_->state.load())) {
    out = peer.connection_;
    return Status::Ok();
  }
  if (closed_.load()) return {Status::Code::kShutdown, "tcp transport closed"};
  if (!peer.target_) {
    return {Status::Code::kDisconnected,
            "peer " + peer.address_ + " is client-only and its connection is gone"};
  }
  return connect_to(peer, out);
}

// Caller holds peer.mutex_, so concurrent senders make one connection, not several.
Status TcpTransport::connect_to(TcpPeer& peer, std::shared_ptr<Connection>& out) {
  const SocketAddress& target = *peer.target_;
  int fd = ::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return {Status::Code::kDisconnected,
            "cannot create socket for " + peer.address_ + ": " + error_text(errno)};
  }
  set_nodelay(fd);
  auto state = Connection::State::kConnected;
  if (::connect(fd, target.get(), target.length) != 0) {
    if (errno != EINPROGRESS) {
      int err = errno;
      ::close(fd);
      return {Status::Code::kDisconnected,
              "cannot connect to " + peer.address_ + ": " + error_text(err)};
    }
    state = Connection::State::kConnecting;
  }
  auto c = std::make_shared<Connection>(fd, state, true, peer.shared_from_this(), peer.address_);
  // HELLO goes first so the accepting side knows who we are before any other frame.
  BaseHeader hello;
  hello.type = static_cast<uint8_t>(FrameType::kHello);
  hello.length = address_.size();
  iovec iov[2] = {{&hello, sizeof hello}, {const_cast<char*>(address_.data()), address_.size()}};
  c->out.append(iov, 2, 0);
  c->write_armed = true;
  c->connect_deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  if (state == Connection::State::kConnected) c->out.flush(fd);
  {
    std::lock_guard lock(mutex_);
    if (closed_.load()) return {Status::Code::kShutdown, "tcp transport closed"};
    if (state == Connection::State::kConnecting) ++connecting_count_;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c.get();
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(c.get(), c);
  }
  logger().debug("connecting to {}", peer.address_);
  peer.connection_ = c;
  out = std::move(c);
  return Status::Ok();
}

void TcpTransport::mark_broken(Connection& c) {
  // Caller holds c.out_mutex. shutdown() makes epoll report the socket, so progress() closes
  // it and fails what was pending on it; a sender meanwhile makes a fresh connection.
  c.state.store(Connection::State::kBroken);
  ::shutdown(c.fd, SHUT_RDWR);
}

Status TcpTransport::send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
                          SendMode mode) {
  TcpPeer* peer = as_tcp_peer(to);
  size_t total = 0;
  if (Status s = admit_send("tcp", closed_.load(std::memory_order_relaxed), peer, parts,
                            options_.max_message_size, total);
      !s.ok()) {
    return s;
  }
  BaseHeader header;
  header.type = static_cast<uint8_t>(FrameType::kMessage);
  header.length = total;
  constexpr size_t kInlineParts = kMaxIovPerCall;
  iovec inline_iov[kInlineParts];
  std::vector<iovec> many;  // only for messages of more than kInlineParts - 1 parts
  iovec* iov = inline_iov;
  if (parts.size() + 1 > kInlineParts) {
    many.resize(parts.size() + 1);
    iov = many.data();
  }
  iov[0] = {&header, sizeof header};
  for (size_t i = 0; i < parts.size(); ++i) {
    iov[i + 1] = {const_cast<std::byte*>(parts[i].data()), parts[i].size()};
  }
  std::span<const iovec> frame(iov, parts.size() + 1);

  std::string last_error = "connection lost";
  // A connection found broken is replaced once: that is the reconnect after a peer restart.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<Connection> c;
    Status status = connection_for(*peer, c);
    if (!status.ok()) return status;
    std::lock_guard lock(c->out_mutex);
    if (is_gone(c->state.load())) continue;
    if (mode == SendMode::kBatched) {
      c->out.append(frame, frame.size(), 0);
      if (!c->batched) {
        c->batched = true;
        std::lock_guard batch_lock(batched_mutex_);
        batched_.push_back(c);
        has_batched_.store(true, std::memory_order_release);
      }
      return Status::Ok();
    }
    if (c->submit(epoll_fd_, frame, frame.size())) return Status::Ok();
    last_error = error_text(errno);
    logger().debug("send to {} failed: {}", peer->address_, last_error);
    mark_broken(*c);
  }
  return {Status::Code::kDisconnected, "cannot send to " + peer->address_ + ": " + last_error};
}

void TcpTransport::flush() {
  if (!has_batched_.load(std::memory_order_acquire)) return;
  std::lock_guard flush_lock(flush_mutex_);
  {
    std::lock_guard lock(batched_mutex_);
    flushing_.swap(batched_);
    has_batched_.store(false, std::memory_order_release);
  }
  for (const auto& c : flushing_) {
    std::lock_guard lock(c->out_mutex);
    c->batched = false;
    // Connecting, or already waiting for EPOLLOUT: the writable handler sends the queue.
    if (c->state.load() != Connection::State::kConnected || c->write_armed || c->out.empty()) {
      continue;
    }
    auto result = c->out.flush(c->fd);
    if (result == OutputQueue::FlushResult::kError) {
      mark_broken(*c);
    } else if (result == OutputQueue::FlushResult::kWouldBlock) {
      c->want_write(epoll_fd_, true);
    }
  }
  flushing_.clear();
}

size_t TcpTransport::accept_all() {
  size_t accepted = 0;
  for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
    SocketAddress from;
    from.length = sizeof from.storage;
    int fd = ::accept4(listen_fd_, from.get(), &from.length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        logger().warn("accept on {} failed: {}", address_, error_text(errno));
      }
      break;
    }
    set_nodelay(fd);
    auto c = std::make_shared<Connection>(fd, Connection::State::kConnected, false, nullptr,
                                          to_string(from) + " (client)");
    std::lock_guard lock(mutex_);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(c.get(), std::move(c));
    ++accepted;
  }
  return accepted;
}

void TcpTransport::handle_writable(Connection& c) {
  std::unique_lock lock(c.out_mutex);
  auto state = c.state.load();
  if (state == Connection::State::kClosed) return;
  if (state == Connection::State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      lock.unlock();
      close_connection(c,
                       {Status::Code::kDisconnected,
                        "cannot connect to " + c.description + ": " + error_text(err)},
                       true);
      return;
    }
    c.state.store(Connection::State::kConnected);
    --connecting_count_;
  }
  auto result = c.out.flush(c.fd);
  if (result == OutputQueue::FlushResult::kError) {
    int err = errno;
    lock.unlock();
    close_connection(
        c, {Status::Code::kDisconnected, "write to " + c.description + ": " + error_text(err)},
        true);
    return;
  }
  if (result == OutputQueue::FlushResult::kDrained) c.want_write(epoll_fd_, false);
}

void TcpTransport::check_connect_timeouts() {
  auto now = std::chrono::steady_clock::now();
  std::vector<Connection*> expired;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, c] : connections_) {
      if (c->state.load() == Connection::State::kConnecting && c->connect_deadline < now) {
        expired.push_back(c.get());
      }
    }
  }
  for (auto* c : expired) {
    close_connection(
        *c,
        {Status::Code::kDisconnected, "connecting to " + c->description + " timed out after " +
                                          std::to_string(options_.connect_timeout.count()) + " ms"},
        true);
  }
}

void TcpTransport::close_connection(Connection& c, const Status& why, bool notify) {
  {
    std::lock_guard lock(c.out_mutex);
    auto previous = c.state.load();
    if (previous == Connection::State::kClosed) return;
    if (previous == Connection::State::kConnecting) --connecting_count_;
    c.state.store(Connection::State::kClosed);
    if (hot_ == &c) hot_ = nullptr;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.out.clear();
  }
  if (why.code == Status::Code::kShutdown) {
    logger().debug("closing connection to {}: {}", c.description, why.message);
  } else {
    logger().info("connection to {} lost: {}", c.description, why.message);
  }
  PeerRef peer = c.peer;
  if (auto* tcp_peer = static_cast<TcpPeer*>(peer.get())) {
    std::lock_guard lock(tcp_peer->mutex_);
    if (tcp_peer->connection_.get() == &c) tcp_peer->connection_.reset();
  }
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(&c);
    if (it != connections_.end()) {
      graveyard_.push_back(std::move(it->second));
      connections_.erase(it);
    }
  }
  c.receive = {};
  Status failure = why.code == Status::Code::kShutdown
                       ? why
                       : Status{Status::Code::kDisconnected,
                                "connection to " + c.description + " lost: " + why.message};
  fail_chunks(&c, failure);
  if (notify && peer && handler_ != nullptr && !closed_.load()) handler_->on_peer_lost(peer);
}

size_t TcpTransport::progress(std::chrono::microseconds timeout) {
  if (closed_.load(std::memory_order_relaxed)) return 0;
  // After a sleep on wait_fd() (prepare_wait), interrupts go back to costing no syscall.
  if (waiting_.load(std::memory_order_relaxed)) waiting_.store(false);
  flush();
  bool blocking = timeout.count() > 0;
  if (!blocking && hot_ != nullptr && ++passes_since_epoll_ < kPassesPerEpoll) {
    return handle_readable(*hot_);
  }
  passes_since_epoll_ = 0;
  if (!graveyard_.empty()) graveyard_.clear();
  if (connecting_count_.load(std::memory_order_relaxed) > 0) check_connect_timeouts();

  auto wait = std::chrono::microseconds(0);
  if (blocking) {
    wait = timeout;
    waiting_.store(true);
    // Pairs with interrupt(): either it sees waiting_ and writes the eventfd, or we see its
    // flag here; an interrupt is never lost and costs no syscall when nobody waits.
    if (interrupt_pending_.exchange(false)) wait = std::chrono::microseconds(0);
  }
  epoll_event events[kMaxEvents];
  int n = dango::detail::epoll_wait_for(epoll_fd_, events, kMaxEvents, wait);
  if (blocking) waiting_.store(false);
  if (n < 0) {
    if (errno != EINTR) logger().error("epoll_wait failed: {}", error_text(errno));
    return 0;
  }
  size_t handled = 0;
  for (int i = 0; i < n && !closed_.load(std::memory_order_relaxed); ++i) {
    const epoll_event& ev = events[i];
    if (ev.data.u64 == kWakeTag) {
      uint64_t value;
      [[maybe_unused]] auto r = ::read(wake_fd_, &value, sizeof value);
      interrupt_pending_.store(false);
      continue;
    }
    if (ev.data.u64 == kListenTag) {
      handled += accept_all();
      continue;
    }
    auto* c = static_cast<Connection*>(ev.data.ptr);
    if ((ev.events & EPOLLOUT) != 0) handle_writable(*c);
    if ((ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 &&
        c->state.load() != Connection::State::kClosed) {
      size_t n_handled = handle_readable(*c);
      handled += n_handled;
      if (n_handled > 0 && c->state.load() == Connection::State::kConnected) hot_ = c;
    }
  }
  return handled;
}

bool TcpTransport::prepare_wait() {
  if (closed_.load(std::memory_order_relaxed)) return false;
  flush();
  // As in a blocking progress(): from here on interrupt() writes the eventfd, which makes the
  // epoll descriptor readable; one that came before is not lost.
  waiting_.store(true);
  if (interrupt_pending_.exchange(false)) {
    waiting_.store(false);
    return false;
  }
  return true;
}

void TcpTransport::interrupt() {
  interrupt_pending_.store(true);
  if (waiting_.load() && !closed_.load()) {
    uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
  }
}

void TcpTransport::close() {
  if (closed_.exchange(true)) return;
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, c] : connections_) all.push_back(c);
  }
  Status why{Status::Code::kShutdown, "tcp transport " + address_ + " closed"};
  for (const auto& c : all) close_connection(*c, why, false);
  fail_chunks(nullptr, why);
  std::lock_guard lock(mutex_);
  for (int* fd : {&listen_fd_, &wake_fd_, &epoll_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

}  // namespace dango::net::tcp
