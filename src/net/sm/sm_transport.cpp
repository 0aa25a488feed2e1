// Setup, peers, connections and their handshake, and close of the sm transport.

#include "net/sm/sm_transport.hpp"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <random>
#include <typeinfo>

#include "dango/common/error.hpp"
#include "dango/common/log.hpp"
#include "net/sm/sm_internal.hpp"

namespace dango::net::sm {
namespace {

constexpr size_t kMinRingSize = size_t{64} << 10;
constexpr size_t kMaxRingSize = size_t{1} << 30;

uint64_t random_u64() {
  static thread_local std::mt19937_64 engine{std::random_device{}()};
  uint64_t value;
  do {
    value = engine();
  } while (value == 0);
  return value;
}

std::string unique_name() {
  static std::atomic<unsigned> counter{0};
  return "p" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

size_t parse_env_size(const char* name, size_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  size_t value = 0;
  auto end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) {
    throw ConfigError(std::string(name) + ": \"" + text + "\" is not a non-negative integer");
  }
  return value;
}

bool fill_unix_address(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

pid_t peer_pid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return 0;
  return cred.pid;
}

}  // namespace

DANGO_REGISTER_TRANSPORT_AT(sm, SmTransport, "sm://");

uint64_t next_generation() {
  static std::atomic<uint64_t> counter{1};
  return counter.fetch_add(1, std::memory_order_relaxed);
}

SmOptions SmOptions::from_environment() {
  SmOptions options;
  options.ring_size = parse_env_size("DANGO_SM_RING_SIZE", options.ring_size);
  options.busy_poll = std::chrono::microseconds(
      parse_env_size("DANGO_SM_BUSY_POLL_US", static_cast<size_t>(options.busy_poll.count())));
  const char* no_cma = std::getenv("DANGO_SM_NO_CMA");
  if (no_cma != nullptr && *no_cma != '\0' && std::strcmp(no_cma, "0") != 0) {
    options.use_cma = false;
  }
  return options;
}

SmPeer::SmPeer(const SmTransport* owner, std::string address, std::string socket_path)
    : owner_(owner),
      address_(std::move(address)),
      socket_path_(std::move(socket_path)),
      generation_(next_generation()) {}

Connection::Connection(Fd socket_fd, bool is_connector, std::string what)
    : socket(std::move(socket_fd)),
      connector(is_connector),
      state(State::kHandshake),
      description(std::move(what)) {}

Connection::~Connection() = default;

SmTransport::SmTransport(std::string_view address, const TransportOptions& options,
                         SmOptions sm_options)
    : options_(options),
      sm_(sm_options),
      instance_(random_u64()),
      probe_word_(random_u64()),
      control_buffer_(sizeof(ControlHeader) + kMaxControlBody),
      regions_(std::make_shared<RegionTable>()) {
  auto [scheme, location] = split_address(address);
  if (scheme != "sm") {
    throw NetworkError("sm transport cannot serve address \"" + std::string(address) + "\"");
  }
  if (options_.max_message_size == 0 || options_.bulk_chunk_size == 0) {
    throw ConfigError("sm transport: max_message_size and bulk_chunk_size must be > 0");
  }
  if (sm_.ring_size < kMinRingSize || sm_.ring_size > kMaxRingSize ||
      (sm_.ring_size & (sm_.ring_size - 1)) != 0) {
    throw ConfigError("sm transport: ring size " + std::to_string(sm_.ring_size) +
                      " (DANGO_SM_RING_SIZE) must be a power of two from 64 KiB to 1 GiB");
  }
  bool listening = address != "sm" && options_.listen;
  if (listening && !location.empty() && !valid_name(location)) {
    throw NetworkError("sm transport: invalid name in \"" + std::string(address) +
                       "\" (1-64 characters of A-Z a-z 0-9 . _ -)");
  }
  regions_->next_key = 1;
  directory_ = runtime_directory();
  if (size_t removed = clean_stale_names(directory_); removed > 0) {
    sm_logger().info("sm: removed {} name(s) left in {} by processes that died", removed,
                     directory_);
  }
  epoll_fd_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
  wake_fd_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_fd_ || !wake_fd_) {
    throw NetworkError(std::string("sm transport: cannot create epoll/eventfd: ") +
                       std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);
  if (listening) open_listener(location.empty() ? unique_name() : std::string(location));
}

SmTransport::~SmTransport() { close(); }

void SmTransport::open_listener(std::string_view name_view) {
  std::string name(name_view);
  std::string path = socket_path(directory_, name);
  sockaddr_un addr;
  if (!fill_unix_address(path, addr)) {
    throw NetworkError("sm://" + name + ": socket path " + path + " is too long");
  }
  name_lock_ = std::make_unique<NameLock>(directory_, name);
  listen_fd_ = Fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_ ||
      ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_.get(), SOMAXCONN) != 0) {
    int err = errno;
    name_lock_.reset();
    throw NetworkError("sm://" + name + ": cannot listen on " + path + ": " + std::strerror(err));
  }
  address_ = "sm://" + name;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
  sm_logger().debug("sm transport listening on {} ({})", address_, path);
}

