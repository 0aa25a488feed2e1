#pragma once
// The tcp transport: epoll, non-blocking sockets, length-framed messages, one connection per
// peer pair (identified by a HELLO frame carrying the connector's listening address), and
// one-sided get/put emulated with request/reply frames whose payloads move straight between
// the socket and registered memory.
//
// Files: tcp_transport.cpp (setup, peers, connections, send, progress loop, close),
// tcp_receive.cpp (frame parsing and dispatch), tcp_bulk.cpp (memory regions, get/put).
// Locking order: a peer's mutex, then mutex_; a connection's out_mutex, then ops_mutex_. The
// progress thread alone reads sockets and closes connections; senders only mark them broken.

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "dango/net/transport.hpp"
#include "net/tcp/connection.hpp"
#include "net/tcp/frame.hpp"
#include "net/tcp/socket_address.hpp"

namespace dango::net::tcp {

class TcpTransport;

// A remote process. Found through TcpTransport::peers_ by its listening address, so every user
// of one address shares one TcpPeer and, through it, one connection.
class TcpPeer final : public Peer, public std::enable_shared_from_this<TcpPeer> {
 public:
  TcpPeer(const TcpTransport* owner, std::string address, std::optional<SocketAddress> target)
      : owner_(owner), address_(std::move(address)), target_(target) {}
  const std::string& address() const override { return address_; }

  const TcpTransport* const owner_;  // identity only; never dereferenced
  const std::string address_;
  const std::optional<SocketAddress> target_;  // where to (re)connect; none for client-only
  std::mutex mutex_;
  std::shared_ptr<Connection> connection_;  // guarded by mutex_; the one used for sending
};

class TcpMemoryRegion;

// Registered regions by key, shared with the regions so a region may outlive its transport.
struct RegionTable {
  std::mutex mutex;
  std::unordered_map<uint64_t, TcpMemoryRegion*> regions;
  uint64_t next_key = 1;
};

class TcpMemoryRegion final : public MemoryRegion {
 public:
  TcpMemoryRegion(std::shared_ptr<RegionTable> table, std::span<const std::span<std::byte>> segs,
                  Access access);
  ~TcpMemoryRegion() override;
  size_t size() const override { return size_; }
  Access access() const override { return access_; }
  std::span<const std::span<std::byte>> segments() const override { return segments_; }
  std::vector<std::byte> descriptor() const override;

  const RegionTable* table() const { return table_.get(); }