SmPeer* SmTransport::as_sm_peer(const PeerRef& peer) const {
  // SmPeer is final: comparing the type is enough, and cheaper than dynamic_cast on every send.
  if (!peer || typeid(*peer) != typeid(SmPeer)) return nullptr;
  auto* sm_peer = static_cast<SmPeer*>(peer.get());
  return sm_peer->owner_ == this ? sm_peer : nullptr;
}

PeerRef SmTransport::lookup(std::string_view address) {
  std::string key(address);
  auto [scheme, location] = split_address(address);
  if (scheme != "sm" || !valid_name(location) || address.substr(0, 5) != "sm://") {
    throw NetworkError("sm transport cannot look up \"" + key + "\" (expected sm://<name>)");
  }
  std::lock_guard lock(mutex_);
  if (peers_.size() > 64 && peers_.size() % 64 == 0) {
    std::erase_if(peers_, [](const auto& entry) { return entry.second.expired(); });
  }
  auto& slot = peers_[key];
  auto peer = slot.lock();
  if (!peer) {
    peer = std::make_shared<SmPeer>(this, key, socket_path(directory_, location));
    slot = peer;
  }
  return peer;
}

Status SmTransport::connection_for(SmPeer& peer, std::shared_ptr<Connection>& out) {
  std::lock_guard lock(peer.mutex_);
  if (peer.connection_ && peer.connection_->state.load() != Connection::State::kClosed) {
    out = peer.connection_;
    return Status::Ok();
  }
  if (closed_.load()) return {Status::Code::kShutdown, "sm transport closed"};
  if (peer.socket_path_.empty()) {
    return {Status::Code::kDisconnected,
            "peer " + peer.address_ + " is client-only and its connection is gone"};
  }
  return connect_to(peer, out);
}

void SmTransport::attach(SmPeer& peer, const std::shared_ptr<Connection>& c) {
  // Caller holds peer.mutex_.
  peer.connection_ = c;
  peer.generation_.store(next_generation(), std::memory_order_release);
}

// Caller holds peer.mutex_, so concurrent senders make one connection, not several.
Status SmTransport::connect_to(SmPeer& peer, std::shared_ptr<Connection>& out) {
  auto failed = [&](const std::string& why) {
    return Status{Status::Code::kDisconnected, "cannot connect to " + peer.address_ + ": " + why};
  };
  sockaddr_un addr;
  if (!fill_unix_address(peer.socket_path_, addr)) return failed("socket path too long");
  Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return failed(std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      return failed("no process listens on " + peer.socket_path_);
    }
    return failed(std::strerror(errno));
  }
  auto c = std::make_shared<Connection>(std::move(fd), true, peer.address_);
  c->pid = peer_pid(c->socket.get());
  const size_t capacity = sm_.ring_size;
  const uint64_t key = random_u64();
  try {
    Fd segment = create_segment("connection", kRingDataOffset + 2 * capacity);
    c->segment = Mapping::map(segment.get(), kRingDataOffset + 2 * capacity, "connection segment");
    attach_rings(*c, capacity, key);
    auto body = hello_body(address_, key);
    if (!send_control(c->socket.get(), ControlType::kHello, body, segment.get())) {
      return failed(std::string("HELLO not sent: ") + std::strerror(errno));
    }
  } catch (const NetworkError& e) {
    return failed(e.what());
  }
  c->peer = std::static_pointer_cast<SmPeer>(peer.shared_from_this());
  if (!add_connection(c)) return {Status::Code::kShutdown, "sm transport closed"};
  attach(peer, c);
  sm_logger().debug("connecting to {}", peer.address_);
  out = std::move(c);
  return Status::Ok();
}

std::vector<std::byte> SmTransport::hello_body(const std::string& address,
                                               uint64_t ring_key) const {
  HelloBody body;
  body.instance = instance_;
  body.probe_address = reinterpret_cast<uint64_t>(&probe_word_);
  body.probe_value = probe_word_;
  body.ring_capacity = ring_key != 0 ? sm_.ring_size : 0;
  body.ring_key = ring_key;
  body.address_length = static_cast<uint32_t>(address.size());
  std::vector<std::byte> out(sizeof body + address.size());
  std::memcpy(out.data(), &body, sizeof body);
  std::memcpy(out.data() + sizeof body, address.data(), address.size());
  return out;
}

bool SmTransport::add_connection(const std::shared_ptr<Connection>& c) {
  std::lock_guard lock(mutex_);
  if (closed_.load()) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c.get();
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, c->socket.get(), &ev);
  connections_.emplace(c.get(), c);
  fresh_.push_back(c);
  has_fresh_.store(true, std::memory_order_release);
  return true;
}

size_t SmTransport::accept_all() {
  size_t accepted = 0;
  for (int i = 0; i < 64; ++i) {
    Fd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        sm_logger().warn("accept on {} failed: {}", address_, std::strerror(errno));
      }
      break;
    }
    pid_t pid = peer_pid(fd.get());
    auto c =
        std::make_shared<Connection>(std::move(fd), false, "sm client pid " + std::to_string(pid));
    c->pid = pid;
    if (!add_connection(c)) break;
    ++accepted;
  }
  return accepted;
}

bool SmTransport::probe_cma(const Connection& c, const HelloBody& hello) {
  if (!sm_.use_cma) {
    if (!warned_no_cma_) {
      warned_no_cma_ = true;
      sm_logger().warn(
          "sm: process_vm_readv/writev disabled (DANGO_SM_NO_CMA); bulk transfers of ordinary "
          "memory are copied through shared memory");
    }
    return false;
  }
  uint64_t value = 0;
  iovec local{&value, sizeof value};
  iovec remote{reinterpret_cast<void*>(hello.probe_address), sizeof value};
  ssize_t n = ::process_vm_readv(c.pid, &local, 1, &remote, 1, 0);
  if (n == sizeof value && value == hello.probe_value) return true;
  sm_logger().warn(
      "sm: process_vm_readv of {} (pid {}) refused ({}); bulk transfers with it are copied "
      "through shared memory",
      c.description, c.pid, n < 0 ? std::strerror(errno) : "wrong value read");
  return false;
}