 private:
  std::shared_ptr<RegionTable> table_;
  std::vector<std::span<std::byte>> segments_;
  size_t size_ = 0;
  Access access_;
  uint64_t key_ = 0;
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(std::string_view address, const TransportOptions& options);
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  std::string_view scheme() const override { return "tcp"; }
  const std::string& address() const override { return address_; }
  void set_handler(MessageHandler* handler) override { handler_ = handler; }
  PeerRef lookup(std::string_view address) override;
  using Transport::send;
  Status send(const PeerRef& to, std::span<const std::span<const std::byte>> parts,
              SendMode mode) override;
  void flush() override;
  std::unique_ptr<MemoryRegion> register_memory(std::span<const std::span<std::byte>> segments,
                                                Access access) override;
  void get(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override;
  void put(const PeerRef& peer, std::span<const std::byte> remote, size_t remote_offset,
           MemoryRegion& local, size_t local_offset, size_t size, Completion* done) override;
  size_t progress(std::chrono::microseconds timeout) override;
  void interrupt() override;
  int wait_fd() const override { return epoll_fd_; }
  bool prepare_wait() override;
  void close() override;

 private:
  // A get/put split into chunks; completes once, when its last chunk does (first error wins).
  struct BulkOp {
    Completion* done;
    size_t chunks_left;
    Status first_error;
  };
  struct PendingChunk {
    std::shared_ptr<BulkOp> op;
    const Connection* connection;
    std::span<const std::span<std::byte>> local_segments;
    size_t local_offset;
    size_t size;
  };
  enum class BulkKind { kGet, kPut };

  // tcp_transport.cpp
  void open_listener(std::string_view address);
  Status connection_for(TcpPeer& peer, std::shared_ptr<Connection>& out);
  Status connect_to(TcpPeer& peer, std::shared_ptr<Connection>& out);
  void register_connection(const std::shared_ptr<Connection>& c, bool connecting);
  void mark_broken(Connection& c);
  size_t accept_all();
  void handle_writable(Connection& c);
  void check_connect_timeouts();
  void close_connection(Connection& c, const Status& why, bool notify);
  TcpPeer* as_tcp_peer(const PeerRef& peer) const;

  // tcp_receive.cpp
  enum class ReadResult { kMore, kDrained, kClosed };
  size_t handle_readable(Connection& c);
  ReadResult read_frames(Connection& c, size_t& handled);
  ReadResult read_payload(Connection& c, size_t& handled);
  ReadResult read_failed(Connection& c, ssize_t n);
  // Parses and dispatches the complete frames in c.in; false when the connection was closed.
  bool process_frames(Connection& c, size_t& handled);
  bool finish_payload(Connection& c, size_t& handled);
  bool handle_hello(Connection& c, std::span<const std::byte> payload);
  bool reject(Connection& c, const std::string& why);

  // tcp_bulk.cpp
  void start_bulk(BulkKind kind, const PeerRef& peer, std::span<const std::byte> remote,
                  size_t remote_offset, MemoryRegion& local, size_t local_offset, size_t size,
                  Completion* done);
  // Queues a frame on `c` from the progress thread; on a socket error closes `c` and returns
  // false (true when `c` was already going away: nothing to send on it).
  bool submit_or_close(Connection& c, std::span<const iovec> iov, size_t copied);
  // Answers a GET_REQ; false when the connection was closed.
  bool serve_get(Connection& c, const BulkHeader& request);
  // Validates a PUT_REQ; on success points `c.receive` at the destination memory.
  Status accept_put(Connection& c, const BulkHeader& request, uint64_t length);
  void send_reply(Connection& c, FrameType type, uint64_t op_id, const Status& status);
  Status check_region_access(const BulkHeader& request, bool write,
                             std::span<const std::span<std::byte>>* segments);
  std::optional<PendingChunk> find_chunk(const Connection& c, uint64_t op_id);
  size_t complete_chunk(uint64_t op_id, const Status& status);
  void fail_chunks(const Connection* c, const Status& status);

  TransportOptions options_;
  std::string address_;
  MessageHandler* handler_ = nullptr;
  std::atomic<bool> closed_{false};

  int epoll_fd_ = -1;
  int wake_fd_ = -1;    // eventfd written by interrupt()
  int listen_fd_ = -1;  // -1 for a client-only transport
  // interrupt() writes wake_fd_ only when a progress() is (about to be) blocked; see progress().
  std::atomic<bool> waiting_{false};
  std::atomic<bool> interrupt_pending_{false};

  std::mutex mutex_;  // guards peers_, connections_
  std::unordered_map<std::string, std::weak_ptr<TcpPeer>> peers_;
  std::unordered_map<const Connection*, std::shared_ptr<Connection>> connections_;
  std::atomic<int> connecting_count_{0};
  // Closed connections, kept alive until the next progress() so that events already returned by
  // epoll_wait never point to freed memory. Progress thread only.
  std::vector<std::shared_ptr<Connection>> graveyard_;

  // Connections holding batched messages (Connection::batched set), written by flush().
  std::mutex batched_mutex_;
  std::vector<std::shared_ptr<Connection>> batched_;
  std::vector<std::shared_ptr<Connection>> flushing_;  // guarded by flush_mutex_
  std::mutex flush_mutex_;
  std::atomic<bool> has_batched_{false};

  std::shared_ptr<RegionTable> regions_;
  std::mutex ops_mutex_;  // guards chunks_
  std::unordered_map<uint64_t, PendingChunk> chunks_;
  std::atomic<uint64_t> next_op_id_{1};
  // Polling without blocking, most passes read the connection that last delivered data with
  // one recv instead of epoll_wait + read; every kPassesPerEpoll-th pass asks epoll about the
  // others (and accepts, EPOLLOUT). Progress thread only; reset when that connection closes.
  static constexpr int kPassesPerEpoll = 4;
  Connection* hot_ = nullptr;
  int passes_since_epoll_ = 0;
  std::vector<iovec> iov_out_;  // progress thread only: GET_REP gather lists
  std::vector<iovec> iov_in_;   // progress thread only: payload scatter lists
};

}  // namespace dango::net::tcp