bool SmTransport::handle_hello(Connection& c, const ControlPacket& packet) {
  HelloBody hello;
  if (packet.body.size() < sizeof hello || !packet.fd) return false;
  std::memcpy(&hello, packet.body.data(), sizeof hello);
  std::string_view address(reinterpret_cast<const char*>(packet.body.data()) + sizeof hello,
                           packet.body.size() - sizeof hello);
  const size_t capacity = hello.ring_capacity;
  if (hello.address_length != address.size() || capacity < kMinRingSize ||
      capacity > kMaxRingSize || (capacity & (capacity - 1)) != 0 || hello.ring_key == 0 ||
      hello.instance == 0) {
    return false;
  }
  if (!address.empty() && (!address.starts_with("sm://") || !valid_name(address.substr(5)))) {
    return false;
  }
  if (segment_size(packet.fd.get()) != static_cast<int64_t>(kRingDataOffset + 2 * capacity)) {
    return false;
  }
  try {
    c.segment = Mapping::map(packet.fd.get(), kRingDataOffset + 2 * capacity, "connection segment");
  } catch (const NetworkError& e) {
    sm_logger().warn("{}", e.what());
    return false;
  }
  attach_rings(c, capacity, hello.ring_key);
  c.remote_instance = hello.instance;
  c.cma = probe_cma(c, hello);
  std::shared_ptr<SmPeer> peer;
  if (!address.empty()) {
    peer = std::static_pointer_cast<SmPeer>(lookup(address));
  } else {
    peer = std::make_shared<SmPeer>(this, "sm:// (client pid " + std::to_string(c.pid) + ")",
                                    std::string());
  }
  c.description = peer->address_;
  c.peer = peer;
  {
    std::lock_guard lock(peer->mutex_);
    if (!peer->connection_ || peer->connection_->state.load() == Connection::State::kClosed) {
      std::lock_guard table_lock(mutex_);
      auto it = connections_.find(&c);
      if (it != connections_.end()) attach(*peer, it->second);
    }
  }
  auto welcome = hello_body(std::string(), 0);
  if (!send_control(c.socket.get(), ControlType::kWelcome, welcome)) return false;
  c.state.store(Connection::State::kOpen, std::memory_order_release);
  return true;
}

bool SmTransport::handle_welcome(Connection& c, const ControlPacket& packet) {
  HelloBody welcome;
  if (packet.body.size() != sizeof welcome || packet.fd) return false;
  std::memcpy(&welcome, packet.body.data(), sizeof welcome);
  if (welcome.instance == 0 || welcome.address_length != 0) return false;
  c.remote_instance = welcome.instance;
  c.cma = probe_cma(c, welcome);
  c.state.store(Connection::State::kOpen, std::memory_order_release);
  return true;
}

void SmTransport::close_connection(Connection& c, const Status& why, bool notify) {
  if (c.state.exchange(Connection::State::kClosed) == Connection::State::kClosed) return;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, c.socket.get(), nullptr);
  ::shutdown(c.socket.get(), SHUT_RDWR);
  if (why.code == Status::Code::kShutdown) {
    sm_logger().debug("closing connection to {}: {}", c.description, why.message);
  } else {
    sm_logger().info("connection to {} lost: {}", c.description, why.message);
  }
  std::shared_ptr<SmPeer> peer = std::move(c.peer);
  if (peer) {
    std::lock_guard lock(peer->mutex_);
    if (peer->connection_.get() == &c) {
      peer->connection_.reset();
      peer->generation_.store(next_generation(), std::memory_order_release);
    }
  }
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(&c);
    if (it != connections_.end()) {
      graveyard_.push_back(std::move(it->second));
      connections_.erase(it);
    }
  }
  {
    std::lock_guard lock(c.out_mutex);
    c.overflow.clear();
    c.has_overflow.store(false);
  }
  c.arenas.clear();
  c.incoming_puts.clear();
  c.reassembly = {};
  c.reassembly_total = 0;
  Status failure = why.code == Status::Code::kShutdown
                       ? why
                       : Status{Status::Code::kDisconnected,
                                "connection to " + c.description + " lost: " + why.message};
  fail_bulk(&c, failure);
  if (notify && peer && handler_ != nullptr && !closed_.load()) handler_->on_peer_lost(peer);
}

void SmTransport::interrupt() {
  interrupt_pending_.store(true);
  if (waiting_.load() && !closed_.load()) {
    uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd_.get(), &one, sizeof one);
  }
}

void SmTransport::close() {
  if (closed_.exchange(true)) return;
  std::vector<std::shared_ptr<Connection>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, c] : connections_) all.push_back(c);
  }
  Status why{Status::Code::kShutdown, "sm transport " + address_ + " closed"};
  for (const auto& c : all) close_connection(*c, why, false);
  fail_bulk(nullptr, why);
  std::lock_guard lock(mutex_);
  if (listen_fd_) ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
  listen_fd_.reset();
  name_lock_.reset();  // removes the socket and lock files
  fresh_.clear();
}

}  // namespace dango::net::sm
